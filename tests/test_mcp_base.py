"""The shared MCP server base over real HTTP on a free loopback port: REST envelopes, security,
the approval gate, dry run, /health, run() as a process, and raw JSON-RPC on /mcp."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pydantic
import pytest
import requests

from mcp_servers.base import create_app, overall_status
from mcp_servers.tools import ServerConfig, Tool, ToolInput
from tests import demo_service as demo

pytestmark = pytest.mark.timeout(30)
SNAPSHOT = Path(__file__).parent / "snapshots" / "mcp_demo_tools_list.json"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def serve():
    """serve(**build_app kwargs) → namespace(url, gate, audit, app), stopped after the test."""
    with contextlib.ExitStack() as stack:
        def start(**kwargs):
            gate, audit = kwargs.pop("gate", None) or demo.FakeGate(), demo.RecordingAudit()
            server = stack.enter_context(demo.ServerThread(demo.build_app(gate=gate, audit=audit, **kwargs)))
            return SimpleNamespace(url=server.url, gate=gate, audit=audit, app=server.app,
                                   items=lambda: server.app[demo.ITEMS_KEY])
        yield start


@pytest.fixture
def srv(serve):
    return serve()


def rpc(url, method, params=None, *, msg_id=1, headers=None):
    message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        message["params"] = params
    return requests.post(f"{url}/mcp", json=message, headers=headers, timeout=10)


# --- /health -------------------------------------------------------------------------------

def test_health_reports_service_and_needs_no_token(serve):
    s = serve(auth_token="s3cret")
    r = requests.get(f"{s.url}/health", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "healthy", "service": "demo", "version": "0.1.0", "dry_run": False,
                        "checks": {"demo_api": {"status": "healthy", "detail": "reachable"}}}


@pytest.mark.parametrize("checks, status", [
    ({"api": {"status": "healthy"}, "token": {"status": "not_configured"}}, "not_configured"),
    ({"api": {"status": "degraded"}, "token": {"status": "not_configured"}}, "degraded"),
    ({"api": {"status": "on fire"}}, "degraded"),
    ({}, "healthy"),
])
def test_overall_status(checks, status):
    assert overall_status(checks) == status


def test_health_stays_200_when_a_check_raises_or_fails(serve):
    broken = serve(health=OSError("socket gone"))
    r = requests.get(f"{broken.url}/health", timeout=10)
    assert (r.status_code, r.json()["status"]) == (200, "degraded")
    assert r.json()["checks"]["health_checks"]["status"] == "degraded" and "socket" not in r.text
    failing = serve(health={"demo_api": {"status": "degraded", "detail": "HTTP 503"}})
    r = requests.get(f"{failing.url}/health", timeout=10)
    assert (r.status_code, r.json()["status"]) == (200, "degraded")


# --- REST envelopes ------------------------------------------------------------------------

def test_get_reads_coerced_query_parameters(srv):
    r = requests.get(f"{srv.url}/items", params={"name": "bolt", "qty": "3", "tags": ["a", "b"]}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["success"] is True and ISO_Z.match(body["timestamp"])
    assert body["data"] == {"name": "bolt", "qty": 3, "tags": ["a", "b"], "price": 7.5}
    assert r.headers["X-Request-ID"]


@pytest.mark.parametrize("params, field", [({}, "name"), ({"name": "bolt", "qty": "many"}, "qty"),
                                           ({"name": "bolt", "colour": "red"}, "colour")])
def test_validation_error_names_the_field(srv, params, field):
    r = requests.get(f"{srv.url}/items", params=params, timeout=10)
    body = r.json()
    assert r.status_code == 400 and body["success"] is False and body["error_code"] == "VALIDATION_ERROR"
    assert body["error"].startswith(f"{field}: ") and body["field"] == field


@pytest.mark.parametrize("raw, needle", [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"),
                                         (b"\xff\xfe", "not valid JSON")])
def test_post_body_must_be_a_json_object(srv, raw, needle):
    r = requests.post(f"{srv.url}/items", data=raw, headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["error_code"] == "VALIDATION_ERROR"
    assert needle in r.json()["error"]
    assert srv.gate.filed == []


def test_body_too_large_is_413_envelope(srv):
    big = json.dumps({"name": "x" * (1 << 20)})
    r = requests.post(f"{srv.url}/items", data=big, headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413
    assert r.json()["error_code"] == "VALIDATION_ERROR" and "1048576 bytes" in r.json()["error"]


def test_unknown_route_and_wrong_method(srv):
    r = requests.get(f"{srv.url}/nowhere", timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "NOT_FOUND" and "/nowhere" in r.json()["error"]
    r = requests.delete(f"{srv.url}/items", timeout=10)
    assert r.status_code == 405 and set(r.headers["Allow"].split(",")) == {"GET", "POST"}
    assert r.json()["success"] is False


def test_upstream_failures_map_to_status_codes(srv):
    r = requests.get(f"{srv.url}/flaky", params={"mode": "rate_limited"}, timeout=10)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json()["error_code"] == "RATE_LIMITED" and r.json()["retry_after"] == 7
    r = requests.get(f"{srv.url}/flaky", timeout=10)
    assert r.status_code == 503 and r.json()["error_code"] == "UPSTREAM_UNAVAILABLE"


def test_internal_error_hides_internals_and_logs_traceback(srv, caplog):
    r = requests.get(f"{srv.url}/flaky", params={"mode": "crash"}, timeout=10)
    assert r.status_code == 500 and r.json()["error_code"] == "INTERNAL_ERROR"
    assert "hunter2" not in r.text and "RuntimeError" not in r.text and "key.pem" not in r.text
    request_id = r.headers["X-Request-ID"]
    assert request_id in r.json()["error"]
    logged = [rec for rec in caplog.records if rec.exc_info and getattr(rec, "request_id", None) == request_id]
    assert logged and "hunter2" in str(logged[0].exc_info[1])


# --- security ------------------------------------------------------------------------------

def test_bearer_token_required_except_health(serve):
    s = serve(auth_token="s3cret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        r = requests.get(f"{s.url}/items", params={"name": "x"}, headers=headers, timeout=10)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json()["error_code"] == "AUTH_ERROR" and "s3cret" not in r.text
    refused = rpc(s.url, "ping")  # /mcp answers in JSON-RPC so MCP clients show the reason
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert refused.json() == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32001, "message": "missing or wrong bearer token (MCP_AUTH_TOKEN)"}}
    ok = requests.get(f"{s.url}/items", params={"name": "x"}, headers={"Authorization": "bearer s3cret"}, timeout=10)
    assert ok.status_code == 200
    assert rpc(s.url, "ping", headers={"Authorization": "Bearer s3cret"}).json()["result"] == {}


@pytest.mark.parametrize("header, value, status", [
    ("Origin", "https://evil.example", 403), ("Origin", "null", 403), ("Origin", "http://127.0.0.1.evil.example", 403),
    ("Origin", "http://localhost:3000", 200), ("Origin", "http://[::1]:8080", 200),
    ("Host", "evil.example:8080", 403), ("Host", "localhost.evil.example", 403),
    ("Host", "localhost:1234", 200), ("Host", "[::1]:80", 200), ("Host", "127.0.0.1", 200),
])
def test_non_local_origin_or_host_is_refused(srv, header, value, status):
    rest = requests.get(f"{srv.url}/items", params={"name": "x"}, headers={header: value}, timeout=10)
    mcp = rpc(srv.url, "ping", headers={header: value})
    assert (rest.status_code, mcp.status_code) == (status, status)
    if status == 403:
        assert rest.json()["error_code"] == "AUTH_ERROR" and mcp.json()["error"]["code"] == -32001


# --- the approval gate, dry run, audit ---------------------------------------------------------

def test_write_without_grant_files_a_request_and_does_nothing(srv):
    r = requests.post(f"{srv.url}/items", json={"name": "widget", "qty": 2, "task_id": "t-1"}, timeout=10)
    body = r.json()
    assert r.status_code == 403 and body["error_code"] == "APPROVAL_REQUIRED" and body["approval_id"] == "apr-1"
    assert srv.gate.filed == [{"id": "apr-1", "service": "demo", "action": "create_item",
                               "params": {"name": "widget", "qty": 2}, "grant_id": None, "task_id": "t-1"}]
    assert srv.items() == [] and srv.gate.executed == [] and srv.audit.records == []


def test_write_with_grant_executes_once(srv):
    call = {"name": "widget", "qty": 2, "grant_id": "g-ok", "task_id": "t-1"}
    r = requests.post(f"{srv.url}/items", json=call, timeout=10)
    assert r.status_code == 200
    assert r.json()["data"] == {"id": "item-1", "name": "widget", "idempotency_key": "idem-g-ok"}
    assert len(srv.items()) == 1 and srv.items()[0]["grant"].id == "g-ok"
    [(grant, result)] = srv.gate.executed
    assert grant.id == "g-ok" and result["data"]["id"] == "item-1"
    assert srv.audit.records == [{
        "action_type": "create_item", "actor": "mcp-demo", "target": "widget",
        "parameters": {"name": "widget", "qty": 2}, "approval_status": "approved", "approved_by": "owner",
        "result": {"success": True, "dry_run": False}, "task_id": "t-1", "idempotency_key": "idem-g-ok"}]
    again = requests.post(f"{srv.url}/items", json=call, timeout=10)  # a grant is single-use
    assert again.status_code == 403 and again.json()["error_code"] == "APPROVAL_REQUIRED"
    assert len(srv.items()) == 1


def test_grant_is_bound_to_exact_params(srv):
    r = requests.post(f"{srv.url}/items", json={"name": "widget", "qty": 3, "grant_id": "g-ok"}, timeout=10)
    assert r.status_code == 403 and srv.items() == [] and srv.gate.filed[0]["params"] == {"name": "widget", "qty": 3}


def test_failed_write_is_audited_and_grant_not_spent(serve):
    s = serve(gate=demo.FakeGate(("g-boom", "create_item", {"name": "boom", "qty": 1})))
    r = requests.post(f"{s.url}/items", json={"name": "boom", "grant_id": "g-boom"}, timeout=10)
    assert r.status_code == 502 and r.json()["error_code"] == "UPSTREAM_ERROR"
    assert s.gate.executed == []
    [record] = s.audit.records
    assert record["result"] == {"success": False, "error_code": "UPSTREAM_ERROR",
                                "error": "the demo platform refused the item"}


def test_dry_run_reports_without_calling_the_handler(serve):
    s = serve(dry_run=True)
    r = requests.post(f"{s.url}/items", json={"name": "widget", "qty": 2, "grant_id": "g-ok"}, timeout=10)
    assert r.status_code == 200
    assert r.json()["data"] == {"dry_run": True, "action": "create_item", "params": {"name": "widget", "qty": 2},
                                "would": "create 2 x 'widget'"}
    assert s.items() == [] and len(s.gate.executed) == 1
    assert s.audit.records[0]["result"] == {"success": True, "dry_run": True}
    assert requests.get(f"{s.url}/health", timeout=10).json()["dry_run"] is True


# --- definitions -------------------------------------------------------------------------------

def test_factory_refuses_unsafe_or_ambiguous_definitions():
    config = ServerConfig(service="demo", version="0", port=0)
    with pytest.raises(ValueError, match="approval gate"):
        create_app(config, demo.TOOLS, gate=None)
    with pytest.raises(ValueError, match="already taken"):
        create_app(config, [demo.TOOLS[0], demo.TOOLS[0]], gate=None)

    class Loose(pydantic.BaseModel):  # extras would be silently ignored
        name: str

    kwargs = dict(description="d", output_schema={}, handler=demo.get_item, method="GET", path="/x")
    with pytest.raises(ValueError, match="forbid extra"):
        Tool(name="loose", input_model=Loose, **kwargs)
    with pytest.raises(ValueError, match="snake_case"):
        Tool(name="Bad-Name", input_model=demo.GetItemInput, **kwargs)
    with pytest.raises(ValueError, match="POST and not read_only"):
        Tool(name="w", input_model=demo.GetItemInput, write_action="w", **kwargs)

    class Clash(ToolInput):
        grant_id: str

    with pytest.raises(ValueError, match="grant_id"):
        Tool(name="c", input_model=Clash, write_action="c", read_only=False,
             **{**kwargs, "method": "POST"})


# --- run() as a real process -----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_serves_logs_json_and_stops_on_sigterm():
    port, token = _free_port(), "tok-9f8e7d"
    proc = subprocess.Popen([sys.executable, str(Path(demo.__file__)), str(port), token],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not come up"
            time.sleep(0.05)
        r = requests.get(f"http://127.0.0.1:{port}/items", params={"name": "x"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is JSON
    access = [e for e in lines if e["msg"] == "request" and e["path"] == "/items"]
    assert access and access[0]["method"] == "GET" and access[0]["status"] == 200 and access[0]["ms"] >= 0
    assert token not in err and "Authorization" not in err
    assert lines[-1]["msg"] == "stopped"


# --- /mcp: raw JSON-RPC ----------------------------------------------------------------------

@pytest.mark.parametrize("body, code, msg_id", [
    (b"{not json", -32700, None),
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', -32600, None),
    (b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}', -32600, 1),
    (b'{"jsonrpc": "2.0", "id": 2, "method": 7}', -32600, 2),
    (b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', -32600, None),
    (b'"ping"', -32600, None),
])
def test_mcp_parse_and_invalid_request_errors(srv, body, code, msg_id):
    r = requests.post(f"{srv.url}/mcp", data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": r.json()["error"]["message"]}}


def test_mcp_body_too_large(srv):
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * (1 << 20)}})
    r = requests.post(f"{srv.url}/mcp", data=big, headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413 and r.json()["error"]["code"] == -32600


@pytest.mark.parametrize("method, params, code", [
    ("no/such/method", None, -32601),
    ("server/discover", {}, -32601),
    ("tools/call", {"name": "no_such_tool", "arguments": {}}, -32602),
    ("tools/call", {"name": "get_item", "arguments": ["x"]}, -32602),
    ("tools/list", ["not", "an", "object"], -32602),
    ("initialize", {"capabilities": {}}, -32602),
])
def test_mcp_method_errors(srv, method, params, code):
    r = rpc(srv.url, method, params, msg_id="req-7")
    assert r.status_code == 200
    assert r.json() == {"jsonrpc": "2.0", "id": "req-7", "error": {"code": code, "message": r.json()["error"]["message"]}}


def test_mcp_server_discover_probe_at_newer_version_is_method_not_found(srv):
    # What the official 2.x client sends first; anything but -32022 makes it fall back to initialize.
    r = rpc(srv.url, "server/discover", {"_meta": {}}, headers={"MCP-Protocol-Version": "2026-07-28"})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32601 and r.json()["id"] == 1


def test_mcp_protocol_version_header(srv):
    bad = rpc(srv.url, "tools/list", headers={"MCP-Protocol-Version": "1900-01-01"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == -32600 and "1900-01-01" in bad.json()["error"]["message"]
    for version in ("2025-03-26", "2025-06-18", "2025-11-25"):
        assert rpc(srv.url, "ping", headers={"MCP-Protocol-Version": version}).json()["result"] == {}


def test_mcp_get_and_delete_are_405(srv):
    for method in ("GET", "DELETE"):
        r = requests.request(method, f"{srv.url}/mcp", headers={"Accept": "text/event-stream"}, timeout=10)
        assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_mcp_notifications_and_responses_get_202(srv):
    for message in ({"jsonrpc": "2.0", "method": "notifications/initialized"},
                    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
                    {"jsonrpc": "2.0", "id": 5, "result": {}}):
        r = requests.post(f"{srv.url}/mcp", json=message, timeout=10)
        assert r.status_code == 202 and r.content == b""


@pytest.mark.parametrize("asked, answered", [("2025-06-18", "2025-06-18"), ("2025-03-26", "2025-03-26"),
                                             ("2099-01-01", "2025-11-25"), ("2024-11-05", "2025-11-25")])
def test_mcp_initialize_negotiates_version(srv, asked, answered):
    r = rpc(srv.url, "initialize", {"protocolVersion": asked, "capabilities": {},
                                    "clientInfo": {"name": "raw", "version": "1"}},
            headers={"Accept": "application/json, text/event-stream"})
    result = r.json()["result"]
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert "Mcp-Session-Id" not in r.headers
    assert result["protocolVersion"] == answered
    assert result["serverInfo"]["name"] == "ai-employee-demo" and result["serverInfo"]["version"] == "0.1.0"
    assert result["capabilities"]["tools"] == {"listChanged": False} and "APPROVAL_REQUIRED" in result["instructions"]


def test_mcp_empty_lists_and_ping(srv):
    assert rpc(srv.url, "ping").json()["result"] == {}
    assert rpc(srv.url, "resources/list").json()["result"] == {"resources": []}
    assert rpc(srv.url, "resources/templates/list").json()["result"] == {"resourceTemplates": []}
    assert rpc(srv.url, "prompts/list").json()["result"] == {"prompts": []}


def test_mcp_tools_call_matches_rest(srv):
    rest = requests.get(f"{srv.url}/items", params={"name": "bolt", "qty": 3}, timeout=10).json()
    result = rpc(srv.url, "tools/call", {"name": "get_item", "arguments": {"name": "bolt", "qty": 3}}).json()["result"]
    assert result["isError"] is False
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    assert {**result["structuredContent"], "timestamp": None} == {**rest, "timestamp": None}
    schema = next(t for t in rpc(srv.url, "tools/list").json()["result"]["tools"] if t["name"] == "get_item")
    jsonschema.validate(result["structuredContent"], schema["outputSchema"])


@pytest.mark.parametrize("name, arguments, code", [
    ("get_item", {}, "VALIDATION_ERROR"), ("get_flaky", {"mode": "rate_limited"}, "RATE_LIMITED"),
    ("get_flaky", {"mode": "crash"}, "INTERNAL_ERROR"), ("create_item", {"name": "widget"}, "APPROVAL_REQUIRED"),
])
def test_mcp_tool_failures_are_error_results(srv, name, arguments, code):
    r = rpc(srv.url, "tools/call", {"name": name, "arguments": arguments})
    assert r.status_code == 200 and "error" not in r.json()
    result = r.json()["result"]
    assert result["isError"] is True and result["structuredContent"]["error_code"] == code
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    assert "hunter2" not in r.text
    if code == "APPROVAL_REQUIRED":
        assert result["structuredContent"]["approval_id"] == srv.gate.filed[-1]["id"] == "apr-1"


def test_mcp_tools_list_schemas_are_valid_json_schema(srv):
    for tool in rpc(srv.url, "tools/list").json()["result"]["tools"]:
        for key in ("inputSchema", "outputSchema"):
            assert tool[key]["type"] == "object"
            jsonschema.Draft202012Validator.check_schema(tool[key])


def test_mcp_tools_list_snapshot(srv):
    wire = rpc(srv.url, "tools/list", msg_id=1).json()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(wire, indent=2, ensure_ascii=False) + "\n", "utf-8")
    assert wire == json.loads(SNAPSHOT.read_text("utf-8")), "tools/list changed; rerun with UPDATE_SNAPSHOTS=1 and review"
