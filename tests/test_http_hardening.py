"""Malformed requests the shared MCP server base must refuse cleanly (never with a 500): JSON nested
too deep, text with lone surrogates, bodies not sent as application/json, Host and Origin headers
that only look local; and the servers' JSON log lines, which must be redacted like the audit log."""
from __future__ import annotations

import contextlib
import json
import logging
import sys
from types import SimpleNamespace

import pytest
import requests
from multidict import MultiDict

from core.errors import ValidationError
from core.redact import REDACTED
from mcp_servers import envelope
from mcp_servers.base import JsonFormatter, _query_arguments
from mcp_servers.security import hostname, is_local_origin
from tests import demo_service as demo

pytestmark = pytest.mark.timeout(30)
JSON = {"Content-Type": "application/json"}
GET_ITEM = demo.TOOLS[0]


@pytest.fixture
def srv():
    with contextlib.ExitStack() as stack:
        gate, audit = demo.FakeGate(), demo.RecordingAudit()
        server = stack.enter_context(demo.ServerThread(demo.build_app(gate=gate, audit=audit)))
        yield SimpleNamespace(url=server.url, gate=gate, audit=audit, items=lambda: server.app[demo.ITEMS_KEY])


def strict_json(response: requests.Response):
    """The body as the strictest client reads it: UTF-8 only, no NaN or Infinity."""
    assert response.headers["Content-Type"].startswith("application/json")

    def refuse(name):
        raise AssertionError(f"{name} in a response")

    return json.loads(response.content.decode("utf-8"), parse_constant=refuse)


def assert_envelope(response, status: int, field: str | None = None) -> dict:
    body = strict_json(response)
    assert response.status_code == status, body
    assert body["success"] is False and body["error_code"] == "VALIDATION_ERROR" and body["error"]
    assert "timestamp" in body and body.get("field") == field
    return body


