"""POST /mcp: the Model Context Protocol over Streamable HTTP, stateless, JSON responses only.

No session id and no SSE: every request is answered by its own POST's JSON body, which is all a
tool server needs. Tool failures are `isError` results carrying the REST error envelope (the model
can read and react to them); only protocol misuse becomes a JSON-RPC error.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mcp_servers import envelope
from mcp_servers.dispatch import execute
from mcp_servers.tools import CONFIG_KEY, MCP_TOOLS_LIST_KEY, REQUEST_ID_KEY, TOOLS_KEY, Tool

SUPPORTED_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
DRY_RUN_SCHEMA = {
    "type": "object",
    "properties": {"dry_run": {"const": True}, "action": {"type": "string"}, "params": {"type": "object"},
                   "would": {"type": "string"}},
    "required": ["dry_run", "action", "params", "would"],
}


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def output_schema(tool: Tool) -> dict:
    """Schema of structuredContent, which is the success envelope around the tool's `data`."""
    data = dict(tool.output_schema)
    defs = data.pop("$defs", None)  # hoisted, so "#/$defs/..." references keep resolving
    if tool.write_action is not None:
        data = {"anyOf": [data, DRY_RUN_SCHEMA]}
    schema = {
        "type": "object",
        "properties": {"success": {"const": True}, "data": data, "timestamp": {"type": "string"}},
        "required": ["success", "data", "timestamp"],
    }
    return {**schema, "$defs": defs} if defs else schema


def tool_definition(tool: Tool) -> dict:
    title = tool.title or tool.name.replace("_", " ").capitalize()
    return {
        "name": tool.name,
        "title": title,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": output_schema(tool),
        "annotations": {"title": title, "readOnlyHint": tool.read_only, "destructiveHint": tool.destructive,
                        "idempotentHint": tool.idempotent, "openWorldHint": tool.open_world},
    }


def setup(app: web.Application) -> None:
    app[MCP_TOOLS_LIST_KEY] = {"tools": [tool_definition(t) for t in app[TOOLS_KEY].values()]}
    app.router.add_route("*", "/mcp", handle)


async def _initialize(request: web.Request, params: dict) -> dict:
    requested = params.get("protocolVersion")
    if not isinstance(requested, str):
        raise RpcError(INVALID_PARAMS, "initialize needs params.protocolVersion (a string)")
    config = request.app[CONFIG_KEY]
    return {
        "protocolVersion": requested if requested in SUPPORTED_VERSIONS else LATEST_VERSION,
        "capabilities": {"tools": {"listChanged": False}, "resources": {}, "prompts": {}},
        "serverInfo": {"name": f"ai-employee-{config.service}", "title": f"AI Employee {config.service}",
                       "version": config.version},
        "instructions": (
            f"Tools of the AI Employee's {config.service} server. Read-only tools answer at once. Write tools "
            "never act without the owner's approval: called without a valid grant_id they file an approval "
            "request and return an error with error_code APPROVAL_REQUIRED and its approval_id; call again "
            "with grant_id once the owner has approved. Failures are results with isError true and an "
            "error_code." + (" This server is in DRY_RUN mode: writes only report what they would do."
                             if config.dry_run else "")),
    }


async def _tools_call(request: web.Request, params: dict) -> dict:
    name, arguments = params.get("name"), params.get("arguments")
    tool = request.app[TOOLS_KEY].get(name) if isinstance(name, str) else None
    if tool is None:
        raise RpcError(INVALID_PARAMS, f"Unknown tool: {name}")
    if arguments is not None and not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, "params.arguments must be an object")
    request_id = request[REQUEST_ID_KEY]
    try:
        body, is_error = envelope.success(await execute(request.app, tool, arguments or {},
                                                        request_id=request_id)), False
    except Exception as err:  # noqa: BLE001 - every tool failure is an isError result
        body, is_error = envelope.from_exception(err, request_id)[1], True
    return {"content": [{"type": "text", "text": envelope.dumps(body)}], "structuredContent": body,
            "isError": is_error}


async def _listing(request: web.Request, params: dict) -> dict:
    return request.app[MCP_TOOLS_LIST_KEY]


def _empty(key: str) -> Callable[[web.Request, dict], Awaitable[dict]]:
    async def answer(request: web.Request, params: dict) -> dict:
        return {key: []} if key else {}
    return answer


