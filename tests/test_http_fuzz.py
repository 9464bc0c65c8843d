"""Fuzzing the shared MCP server base over real HTTP (the demo server of tests/demo_service.py on a
free loopback port): whatever arrives at /mcp or a REST route, the answer is never a 5xx, is strict
JSON in UTF-8 shaped as the error envelope or JSON-RPC, the server stays up, and no lone surrogate
reaches the approval gate or the audit log.

Bodies are generated as raw JSON *text*, so they can hold what no serializer writes: \\uD800 escapes,
NaN, 1e400, 6,000-digit integers, 3,000-deep nesting, duplicate keys, truncations; plus raw bytes.
Derandomized (a fixed seed per test) so CI sees the same examples every run.
"""
from __future__ import annotations

import http.client
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_servers.security import LOOPBACK_HOSTS, hostname
from mcp_servers.tools import Grant
from tests import demo_service as demo

pytestmark = pytest.mark.timeout(120)
FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
ERROR_CODES = {"VALIDATION_ERROR", "AUTH_ERROR", "NOT_CONFIGURED", "RATE_LIMITED", "UPSTREAM_UNAVAILABLE",
               "UPSTREAM_ERROR", "NOT_FOUND", "APPROVAL_REQUIRED", "INTERNAL_ERROR"}
# Methods llhttp parses; any other token is refused by aiohttp's HTTP parser before the app runs.
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "MKCOL",
                "LOCK", "SEARCH", "REPORT", "PURGE"]
FIELDS = ["name", "qty", "tags", "note", "mode", "grant_id", "task_id", "arguments", "params", "id", "method",
          "jsonrpc", "_meta", "protocolVersion", "capabilities", "clientInfo", "cursor", ""]
WORDS = ["widget", "bolt", "g-ok", "t-1", "down", "rate_limited", "2.0", "2025-06-18", "2025-11-25", "1900-01-01",
         "get_item", "create_item", "get_flaky", "tools/call", "ping", "x" * 100]
TOOL_NAMES = ["get_item", "create_item", "get_flaky"]
TOOL_FIELDS = ["name", "qty", "tags", "note", "mode", "grant_id", "task_id"]
JSON = {"Content-Type": "application/json"}
MAX_QUERY = 7000  # aiohttp's parser refuses request lines over 8190 bytes (text/plain 400) before the app runs
RPC_METHODS = ["initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
               "prompts/list", "notifications/initialized", "notifications/cancelled", "server/discover", "",
               "tools/call\u0000", "TOOLS/LIST"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON;charset=UTF-8",
                 "application/json; charset=latin-1", 'application/json; charset="utf-8"', "application/json;;",
                 "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ";", "",
                 "application/jsonx", "application/*", "*/*", "application/json-rpc"]

# --- JSON text, built by hand so that it can be anything a client might send --------------------

def mostly(valid: st.SearchStrategy, anything: st.SearchStrategy, odds: int = 3) -> st.SearchStrategy:
    """`odds` times in odds+1 the plausible value, so that examples get past the first checks."""
    return st.sampled_from([valid] * odds + [anything]).flatmap(lambda strategy: strategy)


CHARS = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr),
                  st.sampled_from(['"', "\\", "/", "\x00", "\x1f", "\u2028", "\ufeff", "\U0001F600", "é"]))


def _string(text: str, style: str) -> str:
    if style == "raw":  # the code point itself; encoded with surrogatepass it becomes ED A0 80
        return json.dumps(text, ensure_ascii=False)
    escaped = json.dumps(text)  # \ud800 escapes ...
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m[1].upper(), escaped) if style == "upper" else escaped


STRINGS = st.builds(_string, st.one_of(st.text(CHARS, max_size=12), st.sampled_from(WORDS)),
                    st.sampled_from(["ascii", "ascii", "upper", "raw"]))
NUMBERS = st.one_of(
    st.integers().map(str), st.integers(-(2 ** 70), 2 ** 70).map(str), st.floats().map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps), st.integers(1, 6000).map(lambda n: "9" * n),
    st.sampled_from(["NaN", "-Infinity", "Infinity", "1e400", "-1e400", "1E-400", "-0", "0.0", "1e308", "2", "100",
                     "101", "0", "-1", "01", "1.", ".5", "0x10", "2.0"]))
