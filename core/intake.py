"""Exactly-once task creation from a durable journal, for every producer of tasks (the watchers,
and the email server's ``process_email``).

For each new item the producer (1) records its intent in the state store, keyed by the item's
``source_id``, (2) does its file work and writes the task, (3) marks the item done. A crash anywhere
is repaired by replaying staged items, and a redelivered item is recognised by its ``source_id``,
so no item is lost and none becomes two tasks, whichever process produced it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from core.audit import AuditLog
from core.documents import Document
from core.locks import task_lock
from core.state import StateStore, loads
from core.tasks import new_task_id, write_new_task
from core.vault import Vault

log = logging.getLogger(__name__)
MakeTask = Callable[[str, dict], Document]


class Intake:
    """The journal of one source (``gmail``, ``filesystem``, ...) and the one way to turn its items into tasks."""

    def __init__(self, vault: Vault, state: StateStore, audit: AuditLog, *, source: str, kind: str,
                 state_dir: Path) -> None:
        self.vault, self.state, self.audit = vault, state, audit
        self.source, self.kind, self.state_dir = source, kind, Path(state_dir)

    def emit(self, source_id: str, make: MakeTask, *, kind: str | None = None, detail: dict | None = None) -> str | None:
        """Create the task for ``source_id`` once. ``make(task_id, detail)`` must be idempotent:
        it may run again after a crash. Returns the task id, or None for an item already done."""
        existing = self.state.item(self.source, source_id)
        if existing is not None and existing["status"] == "done":
            return None
        row = self.state.stage_item(self.source, source_id, new_task_id(kind or self.kind, self.source, source_id), detail)
        task_id = row["task_id"]
        # Under the task's lock, so two producers of one item (the Gmail watcher and process_email)
        # cannot both see "no task yet" and each write one.
        with task_lock(self.state_dir, task_id):
            if self.vault.find_task(task_id) is not None:
                self.state.finish_item(self.source, source_id)
                return task_id
            doc = make(task_id, loads(row["detail"]) or {})
            try:
                write_new_task(self.vault, doc)
            except FileExistsError:
                pass  # written before a crash; the journal just had not caught up
            self.audit.record("task.created", target=f"Needs_Action/{task_id}.md", task_id=task_id,
                              parameters={"source": self.source, "source_id": source_id, "type": doc.meta.get("type")})
        self.state.finish_item(self.source, source_id)
        return task_id

    def task_of(self, source_id: str) -> str | None:
        """The task id an item became (or is becoming), if it was ever seen."""
        row = self.state.item(self.source, source_id)
        return row["task_id"] if row is not None else None

    def done(self, source_id: str) -> bool:
        row = self.state.item(self.source, source_id)
        return row is not None and row["status"] == "done"

    def replay_staged(self, replay: Callable[[str, dict], bool]) -> int:
        """Finish items staged before a crash; ``replay(source_id, detail)`` rebuilds one."""
        count = 0
        for row in self.state.staged_items(self.source):
            try:
                if replay(row["source_id"], loads(row["detail"]) or {}):
                    count += 1
            except Exception:  # noqa: BLE001 - one item that cannot be rebuilt must not block the others
                log.exception("could not replay staged item %s", row["source_id"])
        return count

    def counts(self) -> dict[str, int]:
        """Items per journal state: ``staged`` is the backlog, ``done`` the tasks created."""
        rows = self.state.query("SELECT status, COUNT(*) AS n FROM watcher_items WHERE source=? GROUP BY status",
                                (self.source,))
        return {r["status"]: r["n"] for r in rows}
