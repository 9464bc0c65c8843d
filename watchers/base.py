"""The base every watcher stands on: exactly-once task creation from a durable journal.

For each new item the watcher (1) records its intent in the state store, keyed by the item's
``source_id``, (2) does its file work and writes the task, (3) marks the item done. A crash anywhere
is repaired at start by replaying staged items, and a redelivered item is recognised by its
``source_id``, so no item is lost and none becomes two tasks.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from core.audit import AuditLog
from core.config import Settings
from core.daemon import Daemon
from core.documents import Document
from core.errors import AuthError, NotConfiguredError, TransientError
from core.locks import task_lock
from core.retry import Backoff
from core.state import StateStore, loads
from core.tasks import new_task_id, write_new_task
from core.vault import Vault

log = logging.getLogger(__name__)


class BaseWatcher:
    source = "base"      # the producer name written to tasks and the journal
    kind = "item"        # the task type this watcher produces
    process_name = "watcher"

    def __init__(self, settings: Settings, *, vault: Vault | None = None, state: StateStore | None = None) -> None:
        self.settings = settings
        self.vault = vault or Vault(settings.vault_path)
        self.vault.ensure_layout()
        self.state = state or StateStore(settings.state_db)
        self.audit = AuditLog(self.vault.root, self.process_name)
        self.daemon = Daemon(self.process_name, self.state)
        self.backoff = Backoff(base=1.0, maximum=300.0, attempts=1_000_000)

    # -- exactly-once creation ---------------------------------------------------------------------
    def emit(self, source_id: str, make: Callable[[str, dict], Document], *, kind: str | None = None,
             detail: dict | None = None) -> str | None:
        """Create the task for ``source_id`` once. ``make(task_id, detail)`` must be idempotent:
        it may run again after a crash. Returns the task id, or None for an item already done."""
        existing = self.state.item(self.source, source_id)
        if existing is not None and existing["status"] == "done":
            return None
        row = self.state.stage_item(self.source, source_id, new_task_id(kind or self.kind, self.source, source_id), detail)
        task_id = row["task_id"]
        # Under the task's lock, so two producers of one item (the Gmail watcher and process_email)
        # cannot both see "no task yet" and each write one.
        with task_lock(self.settings.state_dir, task_id):
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

    def recover(self) -> int:
        """Finish items staged before a crash; subclasses say how to rebuild a task from its detail."""
        count = 0
        for row in self.state.staged_items(self.source):
            try:
                if self.replay(row["source_id"], loads(row["detail"]) or {}):
                    count += 1
            except Exception:
                log.exception("could not replay staged item %s", row["source_id"])
        return count

    def replay(self, source_id: str, detail: dict) -> bool:
        raise NotImplementedError

    # -- polling daemons --------------------------------------------------------------------------
    def is_configured(self) -> bool:
        return True

    def poll(self) -> int:
        """One pass over the channel; returns how many tasks it created."""
        raise NotImplementedError

    def poll_interval(self) -> float:
        return 60.0

    def run_polling(self) -> None:
        """The coordinator habit: poll, back off on trouble, pause on auth errors, log on transitions."""
        self.recover()
        failures = 0
        while not self.daemon.stop.is_set():
            if not self.is_configured():
                self.daemon.beat("not_configured", f"{self.source}: no credentials configured")
                self.daemon.stop.wait(max(self.poll_interval(), 5.0))
                continue
            try:
                created = self.poll()
                failures = 0
                self.daemon.beat("healthy", f"last poll {time.strftime('%H:%M:%S')}, {created} new")
                wait = self.poll_interval()
            except NotConfiguredError as err:
                self.daemon.beat("not_configured", str(err))
                wait = max(self.poll_interval(), 5.0)
            except AuthError as err:
                self.daemon.beat("auth_error", f"{err} — re-authorise this channel; other channels go on", error=str(err))
                wait = max(self.poll_interval(), 60.0)
            except TransientError as err:
                failures += 1
                wait = self.backoff.delay(failures, err)
                self.daemon.beat("degraded", f"{err}; retrying in {wait:.0f}s", error=str(err))
            self.daemon.stop.wait(wait)