METHODS: dict[str, Callable[[web.Request, dict], Awaitable[dict]]] = {
    "initialize": _initialize,
    "ping": _empty(""),
    "tools/list": _listing,
    "tools/call": _tools_call,
    # Nothing to offer here, but clients that list everything get a quick empty answer.
    "resources/list": _empty("resources"),
    "resources/templates/list": _empty("resourceTemplates"),
    "prompts/list": _empty("prompts"),
}


def _reply(message: dict, status: int = 200) -> web.Response:
    return web.Response(text=envelope.dumps({"jsonrpc": "2.0", **message}), status=status,
                        content_type="application/json")


def _error(msg_id: Any, code: int, message: str, status: int = 200) -> web.Response:
    return _reply({"id": msg_id, "error": {"code": code, "message": message}}, status)


def _valid_id(msg_id: Any) -> bool:
    return isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool)  # MCP: never null


def _unreadable(err: envelope.MalformedInput) -> web.Response:
    """The JSON-RPC answer to a body the shared reader refused."""
    if err.kind == "media_type":
        return _error(None, INVALID_REQUEST, f"Invalid Request: {err}", err.http_status)
    if err.kind != "unicode":  # not JSON, or nested too deep to parse
        return _error(None, PARSE_ERROR, f"Parse error: {err}", 400)
    # Parsed, but some string is not Unicode text: answer the request's id unless that is the culprit.
    message = err.document if isinstance(err.document, dict) else {}
    msg_id = message.get("id") if err.path[:1] != ("id",) and _valid_id(message.get("id")) else None
    if msg_id is not None and err.path[:1] == ("params",):
        return _error(msg_id, INVALID_PARAMS, f"Invalid params: {err}")
    return _error(msg_id, INVALID_REQUEST, f"Invalid Request: {err}", 400)


async def handle(request: web.Request) -> web.Response:
    if request.method != "POST":
        return web.Response(status=405, headers={"Allow": "POST"}, content_type="application/json",
                            text=envelope.dumps({"jsonrpc": "2.0", "id": None, "error": {
                                "code": INVALID_REQUEST,
                                "message": "this stateless server has no event stream: POST JSON-RPC to /mcp"}}))
    try:
        message = await envelope.read_json(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG_KEY].max_body_bytes
        return _error(None, INVALID_REQUEST, f"message is larger than {limit} bytes", 413)
    except envelope.MalformedInput as err:
        return _unreadable(err)
    if message is None:
        return _error(None, PARSE_ERROR, "Parse error: the body is empty", 400)
    if not isinstance(message, dict):
        hint = "batches are not supported" if isinstance(message, list) else "expected a JSON object"
        return _error(None, INVALID_REQUEST, f"Invalid Request: {hint}", 400)
    msg_id, method = message.get("id"), message.get("method")
    is_request = "id" in message
    valid_id = _valid_id(msg_id)
    if message.get("jsonrpc") != "2.0" or (is_request and not valid_id):
        text = "Invalid Request: needs jsonrpc '2.0' and a string or integer id"
        return _error(msg_id if valid_id else None, INVALID_REQUEST, text, 400)
    if method is None and is_request and ("result" in message or "error" in message):
        return web.Response(status=202)  # a response to a server request; this server never sends any
    if not isinstance(method, str):
        return _error(msg_id if is_request else None, INVALID_REQUEST, "Invalid Request: method must be a string", 400)
    version = request.headers.get("MCP-Protocol-Version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        # An unknown method stays -32601 at any version, so a newer client's probe (server/discover
        # sent at a newer version) falls back to initialize instead of concluding incompatibility.
        code = INVALID_REQUEST if method in METHODS else METHOD_NOT_FOUND
        text = f"Unsupported MCP-Protocol-Version {version!r}; supported: {', '.join(SUPPORTED_VERSIONS)}"
        return _error(msg_id if is_request else None, code, text, 400)
    if not is_request:
        return web.Response(status=202)  # notifications/initialized, cancelled, ...: nothing to answer
    answer = METHODS.get(method)
    if answer is None:
        return _error(msg_id, METHOD_NOT_FOUND, f"Method not found: {method}")
    params = message.get("params")
    if params is not None and not isinstance(params, dict):
        return _error(msg_id, INVALID_PARAMS, "params must be an object")
    try:
        return _reply({"id": msg_id, "result": await answer(request, params or {})})
    except RpcError as err:
        return _error(msg_id, err.code, err.message)
