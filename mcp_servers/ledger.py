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
from core.errors import AIEmployeeError, OutcomeUndeterminedError, RateLimitError, TransientError, error_for_code
from core.state import StateStore, loads

log = logging.getLogger("mcp_servers")
Attempt = Callable[[], Awaitable[Any]]
Reconcile = Callable[[], Awaitable[Any | None]]


@dataclass(frozen=True)
class RetryPolicy:
    """When a queued write is tried again: as the platform says, else after ``first`` seconds,
    ``factor`` times longer each time up to ``maximum``; at most ``attempts`` attempts that reach the
    platform, and no longer than ``max_age`` in the queue."""
    first: float = 60.0
    factor: float = 2.0
    maximum: float = 3600.0
    attempts: int = 8             # attempts that reach the platform
    max_age: float = 48 * 3600.0  # how long a write may wait for a channel that cannot even be asked

    def delay(self, failures: int, error: BaseException) -> float:
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        return min(self.maximum, self.first * self.factor ** max(0, failures - 1))


# The seed's rule for a platform that says nothing about when to come back (a social API): 15 minutes,
# then longer; what the platform says (Retry-After, x-rate-limit-reset, Meta's usage headers) wins.
PLATFORM_RETRY = RetryPolicy(first=900.0, factor=2.0, maximum=3600.0, attempts=6)


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
                  outbox: dict, irreversible: bool = False) -> Any:
        """The write's result, recorded once. ``outbox`` is what the outbox worker needs to try it
        again later (the tool, the grant, the parameters). ``irreversible`` (a payment): after an
        outcome in doubt it is never attempted again, not even when the lookup finds nothing."""
        task = asyncio.ensure_future(self._serialised(ledger_key(self.service, grant_key), action, attempt,
                                                      reconcile, outbox, irreversible))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def _serialised(self, key: str, action: str, attempt: Attempt, reconcile: Reconcile | None,
                          outbox: dict, irreversible: bool) -> Any:
        entry = self._locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._once(key, action, attempt, reconcile, outbox, irreversible)
        finally:
            entry[1] -= 1
            if entry[1] == 0:  # nobody holds or wants it any more: forget it
                self._locks.pop(key, None)

    async def _once(self, key: str, action: str, attempt: Attempt, reconcile: Reconcile | None, outbox: dict,
                    irreversible: bool = False) -> Any:
        row = await asyncio.to_thread(self.state.ledger_get, key)
        if row is not None:
            if row["status"] == "succeeded":
                return loads(row["result"])
            if row["status"] == "failed":
                raise _recorded_failure(row)
            entry = await asyncio.to_thread(self.state.outbox_entry, key)
            if entry is not None and entry["next_attempt"] > time.time():
                # Already queued: asking again early neither jumps the queue nor costs the platform a call.
                err = TransientError(f"{action} is queued: {entry['last_error']}")
                err.queued_for = entry["next_attempt"] - time.time()
                raise err
            if row["status"] in ("sending", "unknown"):
                found = await self._reconcile(key, action, reconcile, outbox)
                if found is not None:
                    return found
                if irreversible:
                    return await self._undetermined(key, action)
        sent = row["attempts"] if row is not None else 0
        await asyncio.to_thread(self.state.ledger_begin, key, self.actor, action)
        try:
            result = await attempt()
        except TransientError as err:  # includes rate limits: queued, or given up after enough tries
            if irreversible and not isinstance(err, RateLimitError):
                # It may have happened, and it cannot be undone: nothing is tried again, the owner looks.
                await asyncio.to_thread(self.state.ledger_finish, key, "unknown", error=str(err))
                if await self._reconcile(key, action, reconcile, outbox) is not None:
                    return loads((await asyncio.to_thread(self.state.ledger_get, key))["result"])
                return await self._undetermined(key, action, err)
            if sent + 1 < self.policy.attempts:
                await asyncio.to_thread(self._queue, key, err, outbox, maybe_done=not isinstance(err, RateLimitError))
                raise
            if not isinstance(err, RateLimitError):  # the last attempt may have happened: look before giving up
                await asyncio.to_thread(self.state.ledger_finish, key, "unknown", error=str(err))
                if await self._reconcile(key, action, reconcile, outbox) is not None:
                    return loads((await asyncio.to_thread(self.state.ledger_get, key))["result"])
            await asyncio.to_thread(self._give_up, key, f"gave up after {sent + 1} attempts: {err}", "UPSTREAM_ERROR")
            err.args = (f"gave up after {sent + 1} attempts: {err}",)
            raise
        except AIEmployeeError as err:  # refused: nothing happened, and trying again will not help
            await asyncio.to_thread(self._give_up, key, str(err), err.code)
            raise
        except BaseException as err:
            # Our own failure after the call may have left: the next attempt reconciles first, and
            # a queued write is not tried again before its next turn.
            await asyncio.to_thread(self._after_bug, key, f"{type(err).__name__}: {err}")
            raise
        await asyncio.to_thread(self._settle, key, "succeeded", result, None)
        return result

    async def _reconcile(self, key: str, action: str, reconcile: Reconcile | None, outbox: dict) -> Any | None:
        """After an unknown outcome: the write's result if it happened, None if it provably did not.
        When that cannot be told (no way to look, or the channel cannot be asked now) it raises, and
        the write waits, queued, until it can be."""
        if reconcile is None:
            await self._undetermined(key, action)
        try:
            found = await reconcile()
        except TransientError as err:
            await asyncio.to_thread(self._queue, key, err, outbox, maybe_done=True)
            raise
        if found is not None:
            await asyncio.to_thread(self._settle, key, "succeeded", found, None)
            log.info("reconciled", extra={"key": key, "action": action})
        return found

    async def _undetermined(self, key: str, action: str, err: BaseException | None = None) -> Any:
        """Final: it may have happened and will not be tried again; every later call says so."""
        failure = _undetermined(action, err)
        await asyncio.to_thread(self._give_up, key, str(failure), "OUTCOME_UNKNOWN")
        raise failure

    def _settle(self, key: str, status: str, result: Any, error: str | None) -> None:
        with self.state.transaction():
            self.state.ledger_finish(key, status, result=result, error=error)
            entry = self.state.outbox_entry(key)
            if entry is not None:
                self.state.outbox_done(entry["id"])

    def _give_up(self, key: str, error: str, code: str) -> None:
        """A final failure, answered to every later call (the grant is not tried again)."""
        self._settle(key, "failed", {"error_code": code}, error)

    def _after_bug(self, key: str, error: str) -> None:
        with self.state.transaction():
            self.state.ledger_finish(key, "unknown", error=error)
            entry = self.state.outbox_entry(key)
            if entry is not None:
                delay = self.policy.delay(entry["attempts"] + 1, TransientError(error))
                self.state.outbox_retry_later(entry["id"], delay, error)

    def _queue(self, key: str, err: TransientError, outbox: dict, *, maybe_done: bool) -> None:
        """Into the outbox (or further back in it), with the wait the platform asked for or a growing
        one. ``maybe_done``: it may have happened (a timeout after the request left): the next
        attempt reconciles before it sends again."""
        with self.state.transaction():
            entry = self.state.outbox_entry(key)
            queued = entry["attempts"] if entry is not None else 0
            if entry is not None and time.time() - entry["created"] > self.policy.max_age:
                # It has waited as long as it may: whether it happened cannot be told, so the owner is told.
                self._give_up(key, f"{err}; it waited {self.policy.max_age / 3600:g} h without the channel "
                                   "answering: whether it happened is unknown, check before trying again",
                              "OUTCOME_UNKNOWN" if maybe_done else "UPSTREAM_ERROR")
                err.args = (self.state.ledger_get(key)["error"],)
                return
            delay = self.policy.delay(queued + 1, err)
            self.state.ledger_finish(key, "unknown" if maybe_done else "pending", error=str(err))
            self.state.outbox_put(self.service, outbox, delay=delay, key=key, error=str(err))
        err.queued_for = delay  # read by the error envelope: "queued, tried again in N s"
        log.info("write queued", extra={"key": key, "retry_in_s": round(delay, 1), "error": str(err)})


def _undetermined(action: str, err: BaseException | None = None) -> OutcomeUndeterminedError:
    why = f" ({err})" if err is not None else ""
    return OutcomeUndeterminedError(f"{action} was interrupted{why} and may or may not have happened; it is not "
                                    "tried again: check by hand, then ask again if it did not happen")


def _recorded_failure(row: Any) -> AIEmployeeError:
    code = (loads(row["result"]) or {}).get("error_code")
    return error_for_code(code, row["error"] or "the write failed")
