"""Who may talk to a server: the bearer token, and DNS-rebinding protection on Host and Origin.

Defence in depth: the servers bind loopback by default, but a web page in the owner's browser can
still reach 127.0.0.1. Browsers always send Origin on cross-site POSTs and the attacker's name in
Host after a DNS rebind, so refusing non-local values for either closes that door; a missing header
means a non-browser client, which the token (when set) still has to pass.
"""
from __future__ import annotations

import hmac
import ipaddress
import re
from typing import Any

from aiohttp import web

from mcp_servers.envelope import dumps, error_response
from mcp_servers.tools import ServerConfig

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
UNAUTHENTICATED_PATHS = frozenset({"/health"})
REFUSED = -32001  # JSON-RPC implementation-defined server error, so MCP clients show our message


# host [":" port], where host is "[" IPv6 literal "]" or a name / IPv4 address (RFC 3986 reg-name
# characters, so no colon), and port is ASCII digits. Nothing else: no userinfo, path or trailing text.
_HOST_PORT = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9\-._~%!$&'()*+,;=]+))(?::[0-9]+)?",
                        re.ASCII | re.IGNORECASE)


def hostname(host_header: str) -> str | None:
    """'127.0.0.1:8080' → '127.0.0.1', '[::1]:8080' → '::1', 'LocalHost' → 'localhost'; None (which no
    allowed host matches) for anything that is not exactly host[:port], e.g. '[::1]evil.example'."""
    match = _HOST_PORT.fullmatch(host_header)
    if match is None:
        return None
    if match["ipv6"] is None:
        return match["name"].lower()
    try:
        return ipaddress.IPv6Address(match["ipv6"]).compressed
    except ValueError:
        return None


def is_local_origin(origin: str) -> bool:
    """Origin is exactly scheme "://" host [":" port] (RFC 6454); loopback hosts over http(s) only."""
    scheme, sep, host_port = origin.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and hostname(host_port) in LOOPBACK_HOSTS


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
