"""Plans: the steps of a task, kept in the state store (so every process sees one truth) and
rendered to ``Plans/PLAN_<task-id>.md`` with checkboxes for the owner."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from core.documents import Document, iso, utcnow
from core.state import StateStore, dumps, loads
from core.text import one_line

# Step states. Terminal ones end a step for good; the task settles when every step is terminal.
PENDING, WAITING, DONE, FAILED, REJECTED, EXPIRED, SKIPPED = (
    "pending", "awaiting_approval", "done", "failed", "rejected", "expired", "skipped")
QUEUED = "queued"  # approved and sent, but the channel could not take it yet: the server retries it
BLOCKED = "blocked"  # uses an earlier step's result: its parameters are filled in once that step is done
TERMINAL = frozenset({DONE, FAILED, REJECTED, EXPIRED, SKIPPED})
_MARK = {DONE: "x", SKIPPED: "-", REJECTED: "-", EXPIRED: "-", FAILED: " ", PENDING: " ", WAITING: " ", QUEUED: " ",
         BLOCKED: " "}


@dataclass
class ProposedStep:
    """What a planner proposes; nothing runs until the policy or the owner approves it."""
    skill: str
    action: str
    params: dict[str, Any]
    title: str
    blocked: bool = False  # its params use an earlier step's result (see Workflow.unblock)


@dataclass
class Step:
    task_id: str
    no: int
    skill: str
    action: str
    params: dict[str, Any]
    title: str
    status: str = PENDING
    approval_id: str | None = None
    result: Any = None
    error: str | None = None
    due: float | None = None  # QUEUED: when to ask the server again
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The idempotency key of an auto-approved run of this step."""
        return f"{self.task_id}#{self.no}"


def _row_to_step(row: Any) -> Step:
    return Step(row["task_id"], row["step_no"], row["skill"], row["action"], loads(row["params"]), row["title"],
                row["status"], row["approval_id"], loads(row["result"]), row["error"], row["due"])


class PlanStore:
    def __init__(self, state: StateStore) -> None:
        self.state = state

    def get(self, task_id: str) -> dict | None:
        rows = self.state.query("SELECT * FROM plans WHERE task_id=?", (task_id,))
        return dict(rows[0]) if rows else None

    def steps(self, task_id: str) -> list[Step]:
        return [_row_to_step(r) for r in self.state.query(
            "SELECT * FROM steps WHERE task_id=? ORDER BY step_no", (task_id,))]

    def add_steps(self, task_id: str, planner: str, proposed: list[ProposedStep]) -> list[Step]:
        now = time.time()
        with self.state.transaction() as db:
            db.execute("INSERT OR IGNORE INTO plans(task_id, planner, rounds, status, updated) VALUES(?,?,0,'active',?)",
                       (task_id, planner, now))
            start = db.execute("SELECT COALESCE(MAX(step_no), 0) FROM steps WHERE task_id=?", (task_id,)).fetchone()[0]
            for i, step in enumerate(proposed, start=start + 1):
                db.execute("INSERT INTO steps(task_id, step_no, skill, action, params, title, status, updated) "
                           "VALUES(?,?,?,?,?,?,?,?)",
                           (task_id, i, step.skill, step.action, dumps(step.params), step.title,
                            BLOCKED if step.blocked else PENDING, now))
        return self.steps(task_id)

    def set_round(self, task_id: str, rounds: int, status: str, note: str | None = None) -> None:
        with self.state.transaction() as db:
            db.execute("UPDATE plans SET rounds=?, status=?, note=COALESCE(?, note), updated=? WHERE task_id=?",
                       (rounds, status, note, time.time(), task_id))

    def update_step(self, task_id: str, no: int, *, status: str, approval_id: str | None = None,
                    result: Any = None, error: str | None = None, params: dict | None = None,
                    due: float | None = None, title: str | None = None) -> None:
        with self.state.transaction() as db:
            db.execute("UPDATE steps SET status=?, approval_id=COALESCE(?, approval_id), result=COALESCE(?, result), "
                       "error=?, params=COALESCE(?, params), due=?, title=COALESCE(?, title), updated=? "
                       "WHERE task_id=? AND step_no=?",
                       (status, approval_id, dumps(result) if result is not None else None, error,
                        dumps(params) if params is not None else None, due, title, time.time(), task_id, no))

    def queued_due(self, limit: int = 50) -> list[Step]:
        """Steps the servers queued whose time to ask again has come."""
        return [_row_to_step(r) for r in self.state.query(
            "SELECT * FROM steps WHERE status=? AND due<=? ORDER BY due LIMIT ?", (QUEUED, time.time(), limit))]


def _clock(moment: float | None) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(moment)) if moment else "soon"


def render_plan(task_id: str, title: str, plan: dict | None, steps: list[Step], approval_files: dict[str, str]) -> str:
    status = (plan or {}).get("status", "active")
    meta = {"type": "plan", "task_id": task_id, "planner": (plan or {}).get("planner", "rule_based"),
            "round": (plan or {}).get("rounds", 0), "status": status, "updated": iso(utcnow())}
    lines = [f"# Plan: {one_line(title)}", ""]
    if not steps:
        lines.append("_No external action is needed for this task._")
    for s in steps:
        note = {WAITING: "waiting for your approval", FAILED: f"failed: {s.error or ''}".rstrip(": "),
                QUEUED: f"queued by the server, tried again by {_clock(s.due)}: {s.error or ''}".rstrip(": "),
                BLOCKED: "waits for the step(s) before it",
                REJECTED: "rejected by you", EXPIRED: "approval expired", SKIPPED: s.error or "skipped", DONE: "done",
                PENDING: "to do"}.get(s.status, s.status)
        link = f" → [[{approval_files[s.approval_id]}]]" if s.approval_id in approval_files else ""
        lines.append(f"- [{_MARK.get(s.status, ' ')}] {s.no}. {one_line(s.title)} (`{s.skill}.{s.action}`) — "
                     f"{one_line(note)}{link}")
    if plan and plan.get("note"):
        lines += ["", f"**Note:** {plan['note']}"]
    return Document(meta, "\n".join(lines) + "\n").render()
