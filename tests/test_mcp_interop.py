"""The official `mcp` 2.x Python client (streamable HTTP) against the demo server, plus the
initialize-first flow that mcp 1.x clients (and Claude Code, Qwen Code) use, spoken as raw JSON-RPC."""
from __future__ import annotations

import asyncio
import json

import httpx2
import pytest
import requests
from aiohttp import web
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests import demo_service as demo

pytestmark = pytest.mark.timeout(30)


def serve_recording(app: web.Application) -> tuple[demo.ServerThread, list[str]]:
    """Serve `app`, recording the JSON-RPC method of every POST /mcp, to see what the client sent."""
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler):
        if request.path == "/mcp" and request.method == "POST":
            try:
                seen.append(json.loads(await request.read()).get("method", "<response>"))
            except ValueError:
                seen.append("<unparsable>")
        return await handler(request)

    app.middlewares.insert(0, record)
    return demo.ServerThread(app), seen


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_official_client_discovers_lists_and_calls():
    gate = demo.FakeGate()
    server, seen = serve_recording(demo.build_app(gate=gate))

    async def scenario(url):
        async with Client(url) as client:
            assert client.session.protocol_version == "2025-11-25"
            listing = await client.list_tools()
            read = await client.call_tool("get_item", {"name": "bolt", "qty": 2, "tags": ["m6"]})
            write = await client.call_tool("create_item", {"name": "widget", "qty": 2, "task_id": "t-9"})
            bad = await client.call_tool("get_item", {"qty": 0})
            return client.session.server_info, listing, read, write, bad

    with server:
        info, listing, read, write, bad = run(scenario(f"{server.url}/mcp"))
        items = server.app[demo.ITEMS_KEY]
    # The 2.x client probes server/discover first; -32601 must send it down the initialize path.
    assert seen[:3] == ["server/discover", "initialize", "notifications/initialized"]
    assert info.name == "ai-employee-demo" and info.version == "0.1.0"
    tools = {t.name: t for t in listing.tools}
    assert set(tools) == {"get_item", "get_flaky", "create_item"}
    assert tools["get_item"].annotations.read_only_hint is True
    assert tools["create_item"].annotations.read_only_hint is False
    assert "grant_id" in tools["create_item"].input_schema["properties"]
    assert read.is_error is False
    assert read.structured_content["data"] == {"name": "bolt", "qty": 2, "tags": ["m6"], "price": 5.0}
    assert json.loads(read.content[0].text) == read.structured_content
    assert write.is_error is True and write.structured_content["error_code"] == "APPROVAL_REQUIRED"
    assert write.structured_content["approval_id"] == gate.filed[0]["id"]
    assert gate.filed[0]["params"] == {"name": "widget", "qty": 2} and gate.filed[0]["task_id"] == "t-9"
    assert items == []
    assert bad.is_error is True and bad.structured_content["field"] == "name"


def test_official_client_with_grant_and_dry_run_passes_output_schema_validation():
    gate = demo.FakeGate()
    server = demo.ServerThread(demo.build_app(gate=gate, dry_run=True))

    async def scenario(url):
        async with Client(url) as client:
            # The client validates structuredContent against outputSchema; a dry-run answer must pass.
            return await client.call_tool("create_item", {"name": "widget", "qty": 2, "grant_id": "g-ok"})

    with server:
        result = run(scenario(f"{server.url}/mcp"))
        items = server.app[demo.ITEMS_KEY]
    assert result.is_error is False and result.structured_content["data"]["dry_run"] is True
    assert items == [] and [g.id for g, _ in gate.executed] == ["g-ok"]


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in _leaves(inner)]
    return [err]


def test_official_client_with_bearer_token():
    server = demo.ServerThread(demo.build_app(auth_token="s3cret"))

    async def scenario(url, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=10) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                return await client.call_tool("get_item", {"name": "bolt"})

    with server:
        result = run(scenario(f"{server.url}/mcp", "s3cret"))
        assert result.is_error is False and result.structured_content["data"]["name"] == "bolt"
        with pytest.raises(BaseException) as refused:
            run(scenario(f"{server.url}/mcp", "wrong"))
    # The client surfaces the server's own words, not a generic transport failure.
    [err] = _leaves(refused.value)
    assert isinstance(err, MCPError) and "bearer token" in str(err)


def test_official_client_legacy_mode():
    server = demo.ServerThread(demo.build_app())

    async def scenario(url):
        async with Client(url, mode="legacy") as client:
            return client.session.protocol_version, await client.call_tool("get_item", {"name": "nut"})

    with server:
        version, result = run(scenario(f"{server.url}/mcp"))
    assert version == "2025-11-25" and result.structured_content["data"]["name"] == "nut"


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18", "2025-11-25"])
def test_initialize_first_flow_as_raw_json_rpc(version):
    """The handshake-era flow: initialize (no version header), initialized, then calls with the header."""
    with demo.ServerThread(demo.build_app()) as server:
        url = f"{server.url}/mcp"
        accept = {"Accept": "application/json, text/event-stream"}
        init = requests.post(url, headers=accept, timeout=10, json={
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "v1", "version": "1"}}})
        assert init.json()["result"]["protocolVersion"] == version
        headers = {**accept, "MCP-Protocol-Version": version}
        note = requests.post(url, headers=headers, timeout=10,
                             json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert note.status_code == 202
        listing = requests.post(url, headers=headers, timeout=10,
                                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).json()
        assert [t["name"] for t in listing["result"]["tools"]] == ["get_item", "get_flaky", "create_item"]
        call = requests.post(url, headers=headers, timeout=10, json={
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "get_item", "arguments": {"name": "bolt"}}}).json()
        assert call["id"] == 2 and call["result"]["structuredContent"]["data"]["price"] == 2.5


def test_the_shipped_client_configs_name_the_five_servers_where_clients_look_for_them():
    """Claude Code reads the project's `.mcp.json` (the owner's `mcp.json`, one file under two names);
    Qwen Code reads `.qwen/settings.json` (and `.mcp.json`). Both hold each server's /mcp endpoint."""
    from core.config import MCP_PORTS
    from tests.conftest import ROOT
    expected = {name: f"http://127.0.0.1:{port}/mcp" for name, port in MCP_PORTS.items()}
    assert (ROOT / ".mcp.json").resolve() == (ROOT / "mcp.json").resolve()
    claude = json.loads((ROOT / ".mcp.json").read_text("utf-8"))["mcpServers"]
    assert {name: s["url"] for name, s in claude.items()} == expected
    assert {s["type"] for s in claude.values()} == {"http"}
    qwen = json.loads((ROOT / ".qwen" / "settings.json").read_text("utf-8"))["mcpServers"]
    assert {name: s["httpUrl"] for name, s in qwen.items()} == expected


def test_the_configs_url_shape_is_one_an_official_client_connects_to(tmp_path):
    """The URL shape in the shipped configs (scheme, host, /mcp) is the one a real client connects to."""
    from tests.conftest import ROOT
    url = json.loads((ROOT / "mcp.json").read_text("utf-8"))["mcpServers"]["email"]["url"]
    with demo.ServerThread(demo.build_app()) as server:
        port_url = url.replace(":8080/", f":{server.port}/")

        async def scenario():
            async with Client(port_url) as client:
                return [t.name for t in (await client.list_tools()).tools]
        assert "get_item" in run(scenario())
