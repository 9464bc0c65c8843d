"""``Dashboard.md``: what the owner reads first. Rendered from the vault and the state store by a
single writer (the agent interface); written only when something in it changed. While the state
store is unavailable a minimal Dashboard, from the folders alone, says so; the full one returns by
itself when the store is back."""
from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from core.approval.approvals import Approvals
from core.audit import recent_records
from core.state import StateStore, StoreUnavailable, outage_of
from core.text import one_line
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


def schedule_rows(state: StateStore) -> list[str]:
    """The scheduler's jobs: when each runs, how its last run went, when it runs next."""
    rows = []
    for r in state.job_rows():
        last = time.strftime("%a %d %b %H:%M", time.localtime(r["started"])) if r["started"] else "not yet"
        nxt = time.strftime("%a %d %b %H:%M", time.localtime(r["next_run"])) if r["next_run"] else "?"
        outcome = f"{r['status']}: {one_line(r['detail'] or '')}".replace("|", "/")[:160]
        rows.append(f"| {r['name']} | {r['cadence'] or '?'} | {last} | {outcome} | {nxt} |")
    return rows


def _subfolders(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.path for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    except FileNotFoundError:
        return []


def _newest(folder: Path, limit: int) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            found = [(e.stat(follow_symlinks=False).st_mtime, e.name) for e in entries
                     if e.name.endswith(".md") and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    return [name for _, name in sorted(found, reverse=True)[:limit]]


class FolderScan:
    """What a look into a folder found, kept until the folder changes (its mtime). The Dashboard is
    refreshed every few seconds: idle, that costs a stat per folder, not a look at every file the
    vault has ever finished."""

    # A folder that keeps changing (Completed/ during a burst) is looked into again at most this often.
    FRESH_SECONDS = 10.0

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[int, float, object]] = {}

    def _cached(self, folder: Path, what: str, compute) -> object:  # noqa: ANN001 - a small callable
        try:
            stamp = os.stat(folder).st_mtime_ns
        except FileNotFoundError:
            return compute(folder)
        key = (str(folder), what)
        hit = self._seen.get(key)
        now = time.monotonic()
        if hit is None or (hit[0] != stamp and now - hit[1] >= self.FRESH_SECONDS):
            hit = self._seen[key] = (stamp, now, compute(folder))
        return hit[2]

    def count(self, folder: Path) -> int:
        if folder.name != "In_Progress":
            return int(self._cached(folder, "count", count_files))
        agents = self._cached(folder, "agents", _subfolders)
        return sum(int(self._cached(Path(agent), "count", count_files)) for agent in agents)

    def newest(self, folder: Path, limit: int) -> list[str]:
        return list(self._cached(folder, f"newest{limit}", lambda f: _newest(f, limit)))


def recent_failures(vault: Vault, scan: FolderScan, limit: int = 5) -> list[str]:
    return [f"`{folder}/{name}`" for folder in ("Failed", "Quarantine")
            for name in scan.newest(vault.root / folder, limit)]


def channel_rows(state: StateStore) -> list[str]:
    rows = []
    for r in state.query("SELECT * FROM channels ORDER BY name"):
        said = {"ok": "working", "auth_error": "needs you to sign in again", "unavailable": "unreachable",
                "rate_limited": "rate limited", "not_configured": "not configured",
                "changed": "its page changed: selectors need an update"}.get(r["state"], r["state"])
        detail = one_line(r["detail"] or "").replace("|", "/")
        rows.append(f"| {r['name']} | {said} | {detail} | {age(time.time() - r['at'])} ago, by {r['by']} |")
    return rows


def render(vault: Vault, state: StateStore, approvals: Approvals, *, dry_run: bool,
           scan: FolderScan | None = None) -> str:
    scan = scan or FolderScan()
    now = time.time()
    lines = ["# AI Employee — Dashboard", ""]
    lines.append("**Mode: DRY RUN** — actions are simulated; nothing leaves this machine." if dry_run
                 else "**Mode: LIVE** — approved actions are really sent, posted and paid.")
    lines += ["", "## Waiting for you", ""]
    waiting = approvals.waiting(limit=51)
    if not waiting:
        lines.append("Nothing is waiting for your approval.")
    else:
        lines += ["| request | action | waiting | expires in |", "|---|---|---|---|"]
        for row in waiting[:50]:
            expires = age(row["expires"] - now) if row["expires"] else "never"
            lines.append(f"| [[{row['file_name'][:-3]}]] | {row['skill']}.{row['action']} | {age(now - row['created'])} | {expires} |")
        if len(waiting) > 50:
            lines.append("| … and more: see `python agent_interface.py pending` | | | |")
        lines += ["", "Move a file from `Pending_Approval/` to `Approved/` to approve it, or to `Rejected/` to reject it."]
    lines += ["", "## Work", "", "| folder | files |", "|---|---|"]
    lines += [f"| {name} | {scan.count(vault.root / name)} |" for name in COUNTED]
    for _, section, as_of in state.cache_prefixed("dashboard:"):  # sections the verticals keep up to date
        if isinstance(section, dict) and section.get("lines"):
            lines += ["", f"## {one_line(section.get('title') or 'Section')}", ""]
            lines += [one_line(line) if not str(line).startswith("  ") else "  " + one_line(line)
                      for line in section["lines"]]
            lines += ["", f"_Figures as of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(as_of))} "
                          f"({age(now - as_of)} ago)._"]
    channels = channel_rows(state)
    if channels:
        lines += ["", "## Channels", "", "| channel | state | detail | last real outcome |", "|---|---|---|---|"]
        lines += channels
    lines += ["", "## Processes", ""]
    procs = process_rows(state)
    if procs:
        lines += ["| process | status | detail | last seen |", "|---|---|---|---|"]
        lines += [f"| {p} | {s} | {one_line(d).replace('|', '/')} | {seen} |" for p, s, d, seen in procs]
    else:
        lines.append("No process has reported yet.")
    jobs = schedule_rows(state)
    if jobs:
        lines += ["", "## Schedule", "", "| job | when | last run | outcome | next run |", "|---|---|---|---|---|"]
        lines += jobs
    problems = recent_failures(vault, scan)
    lines += ["", "## Needs a look", ""]
    lines += [f"- {p}" for p in problems] or ["Nothing failed or was quarantined."]
    lines += ["", "## Recent activity", ""]
    records = recent_records(vault.root, 10)
    lines += [f"- {r['timestamp'][11:19]} {one_line(r['action_type'])} {one_line(r.get('target', ''))} "
              f"({one_line(r.get('actor'))})" for r in records] \
        or ["No activity today."]
    return "\n".join(lines) + "\n"


OUTAGE_HINTS = {
    "locked": "another program holds the database open for writing (a database browser on `{db}`?): close it.",
    "full": "the disk that holds `{db}` is full: free some space on it.",
    "unreadable": ("`{db}` is missing, damaged or cannot be read: put back the file that was there. An older "
                   "backup forgets what was done since it was taken (see the README before restoring one)."),
}


def render_outage(vault: Vault, outage: StoreUnavailable, *, dry_run: bool, since: float,
                  state_path: Path | None = None, scan: FolderScan | None = None) -> str:
    """What the owner must know while the state store is out, from the filesystem alone."""
    scan = scan or FolderScan()
    db = str(state_path) if state_path is not None else "state.db"
    try:
        db = str(Path(db).relative_to(vault.root))
    except ValueError:
        pass
    counts = {name: scan.count(vault.root / name) for name in COUNTED}
    lines = ["# AI Employee — Dashboard", "",
             f"> [!warning] **The state store is unavailable**: {one_line(outage.reason)}.",
             f"> Since {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(since))} ({age(time.time() - since)} ago).", "",
             f"- **Tasks keep arriving** in `Needs_Action/`: {counts['Needs_Action']} there now.",
             "- **Nothing is planned or executed until it is back**: the action ledger, which makes every action "
             "happen at most once, lives in the store. Requests you move to `Approved/` "
             f"({counts['Approved']} there now) wait there, untouched, and are carried out once it is back (unless they expire meanwhile).",
             "- **It resumes by itself** when the store is back: nothing needs restarting.",
             f"- What to check: {OUTAGE_HINTS.get(outage.kind, OUTAGE_HINTS['unreadable']).format(db=db)}", ""]
    lines.append("**Mode: DRY RUN** — actions are simulated; nothing leaves this machine." if dry_run
                 else "**Mode: LIVE** — approved actions are really sent, posted and paid.")
    lines += ["", "## Work (counted from the folders)", "", "| folder | files |", "|---|---|"]
    lines += [f"| {name} | {counts[name]} |" for name in COUNTED]
    return "\n".join(lines) + "\n"


class DashboardWriter:
    def __init__(self, vault: Vault, state: StateStore, approvals: Approvals, *, dry_run: bool) -> None:
        self.vault, self.state, self.approvals, self.dry_run = vault, state, approvals, dry_run
        self.scan = FolderScan()
        self._last = ""
        self._outage_since: float | None = None

    def refresh(self, outage: StoreUnavailable | None = None) -> bool:
        """Write the Dashboard if it changed. ``outage``: the store is known to be out (the minimal
        Dashboard); one met while rendering is written the same way, then raised for the caller."""
        met = None
        if outage is None:
            try:
                body = render(self.vault, self.state, self.approvals, dry_run=self.dry_run, scan=self.scan)
                self._outage_since = None
            except Exception as err:
                met = outage_of(err)
                if met is None:
                    raise
                outage = met
        if outage is not None:
            if self._outage_since is None:
                self._outage_since = time.time()
            body = render_outage(self.vault, outage, dry_run=self.dry_run, since=self._outage_since,
                                 state_path=self.state.path, scan=self.scan)
        changed = self._write(body)
        if met is not None:
            raise met
        return changed

    def _write(self, body: str) -> bool:
        if body == self._last:
            return False
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.vault.write_atomic(self.vault.root / "Dashboard.md",
                                f"---\ntype: dashboard\nupdated: {stamp}\n---\n{body}\n_Updated {stamp}_\n", sync=False)
        self._last = body
        return True
