"""Who may talk to a server: the bearer token, and DNS-rebinding protection on Host and Origin.

Defence in depth: the servers bind loopback by default, but a web page in the owner's browser can
still reach 127.0.0.1. Browsers always send Origin on cross-site POSTs and the attacker's name in
Host after a DNS rebind, so refusing non-local values for either closes that door; a missing header
means a non-browser client, which the token (when set) still has to pass.
"""
from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from yarl import URL

from mcp_servers.envelope import dumps, error_response
from mcp_servers.tools import ServerConfig

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
UNAUTHENTICATED_PATHS = frozenset({"/health"})
REFUSED = -32001  # JSON-RPC implementation-defined server error, so MCP clients show our message


def hostname(host_header: str) -> str:
    """'127.0.0.1:8080' → '127.0.0.1', '[::1]:8080' → '::1', 'LocalHost' → 'localhost'."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    name, sep, port = value.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else value


def is_local_origin(origin: str) -> bool:
    try:
        url = URL(origin)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and (url.host or "").lower().strip("[]") in LOOPBACK_HOSTS


def bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, credentials = (authorization or "").partition(" ")
    # compare_digest even on a wrong scheme, so the timing says nothing about the token.
    ok = hmac.compare_digest(credentials.strip().encode(), token.encode())
    return ok and scheme.lower() == "bearer"


def refuse(request: web.Request, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    if request.path == "/mcp":
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": REFUSED, "message": message}}
        return web.Response(status=status, headers=headers, text=dumps(body), content_type="application/json")
    return error_response(status, "AUTH_ERROR", message, headers)


def security_middleware(config: ServerConfig) -> Any:
    allowed_hosts = LOOPBACK_HOSTS | {config.host.lower()} | {h.lower() for h in config.allowed_hosts}
    allowed_origins = frozenset(config.allowed_origins)
    token = config.auth_token

    @web.middleware
    async def security(request: web.Request, handler: Any) -> web.StreamResponse:
        host = request.headers.get("Host")
        if host is not None and hostname(host) not in allowed_hosts:
            return refuse(request, 403, f"Host {host!r} is not a local address of this server")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in allowed_origins and not is_local_origin(origin):
            return refuse(request, 403, f"requests from origin {origin!r} are not allowed")
        if token and request.path not in UNAUTHENTICATED_PATHS:
            if not bearer_matches(request.headers.get("Authorization"), token):
                return refuse(request, 401, "missing or wrong bearer token (MCP_AUTH_TOKEN)",
                              {"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return security