def assert_rpc_error(response, status: int, code: int, msg_id) -> str:
    body = strict_json(response)
    assert response.status_code == status, body
    assert body == {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": body["error"]["message"]}}
    return body["error"]["message"]


def assert_nothing_reached_the_gate(srv):
    assert srv.gate.filed == [] and srv.gate.executed == [] and srv.audit.records == [] and srv.items() == []


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


# --- JSON nested too deep -----------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_json_to_mcp_is_a_parse_error(srv, depth):
    r = requests.post(f"{srv.url}/mcp", data=nested(depth), headers=JSON, timeout=10)
    assert "nests deeper than 64 levels" in assert_rpc_error(r, 400, -32700, None)


def test_deep_tool_arguments_to_mcp_are_a_parse_error(srv):
    body = ('{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "create_item", '
            f'"arguments": {{"name": "widget", "note": {nested(5_000)}}}}}}}')
    r = requests.post(f"{srv.url}/mcp", data=body, headers=JSON, timeout=10)
    assert_rpc_error(r, 400, -32700, None)
    assert_nothing_reached_the_gate(srv)


@pytest.mark.parametrize("body", [nested(5_000), '{"name": "widget", "note": ' + nested(5_000) + "}",
                                  '{"a":' * 3_000 + "1" + "}" * 3_000])
def test_deep_json_to_a_rest_post_is_a_validation_error(srv, body):
    r = requests.post(f"{srv.url}/items", data=body, headers=JSON, timeout=10)
    assert "nests deeper than 64 levels" in assert_envelope(r, 400, "body")["error"]
    assert_nothing_reached_the_gate(srv)


def test_depth_limit_is_exact_and_names_the_field(srv):
    # 64 levels (the object and 63 arrays) are read and validated like any other body ...
    r = requests.post(f"{srv.url}/items", data='{"name": "widget", "note": ' + nested(63) + "}",
                      headers=JSON, timeout=10)
    assert assert_envelope(r, 400, "note")["error"].startswith("note: Input should be a valid string")
    # ... one more is refused before validation, naming where the limit was crossed.
    r = requests.post(f"{srv.url}/items", data='{"name": "widget", "note": ' + nested(64) + "}",
                      headers=JSON, timeout=10)
    assert "nests deeper than 64 levels" in assert_envelope(r, 400, "note" + ".0" * 63)["error"]
    assert_nothing_reached_the_gate(srv)


# --- lone surrogates ----------------------------------------------------------------------------

@pytest.mark.parametrize("raw, status, code, msg_id, where", [
    (rb'{"jsonrpc": "2.0", "id": "\ud800", "method": "ping"}', 400, -32600, None, "id"),
    (rb'{"jsonrpc": "2.0", "id": 1, "method": "\udfff"}', 400, -32600, 1, "method"),
    (rb'{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "\ud800x"}}',
     200, -32602, 2, "params.name"),
    (rb'{"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "get_item", '
     rb'"arguments": {"name": "\udc00"}}}', 200, -32602, "a", "params.arguments.name"),
    (rb'{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "create_item", '
     rb'"arguments": {"name": "widget", "note": "\ud800 \ud83d\ude00"}}}', 200, -32602, 4, "params.arguments.note"),
    (rb'{"jsonrpc": "2.0", "id": 5, "method": "ping", "\ud800": 1}', 400, -32600, 5, r"\ud800"),
])
def test_lone_surrogate_on_mcp_is_a_jsonrpc_error_naming_the_field(srv, raw, status, code, msg_id, where):
    r = requests.post(f"{srv.url}/mcp", data=raw, headers=JSON, timeout=10)
    message = assert_rpc_error(r, status, code, msg_id)
    assert f"{where} holds a lone UTF-16 surrogate" in message
    assert_nothing_reached_the_gate(srv)


@pytest.mark.parametrize("raw, field", [
    (rb'{"name": "\ud800", "qty": 2}', "name"),
    (rb'{"name": "widget", "note": "ok \ud83d\ude00 then \udbff"}', "note"),
    (rb'{"name": "widget", "\udc00": 1}', r"\udc00"),
    (rb'"\ud800"', "body"),
    (b'{"name": "\xed\xa0\x80"}', "body"),  # a surrogate encoded as UTF-8 bytes is not UTF-8 at all
])
def test_lone_surrogate_in_a_rest_body_is_a_validation_error(srv, raw, field):
    r = requests.post(f"{srv.url}/items", data=raw, headers=JSON, timeout=10)
    assert_envelope(r, 400, field)
    assert_nothing_reached_the_gate(srv)


def test_valid_surrogate_pairs_and_non_ascii_text_pass(srv):
    r = requests.post(f"{srv.url}/items", data=rb'{"name": "widget \ud83d\ude00 caf\u00e9", "qty": 2}',
                      headers=JSON, timeout=10)
    assert r.status_code == 403 and strict_json(r)["error_code"] == "APPROVAL_REQUIRED"
    assert srv.gate.filed[0]["params"] == {"name": "widget \U0001F600 café", "qty": 2}


def test_lone_surrogate_in_query_arguments_is_a_validation_error():
    # aiohttp decodes the query with replacement characters, so this is defence in depth at the edge.
    with pytest.raises(ValidationError) as err:
        _query_arguments(MultiDict([("name", "bolt"), ("tags", "ok"), ("tags", "\ud800")]), GET_ITEM)
    assert err.value.field == "tags.1"
    with pytest.raises(ValidationError) as err:
        _query_arguments(MultiDict([("\udfffname", "bolt")]), GET_ITEM)
    assert err.value.field == r"\udfffname"
    assert _query_arguments(MultiDict([("name", "bölt")]), GET_ITEM) == {"name": "bölt"}


def test_answers_are_utf8_even_when_data_holds_a_lone_surrogate():
    body = {"success": True, "data": {"name": "caf\u00e9 \ud800"}}
    text = envelope.dumps(body)
    assert json.loads(text.encode("utf-8")) == body  # escaped, so it encodes, and reads back the same
    response = envelope.json_response(body)
    assert json.loads(response.body.decode("utf-8")) == body
    assert envelope.dumps({"name": "café"}) == '{"name":"café"}'  # valid text stays unescaped


def test_nan_infinity_and_out_of_range_numbers_are_refused(srv):
    for raw in (b'{"name": "widget", "qty": NaN}', b'{"name": "widget", "qty": 1e400}',
                b'{"name": "widget", "qty": -Infinity}'):
        assert "not valid JSON" in assert_envelope(requests.post(f"{srv.url}/items", data=raw, headers=JSON,
                                                                 timeout=10), 400, "body")["error"]
    assert_nothing_reached_the_gate(srv)


# --- Content-Type -------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/json-patch+json", "application/json; charset=latin-1"])
def test_rest_post_body_needs_json_content_type(srv, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = requests.post(f"{srv.url}/items", data=b'{"name": "widget", "qty": 2}', headers=headers, timeout=10)
    body = assert_envelope(r, 415)
    assert "send Content-Type: application/json" in body["error"]
    assert_nothing_reached_the_gate(srv)


@pytest.mark.parametrize("content_type", [None, "text/plain;charset=utf-8"])
def test_mcp_body_needs_json_content_type(srv, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = requests.post(f"{srv.url}/mcp", data=b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}', headers=headers,
                      timeout=10)
    assert "send Content-Type: application/json" in assert_rpc_error(r, 415, -32600, None)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;charset=UTF-8"])
def test_json_content_types_are_accepted(srv, content_type):
    r = requests.post(f"{srv.url}/mcp", data=b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}',
                      headers={"Content-Type": content_type}, timeout=10)
    assert r.status_code == 200 and strict_json(r)["result"] == {}
    r = requests.post(f"{srv.url}/items", data=b'{"name": "widget", "qty": 2}',
                      headers={"Content-Type": content_type}, timeout=10)
    assert r.status_code == 403 and strict_json(r)["error_code"] == "APPROVAL_REQUIRED"


def test_a_post_without_a_body_needs_no_content_type(srv):
    r = requests.post(f"{srv.url}/items", timeout=10)  # Content-Length: 0, as POST /invoices/sync is sent
    assert assert_envelope(r, 400, "name")["error"].startswith("name: Field required")


# --- Host and Origin ----------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["[::1]evil.example", "[::1]:80evil.example", "[::1]:", "[::1]]", "[::1]@evil",
                                  "[localhost]:80", "::1", "localhost:", "localhost:80:80", "127.0.0.1:+80"])
