"""What the reasoning loop and the agent interface share about a task's life: acting on a step
(policy → grant → execute, or an approval request), recording outcomes, the plan file, and
settling the task into ``Completed/`` or ``Failed/`` once every step has ended."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from core.approval.approvals import APPROVED, EXECUTED, FAILED as APR_FAILED, PENDING as PENDING_APPROVAL, Approvals, Grant, grant_from_row
from core.audit import AuditLog
from core.config import Settings
from core.documents import iso, utcnow
from core.errors import AIEmployeeError
from core.engine.executor import Execution, Executor
from core.engine.planning import EACH_PARAMS, FOR_EACH, fill, references, task_fields
from core.engine.plans import (BLOCKED, DONE, EXPIRED, FAILED, PENDING, QUEUED, REJECTED, SKIPPED, TERMINAL, WAITING,
                               PlanStore, ProposedStep, Step, render_plan)
from core.approval.policy import PolicySource
from core.engine.skills import SkillRegistry
from core.state import StateStore
from core.tasks import Task, update_task
from core.text import one_line
from core.vault import Vault

log = logging.getLogger(__name__)


@dataclass
class Workflow:
    settings: Settings
    vault: Vault
    state: StateStore
    registry: SkillRegistry
    audit: AuditLog
    policy: PolicySource
    plans: PlanStore
    approvals: Approvals
    executor: Executor

    @classmethod
    def open(cls, settings: Settings, *, actor: str, registry: SkillRegistry | None = None) -> "Workflow":
        vault = Vault(settings.vault_path)
        vault.ensure_layout()
        state = StateStore(settings.state_db, busy_timeout=settings.state_busy_timeout)
        registry = registry or SkillRegistry().discover(settings.skills_dir)
        policy = PolicySource(vault.root / "Company_Handbook.md")
        return cls(settings, vault, state, registry, AuditLog(vault.root, actor), policy, PlanStore(state),
                   Approvals.open(vault, state, settings, policy), Executor(registry, state, dry_run=settings.dry_run,
                                                                     settings=settings))

    # -- acting -----------------------------------------------------------------------------------
    def act(self, task: Task, step: Step) -> None:
        """Run a pending step now if the policy allows, else ask the owner. Never blocks on the owner."""
        try:
            action = self.registry.action(step.skill, step.action)
            action.validate(step.params)
        except AIEmployeeError as err:
            self.plans.update_step(task.id, step.no, status=FAILED, error=str(err))
            self.audit.record("step.invalid", target=f"{step.skill}.{step.action}", parameters=step.params,
                              result={"error": str(err)}, task_id=task.id)
            return
        existing = self.approvals.for_step(task.id, step.no)
        if existing is not None and self._resume(task, step, existing):
            return
        decision = self.policy.current().decide(action.info, step.params, take_rate_slot=self.state.take_rate_slot)
        if decision.auto:
            grant = self.approvals.grant_by_policy(task_id=task.id, step_no=step.no, skill=step.skill,
                                                   action=step.action, params=step.params, rule=decision.rule)
            self.execute(grant, step.title)
            return
        row = self.approvals.request(
            task_id=task.id, step_no=step.no, skill=step.skill, action=step.action, params=step.params,
            text_param=action.text_param, html_param=action.html_param, risk=decision.risk, reason=decision.reason, subject=task.title,
            details=_details(task, step, action.recipient_params, decision.reason))
        self.plans.update_step(task.id, step.no, status=WAITING, approval_id=row["id"])
        self.audit.record("approval.requested", target=f"{step.skill}.{step.action}", parameters=step.params,
                          approval_status="pending", result={"approval_id": row["id"], "file": row["file_name"]},
                          task_id=task.id)

    def _resume(self, task: Task, step: Step, row: dict) -> bool:
        """A step whose approval already exists (we crashed after recording it): carry on from there."""
        if (row["skill"], row["action"]) != (step.skill, step.action):
            # Defence in depth: the approval in this step's slot is not this step's. Never adopt it.
            self.plans.update_step(task.id, step.no, status=FAILED,
                                   error=f"approval {row['id']} in this step's slot is for {row['skill']}.{row['action']}")
            return True
        status = row["status"]
        if status in (APPROVED, EXECUTED):  # the ledger makes a second run of an executed grant a no-op
            self.execute(grant_from_row(row), step.title)
        elif status == PENDING_APPROVAL:
            self.approvals.ensure_file(row)  # repaired with the details it was filed with
            self.plans.update_step(task.id, step.no, status=WAITING, approval_id=row["id"])
        else:
            self.plans.update_step(task.id, step.no, approval_id=row["id"], error=row["note"],
                                   status={"rejected": REJECTED, "expired": EXPIRED}.get(status, FAILED))
        return True

    def execute(self, grant: Grant, title: str = "", *, patient: bool = False) -> Execution:
        def record(ex: Execution) -> None:  # in one commit with the ledger's outcome
            if ex.deferred_until is not None:  # the grant stands; the agent interface asks again when due
                self.plans.update_step(grant.task_id, grant.step_no, status=QUEUED, error=ex.outcome.error,
                                       params=grant.params, due=ex.deferred_until)
                return
            ok = ex.outcome.success
            self.approvals.set_status(grant.id, EXECUTED if ok else APR_FAILED, note=None if ok else ex.outcome.error)
            self.plans.update_step(grant.task_id, grant.step_no, status=DONE if ok else FAILED,
                                   result=ex.outcome.data if ok else None, error=None if ok else ex.outcome.error,
                                   params=grant.params)

        ex = self.executor.run(grant.skill, grant.action, grant.params, key=grant.idempotency_key,
                               task_id=grant.task_id, grant_id=grant.id, on_done=record, patient=patient)
        extra = {}
        if grant.params != grant.original_params:
            extra = {"original_parameters": grant.original_params, "edited_by_owner": True}
        queued = {"queued_until": iso(dt.datetime.fromtimestamp(ex.deferred_until, dt.timezone.utc))} \
            if ex.deferred_until is not None else {}
        self.audit.record(f"{grant.skill}.{grant.action}", target=_target(grant), parameters=grant.params,
                          approval_status="approved", approved_by=grant.approved_by,
                          result=ex.outcome.as_dict() | {"attempts": ex.attempts, "reconciled": ex.reconciled} | queued,
                          task_id=grant.task_id, idempotency_key=grant.idempotency_key, **extra)
        return ex

    def unblock(self, task: Task, steps: list[Step]) -> list[Step]:
        """Steps waiting on earlier steps' results: filled in and made ready once those are done,
        skipped once one of them ended otherwise. Called from settle, by the loop and the agent
        interface alike (whoever finished the step it waited for). Returns the steps as they now are."""
        by_no = {s.no: s for s in steps}
        changed = False
        for step in steps:
            if step.status != BLOCKED:
                continue
            needs = references([step.params, step.title])
            ended = [n for n in needs if n in by_no and by_no[n].status in TERMINAL and by_no[n].status != DONE]
            if ended or any(n not in by_no or n >= step.no for n in needs):
                why = (f"step {ended[0]} {by_no[ended[0]].status}" if ended else "it refers to a step it cannot follow")
                self.plans.update_step(task.id, step.no, status=SKIPPED, error=f"skipped: {why}")
                changed = True
            elif all(by_no[n].status == DONE for n in needs):
                results = {n: by_no[n].result for n in needs}
                if FOR_EACH in step.params:
                    self._expand(task, step, results)
                else:
                    fields = task_fields(task)
                    self.plans.update_step(task.id, step.no, status=PENDING, params=fill(step.params, fields, results),
                                           title=one_line(fill(step.title, fields, results)))
                changed = True
        return self.plans.steps(task.id) if changed else steps

    def _expand(self, task: Task, step: Step, results: dict) -> None:
        """A ``for_each`` step becomes one ready step per item of the list it names (none: done)."""
        fields = task_fields(task)
        items = fill(step.params[FOR_EACH], fields, results)
        if not isinstance(items, list):
            self.plans.update_step(task.id, step.no, status=SKIPPED,
                                   error=f"skipped: {step.params[FOR_EACH]} is not a list")
            return
        with self.state.transaction():
            added = self.plans.add_steps(task.id, "rule_based", [
                ProposedStep(step.skill, step.action, fill(step.params[EACH_PARAMS], fields, results, item=item),
                             one_line(fill(step.title, fields, results, item=item))) for item in items])
            numbers = [s.no for s in added[-len(items):]] if items else []
            where = f": steps {numbers[0]}–{numbers[-1]}" if numbers else ": nothing to do"
            self.plans.update_step(task.id, step.no, status=DONE, result={"expanded_into": numbers},
                                   title=f"One step per item ({len(items)}){where}")

    def close_step(self, task_id: str, step_no: int, status: str, note: str) -> None:
        self.plans.update_step(task_id, step_no, status=status, error=note if status == FAILED else None)

    # -- the plan file and settling ----------------------------------------------------------------
    def write_plan(self, task: Task, *, steps: list[Step] | None = None, plan: dict | None = None) -> None:
        """Render ``Plans/PLAN_<id>.md``; callers that just read (or wrote) the steps and the plan row
        pass them, as they are in the store, to save reading them again."""
        steps = self.plans.steps(task.id) if steps is None else steps
        files = {}
        for s in steps:
            if s.approval_id:
                row = self.approvals.get(s.approval_id)
                if row and row["file_name"]:
                    files[s.approval_id] = row["file_name"][:-3]
        text = render_plan(task.id, task.title, self.plans.get(task.id) if plan is None else plan, steps, files)
        self.vault.write_atomic(self.vault.folder("Plans") / f"PLAN_{task.id}.md", text, sync=False)

    def settle(self, task: Task, *, note: str | None = None, fail_reason: str | None = None,
               steps: list[Step] | None = None, round_state: tuple[int, str, str | None] | None = None) -> str:
        """Move the task to its terminal folder when every step has ended; report where it is.
        The plan file is written in every case.

        ``steps``: the task's steps as just read from the store. ``round_state``: the
        ``(rounds, status, note)`` the caller records for this round; settle records it (once)
        together with the outcome when the task finishes, else as given."""
        steps = self.plans.steps(task.id) if steps is None else steps
        if fail_reason is None and any(s.status == BLOCKED for s in steps):
            steps = self.unblock(task, steps)
        if fail_reason is None and not all(s.status in TERMINAL for s in steps):
            if round_state is not None:
                self.plans.set_round(task.id, *round_state)
            self.write_plan(task, steps=steps)  # before the task says "waiting": the owner finds the plan
            if any(s.status in (WAITING, QUEUED) for s in steps) and not any(s.status == PENDING for s in steps):
                status = "waiting_for_approval" if any(s.status == WAITING for s in steps) else "waiting_for_retry"
                if task.meta.get("status") != status:
                    update_task(self.vault, task.path, task.doc, status=status)
                return "waiting"
            return "active"
        failed = [s for s in steps if s.status == FAILED]
        reason = fail_reason or ("; ".join(f"step {s.no}: {s.error}" for s in failed) if failed else None)
        if reason:
            outcome, folder, status = "failed", "Failed", "failed"
        elif steps and all(s.status in (REJECTED, EXPIRED, SKIPPED) for s in steps):
            outcome, folder, status = ("rejected" if any(s.status == REJECTED for s in steps) else "expired"), "Completed", "completed"
        else:
            outcome, folder, status = "done", "Completed", "completed"
        changes = {"status": status, "outcome": outcome, "finished": iso(utcnow())}
        if reason:
            changes.update(reason=reason, retry=f"python agent_interface.py retry {task.id}")
        if note:
            changes["note"] = note
        update_task(self.vault, task.path, task.doc, **changes)
        plan = self.plans.get(task.id)
        rounds = round_state[0] if round_state is not None else (plan or {}).get("rounds", 0)
        final_note = reason or note or (round_state[2] if round_state is not None else None)
        self.plans.set_round(task.id, rounds, outcome, note=final_note)
        if plan is not None:  # the row as set_round just left it (nobody else writes it: we hold the task lock)
            plan = dict(plan, rounds=rounds, status=outcome, note=final_note if final_note is not None else plan["note"])
        self.write_plan(task, steps=steps, plan=plan)
        dest = self.vault.move(task.path, self.vault.folder(folder))
        task.path = dest
        self.audit.record("task.finished", target=folder, result={"outcome": outcome, "reason": reason},
                          task_id=task.id)
        return folder


def _details(task: Task, step: Step, recipient_params: tuple[str, ...], why: str) -> str:
    """What the owner reads above the request's message: the task, the step, exactly who receives it, why."""
    lines = [f"**Task:** {task.title} (`{task.id}`)", f"**Step:** {one_line(step.title)}"]
    recipients = [f"{p}: {one_line(step.params[p])}" for p in recipient_params if step.params.get(p)]
    if recipient_params:
        lines.append(f"**Who receives it:** {'; '.join(recipients) or 'nobody named'}")
    lines.append(f"**Why it needs you:** {why}")
    return "\n\n".join(lines)


def _target(grant: Grant) -> str:
    for key in ("to", "recipient", "chat", "folder", "account", "partner"):
        if key in grant.params:
            return f"{grant.skill}.{grant.action} → {grant.params[key]}"
    return f"{grant.skill}.{grant.action}"

