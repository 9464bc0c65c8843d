"""The REST envelopes of DESIGN §6 and the one middleware that turns every failure into one.

The same envelope is the MCP `structuredContent`, so a skill reads REST and MCP answers alike.
Also the wire in both directions: `read_json`, the one reader of request bodies (REST and /mcp),
which refuses what is not strict UTF-8 JSON, and `dumps`, whose text always encodes as UTF-8.
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
MAX_JSON_DEPTH = 64  # arrays and objects nested in each other; tool arguments need a handful
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # after decoding, any surrogate code point is a lone one
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how one gets into a UTF-8 body: a \uD800 escape


def timestamp() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def dumps(obj: Any) -> str:
    """JSON text that always encodes as UTF-8: should a lone surrogate reach an answer anyway (say in
    upstream data), the text falls back to ASCII escapes instead of failing to encode."""
    # to_jsonable_python covers what handlers naturally return: datetimes, pydantic models, sets.
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=to_jsonable_python)
    if text.isascii():  # O(1) in CPython: the common case costs nothing
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), default=to_jsonable_python)
    return text


class MalformedInput(ValidationError):
    """Input the server refuses to read, REST and /mcp alike. `kind`: "media_type" (a body not sent
    as application/json, HTTP 415), "syntax" (not UTF-8 JSON), "depth" (nested deeper than
    MAX_JSON_DEPTH) or "unicode" (a string or key holding a lone surrogate). `path` locates the
    offending value in `document`, the parsed input (None when parsing failed)."""

    def __init__(self, message: str, *, kind: str, field: str | None, status: int = 400,
                 path: tuple[str | int, ...] = (), document: Any = None) -> None:
        super().__init__(message, field=field)
        self.kind, self.http_status, self.path, self.document = kind, status, path, document


def _field(path: tuple[str | int, ...]) -> str:
    """("tags", 0) → "tags.0", like a validation error's field; lone surrogates in keys are shown escaped."""
    return ".".join(str(p).encode("utf-8", "backslashreplace").decode("utf-8") for p in path) or "body"


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def check_json_value(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise MalformedInput if `value` nests deeper than `max_depth` or holds a lone surrogate in any
    string or key. Refused rather than replaced: what is approved, audited or sent must be exactly
    what the caller asked for, and a surrogate cannot be written to a UTF-8 file or answer anyway."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 0, ())]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, str):
            if _has_surrogate(node):
                raise _lone_surrogate(path, value)
            continue
        items = node.items() if isinstance(node, dict) else enumerate(node)
        if depth >= max_depth:
            raise MalformedInput(f"request nests deeper than {max_depth} levels of arrays and objects "
                                 f"(at {_field(path)})", kind="depth", field=_field(path), path=path,
                                 document=value)
        for key, child in items:
            if isinstance(key, str) and _has_surrogate(key):
                raise _lone_surrogate((*path, key), value)
            if isinstance(child, (str, dict, list)):
                stack.append((child, depth + 1, (*path, key)))


def _lone_surrogate(path: tuple[str | int, ...], document: Any) -> MalformedInput:
    return MalformedInput(f"{_field(path)} holds a lone UTF-16 surrogate (such as \\ud800), which is not "
                          "Unicode text; send valid text", kind="unicode", field=_field(path), path=path,
                          document=document)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:20]} does not fit a 64-bit float")
    return number


def _sent_as_json(request: web.Request) -> bool:
    charset = request.charset
    return request.content_type == "application/json" and (charset is None or charset.lower() in ("utf-8", "utf8"))


async def read_json(request: web.Request) -> Any:
    """The one reader of JSON request bodies (REST POST routes and /mcp): the parsed body, or None
    for an empty one. Raises MalformedInput for a body not sent as `application/json` (UTF-8), one
    that is not strict UTF-8 JSON (NaN, Infinity and numbers beyond a float are refused too), nests
    deeper than MAX_JSON_DEPTH or holds a lone surrogate; lets aiohttp's 413 through. Past this
    point (validation, the gate's approval files, the audit log, answers) every string is valid Unicode."""
    if request.body_exists and not _sent_as_json(request):
        got = request.headers.get("Content-Type")
        raise MalformedInput(f"{request.method} {request.path} takes a JSON body: send Content-Type: application/json "
                             f"(got {repr(got) if got else 'none'})", kind="media_type", field=None, status=415)
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")  # strict: RFC 8259 JSON is UTF-8, and this refuses encoded surrogates
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:  # json's own limit (~1,000 levels), far past ours
        raise MalformedInput(f"request body nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects",
                             kind="depth", field="body") from None
    except ValueError as err:  # includes UnicodeDecodeError
        raise MalformedInput(f"request body is not valid JSON ({err})", kind="syntax", field="body") from None
    # Walk the value only when it could be too deep or hold a surrogate (both scans run in C).
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH or _SURROGATE_ESCAPE.search(text):
        check_json_value(value)
    return value


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
    elif getattr(err, "queued_for", None) is not None:  # a write the ledger queued in the outbox
        extra["queued"] = True
        extra["retry_after"] = max(1, math.ceil(err.queued_for))
        headers["Retry-After"] = str(extra["retry_after"])
    elif isinstance(err, RateLimitError) and err.retry_after is not None:
        extra["retry_after"] = max(1, math.ceil(err.retry_after))
        headers["Retry-After"] = str(extra["retry_after"])
    elif isinstance(err, ValidationError):
        extra["field"] = err.field
    if getattr(err, "outcome", None) == "unknown":
        extra["outcome"] = "unknown"  # it may have happened: check before asking again
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
