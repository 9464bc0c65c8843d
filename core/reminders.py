"""Reminder tasks for the owner (a credential to rotate), each filed once through the intake journal,
and the Dashboard's credentials section."""
from __future__ import annotations

import time
from pathlib import Path

from core.audit import AuditLog
from core.credentials import DAY, Seen
from core.intake import Intake
from core.state import StateStore
from core.tasks import build_task
from core.vault import Vault


class Reminders:
    def __init__(self, vault: Vault, state: StateStore, audit: AuditLog, *, state_dir: Path) -> None:
        self.intake = Intake(vault, state, audit, source="credentials", kind="reminder", state_dir=state_dir)

    def file(self, seen: Seen, why: str) -> str | None:
        """The reminder for this credential as it is now (once per fingerprint and kind of reason)."""
        reason = "expiry" if "expire" in why else "age"
        source_id = f"{seen.credential.name}|{seen.fingerprint}|{reason}"
        c = seen.credential

        def make(task_id: str, detail: dict):  # noqa: ANN202 - a Document
            content = "\n".join([f"The {c.name} {why}.", "", f"**What to do:** {c.how}.", "",
                                 "Approve the request that comes with this task once you have done it."])
            return build_task(task_id, "reminder", "credentials", source_id, title=f"Rotate the {c.name}",
                              content=content, priority="high" if reason == "expiry" else "normal",
                              extra={"credential": c.name, "reason": why})
        return self.intake.emit(source_id, make)


def credentials_section(seen: list[Seen], now: float | None = None) -> dict:
    """The Dashboard's section: each configured credential's age, expiry and whether it needs you."""
    now = time.time() if now is None else now
    if not seen:
        return {"title": "Credentials", "lines": ["No credential is configured yet."]}
    lines = ["| credential | age | expires | |", "|---|---|---|---|"]
    for s in seen:
        expires = time.strftime("%Y-%m-%d", time.localtime(s.expires)) if s.expires else "—"
        due = s.reminder_due(now)
        lines.append(f"| {s.credential.name} | {s.age_days(now):.0f} days | {expires} | "
                     f"{'**rotate: ' + due + '**' if due else 'ok'} |")
    return {"title": "Credentials", "lines": lines}


__all__ = ["Reminders", "credentials_section", "DAY"]
