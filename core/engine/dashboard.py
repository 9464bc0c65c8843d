"""``Dashboard.md``: what the owner reads first. Rendered from the vault and the state store by a
single writer (the agent interface); written only when something in it changed."""
from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from core.approval.approvals import Approvals
from core.audit import read_records
from core.state import StateStore
from core.vault import Vault

COUNTED = ("Inbox", "Needs_Action", "In_Progress", "Pending_Approval", "Approved", "Rejected", "Completed",
           "Failed", "Quarantine")
STALE_AFTER = 30.0


def count_files(folder: Path) -> int:
    total = 0
    try:
        with os.scandir(folder) as entries:
            for e in entries:
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False) and folder.name == "In_Progress":
                    total += count_files(Path(e.path))
                elif not e.name.endswith(".reason.md"):
                    total += 1
    except FileNotFoundError:
        pass
    return total


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 5400:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def process_rows(state: StateStore) -> list[tuple[str, str, str, str]]:
    now = time.time()
    rows = []
    for r in state.health_rows():
        status = r["status"]
        if now - r["heartbeat"] > STALE_AFTER and status not in ("stopped",):
            status = f"silent ({status} {age(now - r['heartbeat'])} ago)"
        rows.append((r["process"], status, r["detail"] or "", age(now - r["heartbeat"]) + " ago"))
    return rows


def recent_failures(vault: Vault, limit: int = 5) -> list[str]:
    out = []
    for folder in ("Failed", "Quarantine"):
        base = vault.root / folder
        try:
            names = sorted((e for e in os.scandir(base) if e.name.endswith(".md") and not e.name.startswith(".")),
                           key=lambda e: e.stat().st_mtime, reverse=True)[:limit]
        except FileNotFoundError:
            continue
        out += [f"`{folder}/{e.name}`" for e in names]
    return out


def render(vault: Vault, state: StateStore, approvals: Approvals, *, dry_run: bool) -> str:
    now = time.time()
    lines = ["# AI Employee — Dashboard", ""]
    lines.append("**Mode: DRY RUN** — actions are simulated; nothing leaves this machine." if dry_run
                 else "**Mode: LIVE** — approved actions are really sent, posted and paid.")
    lines += ["", "## Waiting for you", ""]
    waiting = approvals.waiting()
    if not waiting:
        lines.append("Nothing is waiting for your approval.")
    else:
        lines += ["| request | action | waiting | expires in |", "|---|---|---|---|"]
        for row in waiting[:50]:
            expires = age(row["expires"] - now) if row["expires"] else "never"
            lines.append(f"| [[{row['file_name'][:-3]}]] | {row['skill']}.{row['action']} | {age(now - row['created'])} | {expires} |")
        if len(waiting) > 50:
            lines.append(f"| … and {len(waiting) - 50} more | | | |")
        lines += ["", "Move a file from `Pending_Approval/` to `Approved/` to approve it, or to `Rejected/` to reject it."]
    lines += ["", "## Work", "", "| folder | files |", "|---|---|"]
    lines += [f"| {name} | {count_files(vault.root / name)} |" for name in COUNTED]
    lines += ["", "## Processes", ""]
    procs = process_rows(state)
    if procs:
        lines += ["| process | status | detail | last seen |", "|---|---|---|---|"]
        lines += [f"| {p} | {s} | {d.replace('|', '/')} | {seen} |" for p, s, d, seen in procs]
    else:
        lines.append("No process has reported yet.")
    problems = recent_failures(vault)
    lines += ["", "## Needs a look", ""]
    lines += [f"- {p}" for p in problems] or ["Nothing failed or was quarantined."]
    lines += ["", "## Recent activity", ""]
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    records = read_records(vault.root, today)[-10:]
    lines += [f"- {r['timestamp'][11:19]} {r['action_type']} {r.get('target', '')} ({r.get('actor')})" for r in records] \
        or ["No activity today."]
    return "\n".join(lines) + "\n"


class DashboardWriter:
    def __init__(self, vault: Vault, state: StateStore, approvals: Approvals, *, dry_run: bool) -> None:
        self.vault, self.state, self.approvals, self.dry_run = vault, state, approvals, dry_run
        self._last = ""

    def refresh(self) -> bool:
        body = render(self.vault, self.state, self.approvals, dry_run=self.dry_run)
        if body == self._last:
            return False
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.vault.write_atomic(self.vault.root / "Dashboard.md",
                                f"---\ntype: dashboard\nupdated: {stamp}\n---\n{body}\n_Updated {stamp}_\n", sync=False)
        self._last = body
        return True
