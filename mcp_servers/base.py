"""The app factory every MCP server is built with, and `run()` for its `main()`.

A concrete server declares its `Tool`s, its health checks and its long-lived resources
(cleanup_ctx), then calls `create_app(...)` and `run(...)`; everything else is shared here.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from multidict import MultiMapping

from core.errors import ValidationError
from core.redact import redact
from mcp_servers import protocol
from mcp_servers.dispatch import execute
from mcp_servers.envelope import check_json_value, error_middleware, json_response, read_json, success, timestamp
from mcp_servers.security import security_middleware
from mcp_servers.tools import (AUDIT_KEY, CONFIG_KEY, GATE_KEY, HEALTH_KEY, REQUEST_ID_KEY, TOOLS_KEY,
                               ApprovalGate, Audit, Grant, HealthChecks, ServerConfig, Tool, ToolContext,
                               ToolInput)

__all__ = ["create_app", "run", "configure_logging", "overall_status",  # and, re-exported for servers:
           "ApprovalGate", "Grant", "ServerConfig", "Tool", "ToolContext", "ToolInput"]
log = logging.getLogger("mcp_servers")
HEALTH_TIMEOUT = 3.0
SHUTDOWN_TIMEOUT = 5.0


def create_app(config: ServerConfig, tools: Sequence[Tool], *, gate: ApprovalGate | None, audit: Audit | None = None,
               health_checks: HealthChecks | None = None, cleanup_ctx: Sequence[Any] = ()) -> web.Application:
    registry: dict[str, Tool] = {}
    routes: set[tuple[str, str]] = set()
    for tool in tools:
        if tool.name in registry or (tool.method, tool.path) in routes:
            raise ValueError(f"tool {tool.name!r}: name or route {tool.method} {tool.path} is already taken")
        registry[tool.name] = tool
        routes.add((tool.method, tool.path))
    if gate is None and any(t.write_action for t in tools):
        raise ValueError("write tools need an approval gate: no call may bypass the owner")

    app = web.Application(client_max_size=config.max_body_bytes,
                          middlewares=[error_middleware, security_middleware(config)])
    app[CONFIG_KEY] = config
    app[TOOLS_KEY] = registry
    app[GATE_KEY] = gate
    app[AUDIT_KEY] = audit
    app[HEALTH_KEY] = health_checks
    app.router.add_get("/health", _health)
    for tool in tools:
        app.router.add_route(tool.method, tool.path, _rest_handler(tool))
    protocol.setup(app)
    app.cleanup_ctx.extend(cleanup_ctx)
    return app


def _rest_handler(tool: Tool) -> Any:
    async def handle(request: web.Request) -> web.Response:
        if tool.method == "GET":
            arguments = _query_arguments(request.query, tool)
        else:
            arguments = await _json_object(request)
        data = await execute(request.app, tool, arguments, request_id=request[REQUEST_ID_KEY])
        return json_response(success(data))

    handle.__name__ = f"rest_{tool.name}"
    return handle


def _query_arguments(query: MultiMapping[str], tool: Tool) -> dict[str, Any]:
    arguments = {key: query.getall(key) if key in tool.list_fields else query[key] for key in query}
    check_json_value(arguments)  # the body reader's rule for text: no lone surrogate gets past the edge
    return arguments


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if body is None:
        return {}  # a POST with nothing to say, e.g. POST /invoices/sync
    if not isinstance(body, dict):
        raise ValidationError(f"request body must be a JSON object, not {type(body).__name__}", field="body")
    return body


def overall_status(checks: Mapping[str, Any]) -> str:
    """Each check is {"status": "healthy"|"degraded"|"not_configured", "detail": ...}; anything else
    counts as degraded. One degraded check degrades the server; an unconfigured channel says so."""
    statuses = {c.get("status") if isinstance(c, Mapping) else None for c in checks.values()}
    if statuses - {"healthy", "not_configured"}:
        return "degraded"
    return "not_configured" if "not_configured" in statuses else "healthy"


async def _health(request: web.Request) -> web.Response:
    config, checks_fn = request.app[CONFIG_KEY], request.app[HEALTH_KEY]
    checks: dict[str, Any] = {}
    if checks_fn is not None:
        try:
            result = checks_fn()
            if inspect.isawaitable(result):  # checks that wait on I/O get a deadline; instant ones need none
                async with asyncio.timeout(HEALTH_TIMEOUT):
                    result = await result
            checks = dict(result)
        except TimeoutError:
            checks = {"health_checks": {"status": "degraded", "detail": f"timed out after {HEALTH_TIMEOUT}s"}}
        except Exception:  # noqa: BLE001 - a failing check is a degraded server, not a broken one
            log.exception("health check failed")
            checks = {"health_checks": {"status": "degraded", "detail": "health check failed; see the log"}}
    return json_response({"status": overall_status(checks), "service": config.service,
                          "version": config.version, "dry_run": config.dry_run, "checks": checks})


class JsonFormatter(logging.Formatter):
    """One JSON line per record, its `extra` fields included, redacted as the audit log is: secret-looking
    keys masked and bearer tokens cut out of the message, the extras and the traceback."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": timestamp(), "level": record.levelname, "logger": record.name,
                 "msg": redact(record.getMessage())}
        entry.update(redact({k: v for k, v in vars(record).items() if k not in self._STANDARD}))
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON line per request. Deliberately no headers: Authorization must never reach a log."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path == "/health" and response.status == 200:
            return  # supervisors poll it every few seconds: logging each poll is noise, and costly
        self.logger.info("request", extra={"method": request.method, "path": request.path,
                                           "status": response.status, "ms": round(time * 1000, 2),
                                           "request_id": request.get(REQUEST_ID_KEY)})


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def run(app: web.Application, config: ServerConfig, *, log_level: str = "INFO") -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests (at most SHUTDOWN_TIMEOUT s) and return."""
    configure_logging(log_level)
    log.info("starting", extra={"service": config.service, "host": config.host, "port": config.port,
                                "dry_run": config.dry_run, "auth": config.auth_token is not None})
    web.run_app(app, host=config.host, port=config.port, shutdown_timeout=SHUTDOWN_TIMEOUT,
                access_log_class=JsonAccessLogger, print=None, handle_signals=True)
    log.info("stopped", extra={"service": config.service})
