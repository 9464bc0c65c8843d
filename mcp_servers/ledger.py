"""Exactly once for every write tool of every server, and the outbox behind it (DESIGN §6, §8).

A granted write runs under the ledger row ``<service>:<grant key>`` (the replay key convention,
``core.approval.gate.ledger_key``): marked ``sending`` durably before the upstream is called, ``succeeded`` with
the result after. A repeat returns the recorded result. A row left ``sending``/``unknown`` by a crash
or a timeout means the outcome is unknown: the tool's reconciler looks for the write upstream and it
is attempted again only when that proves it did not happen.

A write the upstream could not take now (down, 5xx, rate limited) is not lost and not retried in a
hurry: it waits in the state store's outbox, and the server's outbox worker (mcp_servers.server)
tries it again when the platform says (``Retry-After`` and the like) or on a growing delay, within a
bounded number of attempts; then it fails for good with the reason. The caller is told at once that
its write is queued and when it will be tried again.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.approval.gate import ledger_key
from core.errors import AIEmployeeError, OutcomeUnknownError, RateLimitError, TransientError, error_for_code
from core.state import StateStore, loads

log = logging.getLogger("mcp_servers")
Attempt = Callable[[], Awaitable[Any]]
Reconcile = Callable[[], Awaitable[Any | None]]


@dataclass(frozen=True)
class RetryPolicy:
    """When a queued write is tried again: as the platform says, else after ``first`` seconds,
    ``factor`` times longer each time up to ``maximum``; at most ``attempts`` attempts in all."""
    first: float = 60.0
    factor: float = 2.0
    maximum: float = 3600.0
    attempts: int = 8

    def delay(self, failures: int, error: BaseException) -> float:
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        return min(self.maximum, self.first * self.factor ** max(0, failures - 1))


class WriteLedger:
    """One server's ledger and outbox entries. Calls for one key are serialised, so a retry that
    arrives while the first attempt is in flight waits for it instead of racing it; and an attempt
    runs to its end and is recorded even when the request that started it is cancelled."""

    def __init__(self, state: StateStore, service: str, *, actor: str, policy: RetryPolicy = RetryPolicy()) -> None:
        self.state, self.service, self.actor, self.policy = state, service, actor, policy
        self._locks: dict[str, list] = {}  # key -> [its lock, how many calls hold or want it]
        self._running: set[asyncio.Task] = set()

    def waiting(self, grant_key: str) -> int:
        """How many calls for this grant wait behind the one in flight."""
        entry = self._locks.get(ledger_key(self.service, grant_key))
        return max(0, entry[1] - 1) if entry else 0

    async def run(self, grant_key: str, action: str, attempt: Attempt, *, reconcile: Reconcile | None,
                  outbox: dict) -> Any:
        """The write's result, recorded once. ``outbox`` is what the outbox worker needs to try it
        again later (the tool, the grant, the parameters)."""
        task = asyncio.ensure_future(self._serialised(ledger_key(self.service, grant_key), action, attempt,
                                                      reconcile, outbox))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def _serialised(self, key: str, action: str, attempt: Attempt, reconcile: Reconcile | None,
                          outbox: dict) -> Any:
        entry = self._locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._once(key, action, attempt, reconcile, outbox)
        finally:
            entry[1] -= 1
            if entry[1] == 0:  # nobody holds or wants it any more: forget it
                self._locks.pop(key, None)

    async def _once(self, key: str, action: str, attempt: Attempt, reconcile: Reconcile | None, outbox: dict) -> Any:
        row = await asyncio.to_thread(self.state.ledger_get, key)
        if row is not None:
            if row["status"] == "succeeded":
                return loads(row["result"])
            if row["status"] == "failed":
                raise _recorded_failure(row)
            if row["status"] in ("sending", "unknown"):
                if reconcile is None:
                    raise OutcomeUnknownError(f"{action} was interrupted and this server cannot check whether it "
                                              "happened; check by hand, then retry or close it")
                found = await reconcile()
                if found is not None:
                    await asyncio.to_thread(self._settle, key, "succeeded", found, None)
                    log.info("reconciled", extra={"key": key, "action": action})
                    return found
            entry = await asyncio.to_thread(self.state.outbox_entry, key)
            if entry is not None and entry["next_attempt"] > time.time():
                # Already queued: asking again early neither jumps the queue nor hammers the platform.
                err = TransientError(f"{action} is queued: {entry['last_error']}")
                err.queued_for = entry["next_attempt"] - time.time()
                raise err
        failures = row["attempts"] if row is not None else 0
        await asyncio.to_thread(self.state.ledger_begin, key, self.actor, action)
        try:
            result = await attempt()
        except TransientError as err:  # includes rate limits: queued, or given up after enough tries
            await asyncio.to_thread(self._defer, key, err, failures + 1, outbox)
            raise
        except AIEmployeeError as err:  # refused: nothing happened, and trying again will not help
            await asyncio.to_thread(self._settle, key, "failed", {"error_code": err.code}, str(err))
            raise
        except BaseException as err:
            # Our own failure after the call may have left: the next attempt reconciles first, and
            # a queued write is not tried again before its next turn.
            await asyncio.to_thread(self._after_bug, key, f"{type(err).__name__}: {err}", failures + 1)
            raise
        await asyncio.to_thread(self._settle, key, "succeeded", result, None)
        return result

    def _settle(self, key: str, status: str, result: Any, error: str | None) -> None:
        with self.state.transaction():
            self.state.ledger_finish(key, status, result=result, error=error)
            entry = self.state.outbox_entry(key)
            if entry is not None:
                self.state.outbox_done(entry["id"])

    def _after_bug(self, key: str, error: str, attempts: int) -> None:
        with self.state.transaction():
            self.state.ledger_finish(key, "unknown", error=error)
            entry = self.state.outbox_entry(key)
            if entry is not None:
                self.state.outbox_retry_later(entry["id"], self.policy.delay(attempts, TransientError(error)), error)

    def _defer(self, key: str, err: TransientError, attempts: int, outbox: dict) -> None:
        # A refused rate-limited call did nothing; any other transient failure may have (a timeout
        # after the request left), so the next attempt reconciles before it sends again.
        status = "pending" if isinstance(err, RateLimitError) else "unknown"
        if attempts >= self.policy.attempts:
            # No longer a reason to try again: the caller gets a final failure with the last reason.
            self._settle(key, "failed", {"error_code": "UPSTREAM_ERROR"}, f"gave up after {attempts} attempts: {err}")
            err.args = (f"gave up after {attempts} attempts: {err}",)
            return
        delay = self.policy.delay(attempts, err)
        with self.state.transaction():
            self.state.ledger_finish(key, status, error=str(err))
            self.state.outbox_put(self.service, outbox, delay=delay, key=key, error=str(err))
        err.queued_for = delay  # read by the error envelope: "queued, tried again in N s"
        log.info("write queued", extra={"key": key, "retry_in_s": round(delay, 1), "error": str(err)})


def _recorded_failure(row: Any) -> AIEmployeeError:
    code = (loads(row["result"]) or {}).get("error_code")
    return error_for_code(code, row["error"] or "the write failed")
