"""The Ralph Wiggum loop: claim a task, then up to MAX_ITERATIONS rounds of
analyze → write the plan → act → check. The task is done when its file reaches ``Completed/``.

A round stops early on the ``STOP`` file, when every remaining step waits for the owner (the loop
moves on to other tasks; the agent interface finishes the task after the approval), or when a
round changes nothing (stuck). Tasks this agent had claimed before a crash are resumed at start.

Planning needs the state store: while it is unavailable (locked, unreadable, a full disk) nothing is
claimed; a task whose work meets the outage is handed back to ``Needs_Action/`` (never to Failed/),
and everything is taken again, by itself, once the store answers.
"""
from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from core.config import Settings, env_int
from core.daemon import Daemon, FolderFeed, run_daemon
from core.documents import DocumentError
from core.locks import task_lock
from core.state import is_store_outage
from core.engine.planning import NoPlan, PlanContext, Planner, RuleBasedPlanner
from core.engine.plans import PENDING, TERMINAL, WAITING
from core.tasks import Task
from core.engine.workflow import Workflow

log = logging.getLogger("reasoning_loop")
SETTLE_SECONDS = 0.5  # a file found by a rescan must be this old: the owner may still be saving it


def make_planner(settings: Settings) -> Planner:
    if settings.llm_base_url:
        from core.engine.llm_planner import LLMPlanner  # optional: only when the owner configured an LLM
        return LLMPlanner.from_settings(settings, fallback=RuleBasedPlanner())
    return RuleBasedPlanner()