def test_host_that_only_looks_local_is_refused(srv, host):
    rest = requests.get(f"{srv.url}/items", params={"name": "x"}, headers={"Host": host}, timeout=10)
    mcp = requests.post(f"{srv.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Host": host},
                        timeout=10)
    assert (rest.status_code, mcp.status_code) == (403, 403)
    assert strict_json(rest)["error_code"] == "AUTH_ERROR" and strict_json(mcp)["error"]["code"] == -32001


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1:8080", "127.0.0.1"), ("LocalHost", "localhost"), ("[::1]:8080", "::1"), ("[0:0::1]", "::1"),
    ("127.0.0.1:\u0663", None), ("127.0.0.1:\u00b2", None), ("loca\u212alhost", None), ("[::1%25eth0]", None),
    ("[::1", None), ("", None), ("[::1]evil.example", None),
])
def test_hostname_parses_strictly(value, expected):
    assert hostname(value) == expected


@pytest.mark.parametrize("origin, local", [
    ("http://localhost:3000", True), ("HTTPS://[::1]:8080", True), ("http://127.0.0.1", True),
    ("http://[::1]evil.example", False), ("http://127.0.0.1:\u0663", False), ("http://\u24dbocalhost", False),
    ("http://127\u30020\u30020\u30021", False), ("http://localhost#.evil.example", False),
    ("http://user@localhost", False), ("http://localhost/", False), ("ftp://localhost", False), ("null", False),
])
def test_origin_parses_as_strictly_as_host(origin, local):
    assert is_local_origin(origin) is local


# --- redacted JSON logs -------------------------------------------------------------------------

def test_json_log_lines_redact_extra_fields_and_bearer_tokens():
    record = logging.getLogger("mcp_servers").makeRecord(
        "mcp_servers", logging.ERROR, __file__, 1, "upstream said %s", ("Authorization: Bearer tok-in-msg",),
        None, extra={"authorization": "Bearer abc", "token": "x", "detail": {"refresh_token": "r-9", "note": "ok"},
                     "headers": ["Bearer hdr-secret"], "request_id": "req-1"})
    try:
        raise RuntimeError("failed with Bearer exc-secret")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    for secret in ("abc", "tok-in-msg", "r-9", "hdr-secret", "exc-secret"):
        assert secret not in line
    assert entry["authorization"] == entry["token"] == REDACTED
    assert entry["detail"] == {"refresh_token": REDACTED, "note": "ok"} and entry["request_id"] == "req-1"
    assert entry["msg"] == f"upstream said Authorization: Bearer {REDACTED}"
    assert entry["headers"] == [f"Bearer {REDACTED}"] and "RuntimeError" in entry["exc"]
