"""The base every watcher stands on: the channel's journal (exactly-once tasks, see core.intake)
and the polling coordinator: poll, back off on trouble, pause on auth errors, log on transitions."""
from __future__ import annotations

import logging
from typing import Callable

from core.audit import AuditLog
from core.channels import ChannelReport
from core.config import Settings
from core.daemon import Daemon
from core.documents import Document
from core.errors import AuthError, NotConfiguredError, TransientError
from core.intake import Intake
from core.retry import Backoff
from core.state import StateStore
from core.vault import Vault

log = logging.getLogger(__name__)
# Trouble that is not the channel's (a full disk, a bug): retried too, never fatal to the process.
POLL_BACKOFF = Backoff(base=1.0, maximum=300.0, attempts=1_000_000)


class BaseWatcher:
    source = "base"      # the producer name written to tasks and the journal
    kind = "item"        # the task type this watcher produces
    process_name = "watcher"
    channel: str | None = None  # the outside system polled (e.g. "gmail"): its outcomes are reported

    def __init__(self, settings: Settings, *, vault: Vault | None = None, state: StateStore | None = None,
                 backoff: Backoff = POLL_BACKOFF) -> None:
        self.settings = settings
        self.vault = vault or Vault(settings.vault_path)
        self.vault.ensure_layout()
        self.state = state or StateStore(settings.state_db, busy_timeout=settings.state_busy_timeout)
        self.audit = AuditLog(self.vault.root, self.process_name)
        self.intake = Intake(self.vault, self.state, self.audit, source=self.source, kind=self.kind,
                             state_dir=settings.state_dir, rebuild=self.replay)
        self.daemon = Daemon(self.process_name, self.state)
        # While the state store is out, tasks are spooled (core.intake); after each heartbeat, and at
        # once when the store is back, the spool is replayed into the journal.
        self.daemon.on_beat(self.intake.maintain)
        self.backoff = backoff
        self.report = ChannelReport(self.state, self.channel, by=self.process_name) if self.channel else None

    def emit(self, source_id: str, make: Callable[[str, dict], Document], *, kind: str | None = None,
             detail: dict | None = None) -> str | None:
        return self.intake.emit(source_id, make, kind=kind, detail=detail)

    def recover(self) -> int:
        """Finish items spooled during an outage and staged before a crash; subclasses say how to
        rebuild a task from its detail (``replay``). With the store out, this waits for it to be back."""
        return self.intake.recover()

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
        """The coordinator habit: poll, back off on trouble, pause on auth errors, log on transitions.

        The health detail names the state; what changes on every poll (its time, the wait before the
        next retry) is a note beside it, so only a change of state is logged."""
        self.guarded(self.recover)
        failures = 0
        while not self.daemon.stop.is_set():
            if not self.is_configured():
                self.daemon.beat("not_configured", f"{self.source}: no credentials configured")
                self.daemon.stop.wait(max(self.poll_interval(), 5.0))
                continue
            try:
                created = self.poll()
                self._report(None)
                failures = 0
                self.daemon.beat("healthy", f"polling every {self.poll_interval():g}s",
                                 note=f"last poll: {created} new")
                wait = self.poll_interval()
            except NotConfiguredError as err:
                self._report(err)
                self.daemon.beat("not_configured", str(err))
                wait = max(self.poll_interval(), 5.0)
            except AuthError as err:
                self._report(err)
                self.daemon.beat("auth_error", f"{err} — re-authorise this channel; other channels go on", error=str(err))
                wait = max(self.poll_interval(), 60.0)
            except Exception as err:  # noqa: BLE001 - transient upstream trouble, or ours: retry, never die
                self._report(err)
                failures += 1
                wait = self.backoff.delay(failures, err)
                if not isinstance(err, TransientError):
                    log.exception("%s poll failed", self.source)
                self.daemon.beat("degraded", f"{type(err).__name__}: {err}" if not isinstance(err, TransientError)
                                 else str(err), note=f"retrying in {wait:.0f}s", error=str(err))
            self.daemon.stop.wait(wait)

    def _report(self, error: BaseException | None) -> None:
        if self.report is not None:
            self.report.record(error)

    def guarded(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - e.g. the store is unreadable at start: poll anyway
            log.exception("%s failed", getattr(fn, "__name__", "work"))
            self.daemon.beat("degraded", f"{getattr(fn, '__name__', 'work')}: {err}", error=str(err))
