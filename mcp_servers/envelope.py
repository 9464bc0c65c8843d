"""The REST envelopes of DESIGN §6 and the one middleware that turns every failure into one.

The same envelope is the MCP `structuredContent`, so a skill reads REST and MCP answers alike.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import itertools
import secrets
from typing import Any

from aiohttp import web
from pydantic_core import to_jsonable_python

from core.errors import AIEmployeeError, ApprovalRequiredError, RateLimitError, ValidationError
from mcp_servers.tools import CONFIG_KEY, REQUEST_ID_KEY

log = logging.getLogger("mcp_servers")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def timestamp() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def dumps(obj: Any) -> str:
    # to_jsonable_python covers what handlers naturally return: datetimes, pydantic models, sets.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=to_jsonable_python)


def success(data: Any) -> dict:
    return {"success": True, "data": data, "timestamp": timestamp()}


def failure(code: str, message: str, **extra: Any) -> dict:
    body = {"success": False, "error": message, "error_code": code, "timestamp": timestamp()}
    body.update((k, v) for k, v in extra.items() if v is not None)
    return body


def from_exception(err: BaseException, request_id: str) -> tuple[int, dict, dict[str, str]]:
    """(HTTP status, error envelope, headers) for any exception a handler raised."""
    if not isinstance(err, AIEmployeeError):
        log.error("unhandled error", extra={"request_id": request_id}, exc_info=err)
        message = f"internal error; the server log has the details (request id {request_id})"
        return 500, failure("INTERNAL_ERROR", message), {}
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(err, ApprovalRequiredError):
        extra["approval_id"] = err.approval_id
    elif isinstance(err, RateLimitError) and err.retry_after is not None:
        extra["retry_after"] = max(1, math.ceil(err.retry_after))
        headers["Retry-After"] = str(extra["retry_after"])
    elif isinstance(err, ValidationError):
        extra["field"] = err.field
    return err.http_status, failure(err.code, str(err) or err.code, **extra), headers


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(body), status=status, headers=headers, content_type="application/json")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(failure(code, message), status, headers)


def _http_error(exc: web.HTTPException, request: web.Request) -> web.Response:
    status = exc.status
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
    if status == 404:
        return error_response(404, "NOT_FOUND", f"no route for {request.method} {request.path}", headers)
    if status == 405:
        allowed = headers.get("Allow", "")
        message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
        return error_response(405, "VALIDATION_ERROR", message, headers)
    if status == 413:
        limit = request.app[CONFIG_KEY].max_body_bytes
        return error_response(413, "VALIDATION_ERROR", f"request body is larger than {limit} bytes", headers)
    code = "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR"
    return error_response(status, code, exc.reason, headers)


_ID_PREFIX = secrets.token_hex(4)
_request_numbers = itertools.count(1)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Outermost middleware: tags the request with an id, answers every failure with an envelope."""
    request_id = request.headers.get("X-Request-ID", "")
    if not _CLIENT_REQUEST_ID.match(request_id):
        request_id = f"{_ID_PREFIX}-{next(_request_numbers):x}"  # unique per server, no syscall per request
    request[REQUEST_ID_KEY] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_error(exc, request)
    except Exception as err:  # noqa: BLE001 - the one place where everything becomes an envelope
        status, body, headers = from_exception(err, request_id)
        response = json_response(body, status, headers)
    response.headers["X-Request-ID"] = request_id
    return response
