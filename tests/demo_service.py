"""A tiny server built on mcp_servers.base, used only by the base's tests, plus an in-memory gate
and a helper that serves an app on a free loopback port from a background thread.

Run it as a real process (for the run()/signal test): python tests/demo_service.py PORT [TOKEN]
"""
from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import Field

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # the script form (and a bare pytest run) must find the project's packages
    sys.path.insert(0, ROOT)

from core.errors import ApprovalRequiredError, RateLimitError, TransientError, UpstreamError  # noqa: E402
from mcp_servers.base import create_app, run  # noqa: E402
from mcp_servers.tools import CONFIG_KEY, Grant, ServerConfig, Tool, ToolContext, ToolInput  # noqa: E402

ITEMS_KEY: web.AppKey[list[dict]] = web.AppKey("demo_items")
GRANT_OK = ("g-ok", "create_item", {"name": "widget", "qty": 2})


class GetItemInput(ToolInput):
    name: str = Field(min_length=1, description="Name of the item to look up.")
    qty: int = Field(1, ge=1, le=100, description="How many to price.")
    tags: list[str] = Field(default_factory=list, description="Optional labels.")


class FlakyInput(ToolInput):
    mode: Literal["down", "rate_limited", "crash"] = "down"


class CreateItemInput(ToolInput):
    name: str = Field(min_length=1, max_length=80, description="Name of the new item.")
    qty: int = Field(1, ge=1, description="Quantity.")
    note: str | None = Field(None, description="Free text kept with the item.")


ITEM_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}, "tags": {"type": "array"},
                   "price": {"type": "number"}},
    "required": ["name", "qty", "price"],
}
CREATED_SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                                   "idempotency_key": {"type": "string"}},
                  "required": ["id", "name"]}


async def get_item(ctx: ToolContext, args: GetItemInput) -> dict:
    return {"name": args.name, "qty": args.qty, "tags": args.tags, "price": 2.5 * args.qty}


async def flaky(ctx: ToolContext, args: FlakyInput) -> dict:
    if args.mode == "rate_limited":
        raise RateLimitError("the demo platform says slow down", retry_after=7)
    if args.mode == "crash":
        raise RuntimeError("secret internals: /srv/demo/key.pem token=hunter2")
    raise TransientError("the demo upstream is unreachable")


async def create_item(ctx: ToolContext, args: CreateItemInput) -> dict:
    if args.name == "boom":
        raise UpstreamError("the demo platform refused the item", status=422)
    items = ctx.app[ITEMS_KEY]
    items.append({"name": args.name, "qty": args.qty, "grant": ctx.grant})
    return {"id": f"item-{len(items)}", "name": args.name, "idempotency_key": ctx.grant.idempotency_key}


TOOLS = [
    Tool(name="get_item", description="Look up an item and its price.", input_model=GetItemInput,
         output_schema=ITEM_SCHEMA, handler=get_item, method="GET", path="/items", idempotent=True),
    Tool(name="get_flaky", description="A read that always fails upstream.", input_model=FlakyInput,
         output_schema={"type": "object"}, handler=flaky, method="GET", path="/flaky"),
    Tool(name="create_item", description="Create an item (needs the owner's approval).",
         input_model=CreateItemInput, output_schema=CREATED_SCHEMA, handler=create_item, method="POST",
         path="/items", read_only=False, write_action="create_item", target_param="name",
         summary=lambda p: f"create {p['qty']} x {p['name']!r}"),
]


class FakeGate:
    """Accepts only the grants it was given (default: g-ok for create_item {"name": "widget",
    "qty": 2}), each only for exactly its action and params, and only until it is marked executed."""

    def __init__(self, *grants: tuple[str, str, dict]) -> None:
        self.grants = grants or (GRANT_OK,)
        self.filed: list[dict] = []
        self.executed: list[tuple[Grant, dict]] = []

    def authorize(self, *, service: str, action: str, params: dict, grant_id: str | None,
                  task_id: str | None) -> Grant:
        spent = any(g.id == grant_id for g, _ in self.executed)
        if (grant_id, action, params) in self.grants and not spent:
            return Grant(id=grant_id, idempotency_key=f"idem-{grant_id}", approved_by="owner")
        approval_id = f"apr-{len(self.filed) + 1}"
        self.filed.append({"id": approval_id, "service": service, "action": action, "params": params,
                           "grant_id": grant_id, "task_id": task_id})
        raise ApprovalRequiredError(f"{action} needs the owner's approval: request {approval_id} filed",
                                    approval_id=approval_id)

    def mark_executed(self, grant: Grant, *, result: dict) -> None:
        self.executed.append((grant, result))


class RecordingAudit:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def __call__(self, **record: object) -> None:
        self.records.append(record)


async def _items(app: web.Application) -> AsyncIterator[None]:
    app[ITEMS_KEY] = []
    yield


def build_app(*, port: int = 0, dry_run: bool = False, auth_token: str | None = None, gate: FakeGate | None = None,
              audit: RecordingAudit | None = None, health: dict | Exception | None = None) -> web.Application:
    config = ServerConfig(service="demo", version="0.1.0", port=port, auth_token=auth_token, dry_run=dry_run)

    async def checks() -> dict:
        if isinstance(health, Exception):
            raise health
        return health if health is not None else {"demo_api": {"status": "healthy", "detail": "reachable"}}

    return create_app(config, TOOLS, gate=gate or FakeGate(), audit=audit, health_checks=checks,
                      cleanup_ctx=[_items])


class ServerThread:
    """Serves an app on 127.0.0.1 (free port) in a thread of its own, for synchronous tests."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("demo server did not start within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


def main() -> None:
    port, token = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else None)
    app = build_app(port=port, auth_token=token)
    run(app, app[CONFIG_KEY])


if __name__ == "__main__":
    main()
