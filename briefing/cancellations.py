"""The owner's list of subscriptions to cancel: ``Accounting/Subscription_Cancellations.md``.

There is no API to cancel a subscription with (every vendor has its own billing page), so an
approved cancellation is recorded here, one table row each, for the owner to act on. Rows are
appended under a lock and published atomically (Vault.write_atomic); the approval's key is in its row,
so a repeated execution finds it and adds nothing."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from core.documents import Document
from core.locks import task_lock
from core.vault import Vault
from briefing.text import inert, money

FILE = ("Accounting", "Subscription_Cancellations.md")
LOCK = "briefing-subscription-cancellations"
TABLE_HEAD = ["| approved (UTC) | merchant | a month | why | approval |", "|---|---|---|---|---|"]
INTRO = ("# Subscriptions to cancel\n\nEach row is a cancellation you approved from the Monday briefing. The AI "
         "Employee cannot cancel them itself (vendors offer no API for it): cancel each on the vendor's billing "
         "page, then delete its row or mark it done.\n\n")


def path_of(vault: Vault) -> Path:
    return vault.folder(*FILE)


def find(vault: Vault, key: str) -> dict[str, Any] | None:
    """The row recorded for approval ``key``, if there is one."""
    try:
        text = path_of(vault).read_text("utf-8")
    except FileNotFoundError:
        return None
    marker = f"| {key} |"
    for line in text.splitlines():
        if line.rstrip().endswith(marker):
            return {"recorded": vault.relative(path_of(vault)), "row": line, "key": key}
    return None


def record(vault: Vault, state_dir: Path, *, merchant: str, monthly_amount: float, reason: str, key: str,
           currency: str = "", now: dt.datetime | None = None) -> dict[str, Any]:
    """Append the approved cancellation (once per ``key``); what was recorded, and where."""
    if "|" in key or "\n" in key:
        raise ValueError("an approval key cannot hold '|' or a line break")
    now = now or dt.datetime.now(dt.timezone.utc)
    path = path_of(vault)
    with task_lock(state_dir, LOCK):  # one writer at a time: a row is never lost to a concurrent rewrite
        found = find(vault, key)
        if found is not None:
            return {**found, "already": True}
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            text = Document({"type": "subscription_cancellations"}, INTRO).render()
        lines = text.rstrip("\n").split("\n")
        if not lines[-1].startswith("|"):  # no table at the end (new file, or the owner wrote below it)
            lines += ["", *TABLE_HEAD]
        row = (f"| {now.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} | {inert(merchant, 120)} | "
               f"{money(monthly_amount, currency)} | {inert(reason, 400)} | {key} |")
        lines.append(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        vault.write_atomic(path, "\n".join(lines) + "\n")
    return {"recorded": vault.relative(path), "row": row, "key": key, "already": False}
