"""The server builder: what every MCP server of the suite is, written once.

A vertical declares a ``Vertical``: its service name, its tools, the skills that carry out its
writes once the owner approves them, and how to open its connector. The builder supplies the rest:
the vault, the state store and the audit trail; the approval gate; the exactly-once ledger and the
outbox worker for writes (mcp_servers.ledger); "not configured until there are credentials"; a
heartbeat in the state store; a probe of the channel; ``/health`` from the channel's last real
outcome; and ``main()``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from core.approval.approvals import Approvals
from core.approval.gate import SkillBinding, StateApprovalGate
from core.audit import AuditLog
from core.channels import ChannelReport
from core.config import Settings
from core.daemon import Daemon
from core.errors import AIEmployeeError, ConfigError, NotConfiguredError, TransientError
from core.state import StateStore, loads
from core.vault import Vault
from mcp_servers.base import create_app, run
from mcp_servers.dispatch import perform_write, validate
from mcp_servers.ledger import RetryPolicy, WriteLedger
from mcp_servers.tools import (CACHE_KEY, CHANNEL_KEY, GATE_KEY, LEDGER_KEY, READY_KEY, RESOURCES_KEY, TOOLS_KEY,
                               ServerConfig, Tool)

log = logging.getLogger("mcp_servers")
HEARTBEAT_SECONDS = 2.0
CONFIGURED_SECONDS = 1.0  # how stale /health's "configured" may be (a token file just written, say)
PROBE_SECONDS = 300.0     # with no real call for this long, one cheap call checks the channel is still there
OUTBOX_SECONDS = 1.0      # how often the outbox is looked at for writes that are due again


@dataclass(frozen=True)
class Deps:
    """What the builder opened for a vertical's connect()."""
    settings: Settings
    vault: Vault
    state: StateStore
    audit: AuditLog


@dataclass(frozen=True)
class Vertical:
    service: str                                  # "email": port, ledger keys, actor "mcp-email"
    version: str
    channel: str                                  # the outside system, e.g. "gmail"
    tools: Sequence[Tool]
    skills: Mapping[str, SkillBinding]            # write action -> the skill that carries it out once approved
    connect: Callable[..., Any]                   # connect(deps, **overrides) -> the tools' ctx.resources
    configured: Callable[[Any], bool]             # has the channel credentials?
    setup_hint: str                               # what the owner does to configure it
    probe: Callable[[Any], object] | None = None  # a cheap real call (sync) that proves the channel works
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Background work every refresh_seconds while configured (sync, in a thread): e.g. the figures the
    # Dashboard shows, kept fresh in the state store. Its failures are reported like any call's.
    refresh: Callable[[Any, Deps], object] | None = None
    refresh_seconds: float = 600.0
    describe: Callable[[Any], dict] | None = None  # what /health adds about the channel (version, transport)
    # More outside channels the server reaches (the browser's sites), each reported apart: a tool names
    # its own with Tool.channel, so one site logged out never pauses another.
    sites: tuple[str, ...] = ()
    # Async work in the server's event loop: opening what lives there (a browser) and closing it.
    start: Callable[[Any], Awaitable[object]] | None = None
    stop: Callable[[Any], Awaitable[object]] | None = None

    @property
    def actor(self) -> str:
        return f"mcp-{self.service}"