SCALARS = st.one_of(st.sampled_from(["null", "true", "false"]), NUMBERS, STRINGS)
_OPEN_CLOSE = {"[": "]", '{"a":': "}", '[{"b":': "}]", '{"name":': "}"}
DEEP = st.builds(lambda depth, opener, leaf: opener * depth + leaf + _OPEN_CLOSE[opener] * depth,
                 st.one_of(st.integers(1, 70), st.integers(1, 3000)), st.sampled_from(sorted(_OPEN_CLOSE)), SCALARS)
KEYS = st.one_of(st.sampled_from(FIELDS).map(json.dumps), STRINGS)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(members: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{key}:{value}" for key, value in members) + "}"


VALUES = st.recursive(st.one_of(SCALARS, SCALARS, SCALARS, DEEP), lambda inner: st.one_of(
    st.lists(inner, max_size=4).map(_array), st.lists(st.tuples(KEYS, inner), max_size=4).map(_object)),
    max_leaves=12)
OBJECTS = st.lists(st.tuples(KEYS, VALUES), max_size=5).map(_object)
# Tool arguments and REST bodies: the demo tools' fields with plausible values, or anything at all.
ARG_VALUES = mostly(st.one_of(st.sampled_from(WORDS).map(json.dumps), st.sampled_from(["1", "2", "100", "0", "-1"]),
                              st.lists(st.sampled_from(WORDS).map(json.dumps), max_size=3).map(_array)),
                    st.one_of(STRINGS, VALUES))


@st.composite
def arguments(draw) -> str:
    """A demo tool's arguments: mostly its own fields (name first, usually), now and then anything."""
    fields = draw(st.lists(st.sampled_from(TOOL_FIELDS[1:]), max_size=4, unique=True))
    if draw(mostly(st.just(True), st.just(False))):
        fields.insert(0, "name")
    members = [(json.dumps(field), draw(ARG_VALUES)) for field in fields]
    members += draw(mostly(st.just([]), st.lists(st.tuples(KEYS, VALUES), max_size=2)))
    return _object(members)


@st.composite
def rpc_messages(draw) -> str:
    method = draw(mostly(st.sampled_from(["tools/call"] * 4 + RPC_METHODS[:8]).map(json.dumps),
                         st.one_of(st.sampled_from(RPC_METHODS).map(json.dumps), STRINGS, VALUES)))
    if method == '"tools/call"':
        name = draw(mostly(st.sampled_from(TOOL_NAMES).map(json.dumps), st.one_of(STRINGS, VALUES)))
        params = draw(mostly(st.builds(lambda a: _object([('"name"', name), ('"arguments"', a)]),
                                       mostly(arguments(), VALUES)), VALUES))
    elif method == '"initialize"':
        version = draw(st.one_of(st.sampled_from(["2025-06-18", "2025-11-25", "2099-01-01"]).map(json.dumps), VALUES))
        params = draw(mostly(st.just(_object([('"protocolVersion"', version), ('"capabilities"', "{}")])), VALUES))
    else:
        params = draw(st.one_of(st.just("{}"), OBJECTS, VALUES))
    members = [('"jsonrpc"', draw(mostly(st.just('"2.0"'), VALUES, odds=9))),
               ('"id"', draw(mostly(st.one_of(st.integers().map(str), STRINGS), VALUES, odds=9))),
               ('"method"', method), ('"params"', params)]
    kept = [m for m in members if draw(st.integers(0, 19))]  # now and then a member is missing
    return _object(kept + draw(mostly(st.just([]), st.lists(st.tuples(KEYS, VALUES), max_size=2), odds=9)))


