"""core.engine.mcp_client against small real aiohttp servers: envelope errors back to core.errors, and what a
transport failure means for a read, a write, and a write the server deduplicates."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from core.errors import (ApprovalRequiredError, AuthError, NotConfiguredError, OutcomeUnknownError, RateLimitError,
                         TransientError, UpstreamError, ValidationError)
from core.engine.mcp_client import McpClient
from core.retry import Backoff
from mcp_servers.envelope import failure, success
from tests.conftest import free_port
from tests.demo_service import ServerThread

pytestmark = pytest.mark.timeout(30)
FAST = Backoff(base=0.01, maximum=0.02, attempts=3)
CALLS = web.AppKey("calls", list)


async def envelope(request: web.Request) -> web.Response:
    request.app[CALLS].append(request.method)
    code = request.match_info["code"]
    extra = {"APPROVAL_REQUIRED": {"approval_id": "apr-1"}, "RATE_LIMITED": {"retry_after": 7},
             "VALIDATION_ERROR": {"field": "to"}}.get(code, {})
    return web.json_response(failure(code, f"says {code}", **extra), status=418)


async def echo(request: web.Request) -> web.Response:
    request.app[CALLS].append(request.method)
    body = await request.json() if request.can_read_body else None
    return web.json_response(success({"auth": request.headers.get("Authorization"), "body": body,
                                      "query": dict(request.query)}))


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1)
    return web.json_response(success("late"))


async def cut_once(request: web.Request) -> web.Response:
    """The first call dies mid-request (like a server killed while sending); later ones answer."""
    calls = request.app[CALLS]
    calls.append("cut")
    if len(calls) == 1:
        await request.read()
        request.transport.close()
        await asyncio.sleep(0.2)
    return web.json_response(success({"attempt": len(calls)}))


async def html(request: web.Request) -> web.Response:
    return web.Response(text="<h1>Bad gateway</h1>", status=502, content_type="text/html")


@pytest.fixture
def server():
    app = web.Application()
    app[CALLS] = []
    app.router.add_route("*", "/envelope/{code}", envelope)
    app.router.add_route("*", "/echo", echo)
    app.router.add_post("/slow", slow)
    app.router.add_post("/cut", cut_once)
    app.router.add_get("/html", html)
    with ServerThread(app) as srv:
        yield srv


def client(url: str, **kwargs) -> McpClient:
    return McpClient(url, backoff=FAST, sleep=lambda s: None, **kwargs)


@pytest.mark.parametrize("code, kind", [
    ("APPROVAL_REQUIRED", ApprovalRequiredError), ("RATE_LIMITED", RateLimitError),
    ("UPSTREAM_UNAVAILABLE", TransientError), ("AUTH_ERROR", AuthError), ("NOT_CONFIGURED", NotConfiguredError),
    ("VALIDATION_ERROR", ValidationError), ("UPSTREAM_ERROR", UpstreamError), ("INTERNAL_ERROR", UpstreamError),
])
def test_error_envelopes_become_core_errors(server, code, kind):
    with pytest.raises(kind, match=f"says {code}") as caught:
        client(server.url).get(f"/envelope/{code}")
    err = caught.value
    assert type(err) is kind
    if kind is ApprovalRequiredError:
        assert err.approval_id == "apr-1"
    if kind is RateLimitError:
        assert err.retry_after == 7
    if kind is ValidationError:
        assert err.field == "to"


def test_server_reported_errors_are_not_retried_by_the_client(server):
    # The server answered: its error is the caller's to handle (the executor retries what is retryable).
    with pytest.raises(TransientError):
        client(server.url).get("/envelope/UPSTREAM_UNAVAILABLE")
    with pytest.raises(RateLimitError):
        client(server.url).post("/envelope/RATE_LIMITED", {}, idempotent=True)
    assert server.app[CALLS] == ["GET", "POST"]


def test_data_token_and_dropped_nulls(server):
    c = client(server.url, token="s3cret")
    assert c.get("/echo", {"q": "x"})["query"] == {"q": "x"}
    data = c.post("/echo", {"to": "a@b", "grant_id": None})
    assert data["auth"] == "Bearer s3cret" and data["body"] == {"to": "a@b"}


def test_not_an_envelope_is_an_upstream_error(server):
    with pytest.raises(UpstreamError, match="HTTP 502"):
        client(server.url).get("/html")


def test_refused_connection_is_transient_and_retried_with_backoff():
    waits: list[float] = []
    c = McpClient(f"http://127.0.0.1:{free_port()}", backoff=FAST, sleep=waits.append)
    with pytest.raises(TransientError, match="nothing was done"):
        c.get("/anything")
    assert len(waits) == FAST.attempts - 1
    with pytest.raises(TransientError, match="nothing was done"):
        c.post("/send", {"x": 1})  # never connected: it cannot have happened


def test_read_timeout_on_a_post_is_an_unknown_outcome(server):
    with pytest.raises(OutcomeUnknownError, match="may or may not"):
        client(server.url, timeout=(1.0, 0.2)).post("/slow", {})


def test_a_post_cut_off_mid_request_is_unknown_unless_the_server_dedups(server):
    with pytest.raises(OutcomeUnknownError):
        client(server.url).post("/cut", {"x": 1})
    server.app[CALLS].clear()
    assert client(server.url).post("/cut", {"x": 1}, idempotent=True) == {"attempt": 2}