class Pulse:
    """The heartbeat, and what /health reads without doing I/O itself: the channel's last outcome
    and the outbox, refreshed with every beat."""

    def __init__(self, vertical: Vertical, daemon: Daemon, reports: dict[str, ChannelReport], resources: Any,
                 detail: str) -> None:
        self.vertical, self.daemon, self.resources, self.detail = vertical, daemon, resources, detail
        self.reports = reports
        self.report = reports[vertical.channel]  # the vertical's own channel: probes and refreshes report on it
        self.beat_at: float | None = None
        self.channel: dict | None = None
        self.sites: dict[str, dict | None] = {}
        self.outbox: tuple[int, float | None] = (0, None)
        self.probed_at = 0.0
        self._configured, self._configured_at = False, 0.0
        self.worker_at = time.monotonic()  # the outbox worker's last pass

    def configured(self) -> bool:
        """Looked at (a stat of a token file, say) at most every CONFIGURED_SECONDS: /health asks at
        every request, and a supervisor may poll it thousands of times a second."""
        now = time.monotonic()
        if now >= self._configured_at:
            self._configured = bool(self.vertical.configured(self.resources))
            self._configured_at = now + CONFIGURED_SECONDS
        return self._configured

    def beat(self) -> None:
        status = "healthy" if self.configured() else "not_configured"
        self.daemon.beat(status, self.detail, force=True)
        try:
            self.channel = self.report.current()
            self.sites = {name: self.reports[name].current() for name in self.vertical.sites}
            self.outbox = self.daemon.state.outbox_waiting(self.vertical.service)
        except Exception:  # noqa: BLE001 - reported as the state store's check
            log.exception("state store unreadable")
        if self.daemon.store_error is None:
            self.beat_at = time.monotonic()

    def probe_due(self) -> bool:
        if self.vertical.probe is None or not self.configured():
            return False
        last = max(self.channel["at"] if self.channel else 0.0, self.probed_at)
        return time.time() - last > PROBE_SECONDS

    def probe(self) -> None:
        assert self.vertical.probe is not None
        self.probed_at = time.time()
        try:
            self.vertical.probe(self.resources)
        except Exception as err:  # noqa: BLE001 - the outcome is the point: it is reported, not raised
            self.report.record(err)
        else:
            self.report.record(None)
        self.channel = self.report.current()

    def checks(self) -> dict:
        """Instant: no I/O (the last beat read everything), so /health needs no deadline."""
        v = self.vertical
        channel = self._channel_check(self.channel)
        if v.describe is not None and self.configured():
            channel.update(v.describe(self.resources))
        sites = {name: self._channel_check(self.sites.get(name)) for name in v.sites}
        if self.daemon.store_error or self.beat_at is None or time.monotonic() - self.beat_at > 3 * HEARTBEAT_SECONDS:
            store = {"status": "degraded", "detail": self.daemon.store_error or "no recent heartbeat"}
        else:
            store = {"status": "healthy", "detail": "reachable"}
        waiting, due = self.outbox
        outbox = {"status": "healthy", "queued": waiting,
                  "detail": "no write waits" if not waiting else f"{waiting} write(s) wait for the channel",
                  **({"next_attempt": _iso(due)} if due else {})}
        if time.monotonic() - self.worker_at > 10 * OUTBOX_SECONDS + HEARTBEAT_SECONDS:
            outbox.update(status="degraded", detail="the outbox worker has stopped; queued writes wait")
        return {v.channel: channel, **sites, "state_store": store, "outbox": outbox}

    def _channel_check(self, row: dict | None) -> dict:
        if not self.configured():
            return {"status": "not_configured", "detail": self.vertical.setup_hint}
        if row is None or row["state"] == "not_configured":
            return {"status": "healthy", "state": "unknown", "detail": "configured; no call has been made yet"}
        return {"status": "healthy" if row["state"] == "ok" else "degraded", "state": row["state"],
                "detail": row["detail"] or "the last call succeeded", "as_of": _iso(row["at"]), "seen_by": row["by"]}


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def build_app(settings: Settings, vertical: Vertical, **overrides: Any) -> web.Application:
    """The vertical's server. ``overrides`` go to its connect() (tests hand in a connector)."""
    vault = Vault(settings.vault_path)
    vault.ensure_layout()
    state = StateStore(settings.state_db)
    audit = AuditLog(vault.root, vertical.actor)
    deps = Deps(settings, vault, state, audit)
    resources = vertical.connect(deps, **overrides)

    def ready() -> None:
        if not vertical.configured(resources):
            raise NotConfiguredError(f"{vertical.channel} is not configured: {vertical.setup_hint}")

    gate = StateApprovalGate(Approvals.open(vault, state, settings), state, vertical.skills, audit=audit, precheck=ready)
    reports = {name: ChannelReport(state, name, by=vertical.actor) for name in (vertical.channel, *vertical.sites)}
    pulse = Pulse(vertical, Daemon(vertical.actor, state), reports, resources,
                  f"serving on port {settings.mcp_ports[vertical.service]}")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[RESOURCES_KEY], app[READY_KEY] = resources, ready
        app[CHANNEL_KEY] = lambda name: reports[name or vertical.channel]
        if vertical.start is not None:
            await vertical.start(resources)
        app[LEDGER_KEY] = WriteLedger(state, vertical.service, actor=vertical.actor, policy=vertical.retry)
        app[CACHE_KEY] = state
        await asyncio.to_thread(pulse.beat)
        tasks = [asyncio.create_task(_heartbeat(pulse)), asyncio.create_task(_refresher(vertical, pulse, deps)),
                 asyncio.create_task(_outbox_worker(app, vertical, state, pulse))]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if vertical.stop is not None:
            with contextlib.suppress(Exception):
                await vertical.stop(resources)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(pulse.daemon.beat, "stopped", "", force=True)

    config = ServerConfig.from_settings(settings, vertical.service, vertical.version)
    return create_app(config, vertical.tools, gate=gate, audit=audit, health_checks=pulse.checks,
                      cleanup_ctx=[lifecycle])