class ReasoningLoop:
    def __init__(self, settings: Settings, *, planner: Planner | None = None, wf: Workflow | None = None) -> None:
        self.settings = settings
        self.wf = wf or Workflow.open(settings, actor="reasoning_loop")
        self.planner = planner or make_planner(settings)
        self.daemon = Daemon("reasoning-loop", self.wf.state)
        self.inbox = self.wf.vault.folder("Needs_Action")
        self.mine = self.wf.vault.folder("In_Progress", settings.agent_name)
        self.stop_file = self.wf.vault.root / "STOP"
        # A few workers, so a task waiting on a server (an auto-approved send, a model planning) never
        # holds up the others; per-task locks keep two workers off the same task. They take turns
        # for everything else: threads contending for the GIL on every syscall cost a third more CPU
        # than one thread doing the same work.
        self.workers = env_int(settings.env, "LOOP_WORKERS", 2, minimum=1, maximum=32)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="task")
        self.slots = threading.BoundedSemaphore(self.workers * 2)
        self.turn = threading.Lock()
        self.wf.executor.outside = self.outside_turn

    # -- main loop --------------------------------------------------------------------------------
    def run(self) -> None:
        self.mine.mkdir(parents=True, exist_ok=True)
        self.daemon.beat("healthy", f"planner: {self.planner.name}", force=True)
        for path in self.wf.vault.markdown_files(self.mine):  # resume what we held before a crash
            self._work_guarded(path)
        try:
            self._watch()
        finally:
            self.pool.shutdown(wait=True)  # SIGTERM: finish the tasks in hand, claim nothing new

    def _watch(self) -> None:
        with FolderFeed(self.inbox, self.settings.rescan_seconds) as feed:
            while not self.daemon.stop.is_set():
                if self.stop_file.exists():
                    self.daemon.beat("stopped", "STOP file present: not taking new tasks")
                    self.daemon.stop.wait(0.5)
                    continue
                outage = self.daemon.store_outage()
                if outage is not None:
                    # Nothing is claimed; what arrives meanwhile is found by a rescan once it is back.
                    self.daemon.beat("degraded", f"the state store is unavailable: {outage.reason}; tasks wait")
                    self.daemon.stop.wait(0.5)
                    feed.rescan_now()
                    continue
                self.wf.policy.current()  # re-reads the handbook when it changed; one stat otherwise
                if self.wf.policy.error:
                    self.daemon.beat("degraded", self.wf.policy.error)
                else:
                    self.daemon.beat("healthy", f"planner: {self.planner.name}")
                for path in feed.wait(self.daemon.stop):
                    if self.daemon.stop.is_set() or self.stop_file.exists() or self.daemon.store_outage():
                        break
                    self.consider(path, from_event=not feed.last_was_rescan)

    def consider(self, path: Path, *, from_event: bool = False) -> None:
        name = path.name
        if path.parent != self.inbox or name.startswith("."):
            return
        try:
            st = path.lstat()  # one look at the file decides everything below
        except FileNotFoundError:
            return
        if not stat.S_ISREG(st.st_mode) or not name.endswith(".md"):
            if not stat.S_ISDIR(st.st_mode) and (stat.S_ISLNK(st.st_mode) or self._settled(st)):
                self.wf.vault.quarantine(path, "not a task file: Needs_Action/ holds Markdown task files only "
                                         "(drop other files into Inbox/)", actor="reasoning_loop")
                self.wf.audit.record("task.quarantined", target=name, result={"reason": "not a task file"})
            return
        if not from_event and not self._settled(st):
            return
        self.slots.acquire()  # claim no further ahead than the workers can go
        claimed = self.wf.vault.claim(path, self.mine)
        if claimed is None:
            self.slots.release()
            return
        self.pool.submit(self._work_and_release, claimed)

    def _work_and_release(self, path: Path) -> None:
        try:
            self._work_guarded(path)
        finally:
            self.slots.release()

    def _work_guarded(self, path: Path) -> None:
        """One task's bug must not take the loop down, nor come back at every start: the task goes
        to Failed/ with the error, where the owner sees it and can retry it. A task whose work met
        a state store outage is no failure of the task: it goes back to Needs_Action/."""
        try:
            self.work_on(path)
        except Exception as err:
            if is_store_outage(err):
                self._hand_back(path, self.daemon.store_failed(err))
                return
            log.exception("task %s failed inside the loop", path.name)
            self.daemon.beat("degraded", f"{path.name}: {err}", error=str(err))
            try:
                with task_lock(self.settings.state_dir, path.stem):
                    if path.exists():
                        self.wf.settle(Task.load(path), fail_reason=f"internal error while working on it: {err}")
            except Exception:  # not even that: leave it claimed; the log has both errors
                log.exception("could not move %s to Failed/", path.name)

    def _hand_back(self, path: Path, outage: Exception) -> None:
        """Put a claimed task back where it came from, as it is: the plan so far stays in the store,
        the ledger keeps any action it began from running twice, and it is taken again later."""
        try:
            with task_lock(self.settings.state_dir, path.stem):
                if path.exists():
                    self.wf.vault.move(path, self.inbox)
                    log.warning("%s handed back to Needs_Action/: %s", path.name, outage)
        except OSError:  # left claimed: the loop takes it again at its next start
            log.exception("could not hand %s back to Needs_Action/", path.name)

    @contextlib.contextmanager
    def outside_turn(self) -> Iterator[None]:
        """Give the turn to another worker while this one waits on the world outside.

        Lock order: a task's lock, then the turn. A worker that hands the turn on keeps its task
        lock, so nothing may wait for a task lock while holding the turn; nor may it hand the turn
        on inside a transaction, whose writer lock the next worker would wait for."""
        if self.wf.state.in_transaction():
            raise RuntimeError("waiting outside inside a transaction would stall the other workers")
        self.turn.release()
        try:
            yield
        finally:
            self.turn.acquire()

    @staticmethod
    def _settled(st: os.stat_result) -> bool:
        return time.time() - st.st_mtime >= SETTLE_SECONDS

    # -- one task ---------------------------------------------------------------------------------
    def work_on(self, path: Path) -> None:
        # The lock comes first (task files are named by id), so what we read is what we update.
        with task_lock(self.settings.state_dir, path.stem), self.turn:  # in this order: see outside_turn
            try:
                task = Task.load(path)
            except FileNotFoundError:
                return  # the executor handed it on while we waited for the lock
            except (DocumentError, OSError) as err:
                self.wf.vault.quarantine(path, str(err), actor="reasoning_loop")
                self.wf.audit.record("task.quarantined", target=path.name, result={"reason": str(err)})
                return
            started = time.monotonic()
            rounds, outcome = self.rounds(task)
            if outcome == "paused":  # STOP file or shutdown: hand it back; it is taken again when we resume
                self.wf.vault.move(task.path, self.inbox)
            self.wf.audit.record("loop.run", target=task.title, task_id=task.id,
                                 result={"rounds": rounds, "outcome": outcome,
                                         "ms": round((time.monotonic() - started) * 1000, 1)})

    def rounds(self, task: Task) -> tuple[int, str]:
        ctx = PlanContext(self.wf.registry, self.wf.policy.current())
        plan = self.wf.plans.get(task.id)
        done_rounds = plan["rounds"] if plan else 0
        for round_no in range(done_rounds + 1, done_rounds + self.settings.max_iterations + 1):
            if self.stop_file.exists() or self.daemon.stop.is_set():
                return round_no - 1, "paused"
            history = self.wf.plans.steps(task.id)
            # analyze
            try:
                with self.outside_turn() if getattr(self.planner, "waits", True) else contextlib.nullcontext():
                    proposed = self.planner.plan(task, history, ctx)
            except NoPlan as err:
                self.wf.plans.add_steps(task.id, self.planner.name, [])
                self.wf.plans.set_round(task.id, round_no, "needs_owner", note=str(err))
                return round_no, self.wf.settle(task, fail_reason=str(err))
            note = getattr(self.planner, "last_note", None)  # e.g. the LLM was down and rules planned instead
            if note:
                self.wf.audit.record("planner.fallback", target=self.planner.name, task_id=task.id, result={"note": note})
                self.daemon.beat("degraded", note)
            steps = self.wf.plans.add_steps(task.id, self.planner.name, proposed) if proposed or not plan else history
            plan = plan or self.wf.plans.get(task.id)
            # act
            before = [(s.no, s.status) for s in steps]
            for step in steps:
                if step.status == PENDING:
                    self.wf.act(task, step)
            steps = self.wf.plans.steps(task.id)
            changed = before != [(s.no, s.status) for s in steps] or bool(proposed)
            # check; settle records the round (with the outcome, if the task finishes) and the plan file
            waiting = any(s.status == WAITING for s in steps)
            where = self.wf.settle(task, steps=steps,  # writes the plan file too
                                   round_state=(round_no, "waiting_for_approval" if waiting else "active", note))
            if where in ("Completed", "Failed", "waiting"):
                return round_no, where
            if not changed:
                return round_no, self.wf.settle(task, steps=steps,
                                                fail_reason=f"stuck: round {round_no} changed nothing")
        left = [s for s in self.wf.plans.steps(task.id) if s.status not in TERMINAL]
        return self.settings.max_iterations, self.wf.settle(
            task, fail_reason=f"not finished after {self.settings.max_iterations} rounds ({len(left)} step(s) left)")


def main() -> int:
    return run_daemon("reasoning-loop", ReasoningLoop)


if __name__ == "__main__":
    sys.exit(main())