def _encode(text: str, how: str) -> bytes:
    if how == "truncated":
        return text[: len(text) // 2].encode("utf-8", "surrogatepass")
    return text.encode("utf-16" if how == "utf-16" else "utf-8", "surrogatepass")


def bodies(json_texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return mostly(st.builds(_encode, json_texts, st.sampled_from(["utf-8"] * 8 + ["truncated", "utf-16"])),
                  st.one_of(st.binary(max_size=64), st.just(b""), st.just(b" \r\n\t")))


CONTENT_TYPE = mostly(st.sampled_from(CONTENT_TYPES[:3]),
                      st.one_of(st.none(), st.sampled_from(CONTENT_TYPES),
                                st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)))
_QUERY_ATOMS = st.one_of(st.sampled_from(TOOL_FIELDS + FIELDS + WORDS + ["1", "0", "-5", "101", "nan", "1e400"]),
                         st.integers(1, 4000).map(lambda n: "9" * n), st.text(CHARS, max_size=8))


@st.composite
def query_strings(draw) -> str:
    def enc(text: str) -> str:
        return quote(text.encode("utf-8", "surrogatepass"), safe="")  # a lone surrogate travels as %ED%A0%80

    pairs = draw(st.lists(st.tuples(mostly(st.sampled_from(TOOL_FIELDS), _QUERY_ATOMS), _QUERY_ATOMS), max_size=4))
    if draw(mostly(st.just(True), st.just(False))):
        pairs.insert(0, ("name", draw(_QUERY_ATOMS)))
    query = "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)
    junk = draw(st.one_of(st.just(""), st.text(st.sampled_from("%&=+;,/:@!$'()*~-._aZ09"), max_size=10)))
    return (query + junk)[:MAX_QUERY]


PATHS = mostly(st.just("/items"), st.one_of(
    st.sampled_from(["/health", "/nowhere", "/items/", "/mcp/", "//items"]),
    st.text(st.sampled_from("abcxyz019-._~%/"), max_size=10).map(lambda p: "/" + p)))


# --- the server and a raw HTTP client ------------------------------------------------------------

class RawClient:
    """http.client over one kept-alive connection, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.conn.request(method, target, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            return response.status, response.headers, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class GrantingGate(demo.FakeGate):
    """Grants every call that carries a grant_id (so fuzzed writes reach the handler and the audit
    log); files a request, as the real gate does, for the others. Either way it keeps the params."""

    def authorize(self, *, service: str, action: str, params: dict, grant_id: str | None,
                  task_id: str | None) -> Grant:
        if grant_id is None:
            return super().authorize(service=service, action=action, params=params, grant_id=None, task_id=task_id)
        self.filed.append({"granted": grant_id, "params": params, "task_id": task_id})
        return Grant(id=grant_id, idempotency_key=f"idem-{grant_id}", approved_by="owner")


@pytest.fixture
def server():
    """One demo server for all the examples of a property (deliberately: it must survive them all);
    after the last one it must still be serving, and what reached its gate and audit log be clean."""
    gate, audit = GrantingGate(), demo.RecordingAudit()
    with demo.ServerThread(demo.build_app(gate=gate, audit=audit)) as thread:
        client = RawClient(thread.port)
        yield thread, client, gate, audit
        assert_still_serving_and_clean(client, gate, audit)
        client.close()


def strict_json(data: bytes):
    def refuse(name: str):
        raise AssertionError(f"{name} is not JSON")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def check_answer(method: str, path: str, status: int, headers, data: bytes) -> None:
    assert status < 500, (status, data[:300])
    if status == 202:  # a notification, or a response to a server request, over /mcp
        assert data == b"" and path == "/mcp"
        return
    if method == "HEAD":
        assert data == b""
        return
    assert headers["Content-Type"].startswith("application/json"), headers["Content-Type"]
    body = strict_json(data)
    assert isinstance(body, dict)
    if path == "/mcp":
        assert body["jsonrpc"] == "2.0" and "id" in body and ("result" in body) != ("error" in body), body
        if "error" in body:
            assert isinstance(body["error"]["code"], int) and isinstance(body["error"]["message"], str)
        elif isinstance(body["result"].get("structuredContent"), dict):
            result = body["result"]
            assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
            assert result["structuredContent"]["success"] is (not result["isError"])
    elif path == "/health" and status == 200:
        assert body["status"] in ("healthy", "degraded", "not_configured")
    else:
        assert isinstance(body["success"], bool) and isinstance(body["timestamp"], str), body
        if body["success"]:
            assert status == 200 and "data" in body
        else:
            assert body["error_code"] in ERROR_CODES and isinstance(body["error"], str), body


def assert_still_serving_and_clean(client: RawClient, gate: GrantingGate, audit: demo.RecordingAudit) -> None:
    status, _, data = client.send("GET", "/health", None, {})
    assert status == 200 and strict_json(data)["status"] == "healthy"
    # What reached the gate and the audit log is valid Unicode: it can be written to a UTF-8 file.
    json.dumps([gate.filed, [r for _, r in gate.executed], audit.records], ensure_ascii=False,
               default=str).encode("utf-8")


# --- the properties ------------------------------------------------------------------------------

@FUZZ
@given(body=bodies(mostly(rpc_messages(), VALUES)), content_type=CONTENT_TYPE,
       method=mostly(st.just("POST"), st.sampled_from(HTTP_METHODS)),
       version=st.one_of(st.none(), st.sampled_from(["2025-06-18", "2025-03-26", "2025-11-25", "2026-07-28", "x"])),
       query=st.one_of(st.just(""), query_strings()))
def test_mcp_never_fails_and_always_answers_json_rpc(server, body, content_type, method, version, query):
    headers = {"Content-Type": content_type} if content_type is not None else {}
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    target = "/mcp" + (f"?{query}" if query else "")
    status, response_headers, data = server[1].send(method, target, body if method != "GET" else None, headers)
    check_answer(method, "/mcp", status, response_headers, data)


@FUZZ
@given(path=PATHS, method=mostly(st.sampled_from(["GET", "POST"]), st.sampled_from(HTTP_METHODS)),
       query=st.one_of(st.just(""), query_strings()), body=st.one_of(st.none(), bodies(mostly(arguments(), VALUES))),
       content_type=CONTENT_TYPE)
def test_rest_routes_never_fail_and_always_answer_the_envelope(server, path, method, query, body, content_type):
    headers = {"Content-Type": content_type} if content_type is not None else {}
    target = path + (f"?{query}" if query else "")
    status, response_headers, data = server[1].send(method, target, body, headers)
    check_answer(method, path, status, response_headers, data)


@FUZZ
@given(tool=mostly(st.sampled_from(TOOL_NAMES).map(json.dumps), STRINGS, odds=9),
       args=mostly(arguments(), VALUES, odds=9), msg_id=st.one_of(st.integers(), st.text(max_size=8)))
def test_mcp_tool_calls_never_fail(server, tool, args, msg_id):
    """Well-formed tools/call messages, the fuzz in the tool name and the arguments."""
    message = _object([('"jsonrpc"', '"2.0"'), ('"id"', json.dumps(msg_id)), ('"method"', '"tools/call"'),
                       ('"params"', _object([('"name"', tool), ('"arguments"', args)]))])
    status, headers, data = server[1].send("POST", "/mcp", message.encode("utf-8", "surrogatepass"), JSON)
    check_answer("POST", "/mcp", status, headers, data)


@FUZZ
@given(method=st.sampled_from(["GET", "POST"]), args=arguments(), query=query_strings())
def test_rest_tool_calls_never_fail(server, method, args, query):
    """Well-formed REST calls of the demo's read and write tools, the fuzz in their arguments."""
    if method == "GET":
        status, headers, data = server[1].send("GET", f"/items?{query}", None, {})
    else:
        status, headers, data = server[1].send("POST", "/items", args.encode("utf-8", "surrogatepass"), JSON)
    check_answer(method, "/items", status, headers, data)


_STRICTLY_LOCAL = re.compile(r"(?:localhost|127\.0\.0\.1|\[[0-9a-f:]+\])(?::[0-9]+)?", re.ASCII | re.IGNORECASE)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.one_of(
    st.text(max_size=30),
    st.builds(lambda host, tail: host + tail, st.sampled_from(["localhost", "127.0.0.1", "[::1]", "[0::1]", "[::1"]),
              st.text(st.sampled_from(":]@[.0123456789abcdefx/\u0663\u00b2 "), max_size=8))))
def test_only_strict_local_host_values_are_local(value):
    if hostname(value) in LOOPBACK_HOSTS:
        assert _STRICTLY_LOCAL.fullmatch(value), value