async def _refresher(vertical: Vertical, pulse: Pulse, deps: Deps) -> None:
    """The vertical's background work (refresh), every refresh_seconds while configured."""
    if vertical.refresh is None:
        return
    while True:
        if pulse.configured():
            try:
                await asyncio.to_thread(vertical.refresh, pulse.resources, deps)
                await asyncio.to_thread(pulse.report.record, None)
            except Exception as err:  # noqa: BLE001 - reported as the channel's outcome; tried again later
                await asyncio.to_thread(pulse.report.record, err)
                if not isinstance(err, AIEmployeeError):
                    log.exception("refresh failed")
        await asyncio.sleep(vertical.refresh_seconds)


async def _heartbeat(pulse: Pulse) -> None:
    while True:
        if pulse.probe_due():
            await asyncio.to_thread(pulse.probe)
        await asyncio.sleep(HEARTBEAT_SECONDS)
        await asyncio.to_thread(pulse.beat)


async def _outbox_worker(app: web.Application, vertical: Vertical, state: StateStore, pulse: Pulse) -> None:
    """Writes the channel could not take go again when they are due (the ledger queued them). One
    entry's trouble never stops the worker, and never makes it ask again at once."""
    while True:
        await asyncio.sleep(OUTBOX_SECONDS)
        pulse.worker_at = time.monotonic()
        try:
            due = await asyncio.to_thread(state.outbox_due, vertical.service)
        except Exception:  # noqa: BLE001 - the store is unreadable: health says so; try again later
            continue
        for entry in due:
            try:
                await _retry_queued(app, vertical, state, entry)
            except Exception:  # noqa: BLE001 - e.g. the store failed mid-way; the entry waits its next turn
                log.exception("queued write could not be tried", extra={"entry": entry["id"]})
            await asyncio.to_thread(_push_back_if_still_due, state, entry, vertical.retry)


def _push_back_if_still_due(state: StateStore, entry: Any, policy: RetryPolicy) -> None:
    """An entry the attempt did not reschedule (it failed before reaching the ledger) waits its next
    turn like any other, instead of coming up again within the second."""
    try:
        now = state.outbox_entry(entry["key"]) if entry["key"] else None
        untouched = now is not None and (now["next_attempt"], now["attempts"]) == (entry["next_attempt"], entry["attempts"])
        if untouched and now["next_attempt"] <= time.time():
            reason = now["last_error"] or "not tried"
            state.outbox_retry_later(now["id"], policy.delay(now["attempts"] + 1, TransientError(reason)), reason)
    except Exception:  # noqa: BLE001 - the next pass tries again
        log.exception("could not reschedule a queued write", extra={"entry": entry["id"]})


async def _retry_queued(app: web.Application, vertical: Vertical, state: StateStore, entry: Any) -> None:
    payload = loads(entry["payload"])
    tool = app[TOOLS_KEY].get(payload.get("tool"))
    gate = app[GATE_KEY]
    grant = None
    if tool is not None and tool.write_action is not None and gate is not None:
        grant = await asyncio.to_thread(gate.grant_for, service=vertical.service, action=tool.write_action,
                                        params=payload["params"], grant_id=payload["grant_id"])
    if tool is None or grant is None:
        log.warning("outbox entry dropped: its grant no longer allows it", extra={"entry": entry["id"]})
        await asyncio.to_thread(state.outbox_done, entry["id"])
        return
    try:
        app[READY_KEY]()
    except NotConfiguredError as err:  # the credentials went away: it waits until they are back
        await asyncio.to_thread(state.outbox_retry_later, entry["id"], vertical.retry.first, str(err))
        return
    try:
        args = validate(tool, payload["params"])
        await perform_write(app, tool, args, grant, task_id=payload.get("task_id"), request_id=f"outbox-{entry['id']}")
        log.info("queued write went through", extra={"entry": entry["id"], "tool": tool.name})
    except Exception as err:  # noqa: BLE001 - queued again or settled by the ledger; the audit has it
        if getattr(err, "queued_for", None) is None:
            log.info("queued write ended", extra={"entry": entry["id"], "tool": tool.name, "error": str(err)})


def main(vertical: Vertical) -> int:
    """``python -m <server module>``: settings (a bad value exits 2 naming the variable), then serve."""
    try:
        settings = Settings.from_env()
        app = build_app(settings, vertical)
    except ConfigError as err:
        print(f"mcp-{vertical.service}: configuration error: {err}", file=sys.stderr)
        return 2
    run(app, ServerConfig.from_settings(settings, vertical.service, vertical.version), log_level=settings.log_level)
    return 0
