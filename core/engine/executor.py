"""Runs one granted action exactly once, whatever crashes.

The ledger row for the idempotency key is marked ``sending`` (durably) before the skill runs and
``succeeded``/``failed`` after. A row still ``sending`` when we come back means the outcome is
unknown: the skill's reconciler looks for the action by its key; only a definite "not done" allows
another attempt, and an irreversible action without proof goes back to the owner.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

from core.retry import Backoff
from core.engine.skills import Action, ActionContext, Outcome, SkillRegistry
from core.state import StateStore, loads

log = logging.getLogger(__name__)
RECHECK_SECONDS = 60.0  # a queued action whose server cannot be reached is asked about again after this


@dataclass(frozen=True)
class Execution:
    outcome: Outcome
    attempts: int
    reconciled: bool = False
    unknown: bool = False   # the outcome could not be established: the owner must look
    deferred_until: float | None = None  # queued by the server: ask again at this time (epoch s)


class Executor:
    def __init__(self, registry: SkillRegistry, state: StateStore, *, dry_run: bool, settings: Any = None,
                 backoff: Backoff = Backoff(base=0.2, maximum=5.0, attempts=3),
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.registry = registry
        self.state = state
        self.dry_run = dry_run
        self.settings = settings
        self.backoff = backoff
        self.sleep = sleep
        # Wraps every wait on the world outside (a skill that leaves the machine, a backoff sleep):
        # the reasoning loop lets another of its workers compute meanwhile.
        self.outside: Callable[[], ContextManager[object]] = contextlib.nullcontext

    def run(self, skill: str, action_name: str, params: dict, *, key: str, task_id: str | None,
            grant_id: str | None, on_done: Callable[[Execution], object] | None = None,
            patient: bool = False) -> Execution:
        """Run the action once for ``key``. ``on_done(execution)``, when given, records what the caller
        keeps about the outcome in the same transaction as the ledger's final entry, so the two
        commit together; if it fails, the ledger entry is still committed and its error re-raised.

        ``patient``: asking again about an action a server queued. If the server cannot be reached
        now, that is no failure of the action: it is deferred again (RECHECK_SECONDS)."""
        final: list[tuple] = []  # the ledger's final entry, written with on_done
        execution = self._run(skill, action_name, params, key=key, task_id=task_id, grant_id=grant_id, final=final,
                              patient=patient)
        if not final and on_done is None:
            return execution
        failure: BaseException | None = None
        with self.state.transaction() as db:
            for status, result, error in final:
                self.state.ledger_finish(key, status, result=result, error=error)
            if on_done is not None:
                db.execute("SAVEPOINT on_done")
                try:
                    on_done(execution)
                except Exception as err:  # the ledger's record of what happened must stand regardless
                    db.execute("ROLLBACK TO on_done")
                    failure = err
                db.execute("RELEASE on_done")
        if failure is not None:
            raise failure
        return execution

    def _run(self, skill: str, action_name: str, params: dict, *, key: str, task_id: str | None,
             grant_id: str | None, final: list[tuple], patient: bool = False) -> Execution:
        ctx = ActionContext(idempotency_key=key, task_id=task_id, grant_id=grant_id, dry_run=self.dry_run,
                            settings=self.settings)
        before = self.state.ledger_get(key)
        if before is not None and before["status"] == "succeeded":
            return Execution(Outcome(True, skill, loads(before["result"])), before["attempts"], reconciled=True)
        try:
            action = self.registry.action(skill, action_name)
        except Exception as err:
            return Execution(Outcome(False, skill, error=str(err), error_code="VALIDATION_ERROR"), 0)
        if before is not None and before["status"] in ("sending", "unknown"):
            settled = self._reconcile(action, params, ctx, key)
            if settled is not None:
                return settled
        attempt = 0
        while True:
            attempt += 1
            self.state.ledger_begin(key, skill, action_name, durable=action.channel != "local")
            with self._waiting_on(action):
                outcome = self.registry.invoke(skill, action_name, params, ctx)
            if outcome.success:
                final.append(("succeeded", outcome.data, None))  # committed by run(), with on_done
                return Execution(outcome, attempt)
            if outcome.deferred is not None:
                # The server holds it in its outbox and retries it itself: asking again later reads
                # the outcome. Nothing here waits for it.
                final.append(("pending", None, outcome.error))
                return Execution(outcome, attempt, deferred_until=time.time() + max(1.0, outcome.deferred))
            if outcome.unknown:
                self.state.ledger_finish(key, "unknown", error=outcome.error)
                settled = self._reconcile(action, params, ctx, key)
                if settled is not None:
                    return settled
                if attempt < self.backoff.attempts:  # proven not done, or the server dedups: ask again
                    self._pause(attempt)
                    continue
            elif outcome.retryable and patient:
                final.append(("pending", None, outcome.error))
                return Execution(outcome, attempt, deferred_until=time.time() + RECHECK_SECONDS)
            elif outcome.retryable and attempt < self.backoff.attempts:
                self.state.ledger_finish(key, "pending", error=outcome.error)
                self._pause(attempt)
                continue
            final.append(("failed", None, outcome.error))
            return Execution(outcome, attempt)

    def _waiting_on(self, action: Action) -> ContextManager[object]:
        """Filing into the vault is quick local work; anything else waits on a server."""
        return self.outside() if action.channel != "local" else contextlib.nullcontext()

    def _pause(self, attempt: int) -> None:
        with self.outside():
            self.sleep(self.backoff.delay(attempt))

    def _reconcile(self, action: Action, params: dict, ctx: ActionContext, key: str) -> Execution | None:
        """After an unknown outcome: None when another attempt is safe, else the settled execution."""
        if action.read_only:
            return None
        if action.reconcile is not None:
            try:
                with self._waiting_on(action):
                    found = action.reconcile(params, ctx)
            except Exception as err:  # cannot tell: never resend blindly
                return self._to_owner(action, key, f"the outcome is unknown and checking it failed: {err}")
            if found is not None:
                self.state.ledger_finish(key, "succeeded", result=found)
                log.info("reconciled %s: it had already happened", key)
                return Execution(Outcome(True, action.skill, found), 0, reconciled=True)
            if not action.irreversible:
                return None  # proven not done: safe to try again
        elif action.idempotent and not action.irreversible:
            return None  # the server dedups by our key: asking again cannot do it twice
        if action.irreversible:
            return self._to_owner(action, key, "it was interrupted and is irreversible, so it is not retried "
                                               "automatically; check, then retry it yourself")
        return self._to_owner(action, key, "it was interrupted mid-action and cannot be checked automatically; "
                                           "check by hand, then retry or close it")

    def _to_owner(self, action: Action, key: str, why: str) -> Execution:
        self.state.ledger_finish(key, "unknown", error=why)
        return Execution(Outcome(False, action.skill, error=f"{action.skill}.{action.name}: outcome unknown: {why}",
                                 error_code="OUTCOME_UNKNOWN"), 0, unknown=True)
