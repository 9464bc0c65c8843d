"""The Dashboard is refreshed every two seconds for as long as the suite runs: what one refresh costs
must not grow with the day's audit log nor with the folders of finished work."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from core.approval.approvals import Approvals
from core.audit import AuditLog, recent_records
from core.engine import dashboard
from core.engine.dashboard import DashboardWriter
from core.state import StateStore
from core.vault import Vault


def read_bytes_so_far() -> int:
    """Bytes this process has read through read(2) and friends (Linux's rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def big_day(vault: Vault, records: int) -> None:
    """``records`` audit records of today, written the way AuditLog writes them, fast."""
    day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    line = json.dumps({"timestamp": f"{day}T08:00:00.000000Z", "action_type": "task.created", "actor": "watcher-files",
                       "target": "Needs_Action/x.md", "parameters": {"source": "filesystem", "note": "x" * 300},
                       "approval_status": "not_required", "approved_by": None, "result": "ok", "task_id": "t",
                       "idempotency_key": None}) + "\n"
    (vault.root / "Logs" / f"{day}.jsonl").write_text(line * records, "utf-8")


def writer(tmp_path: Path) -> tuple[Vault, DashboardWriter]:
    vault = Vault(tmp_path / "vault")
    vault.ensure_layout()
    state = StateStore(vault.root / ".state" / "state.db")
    return vault, DashboardWriter(vault, state, Approvals(vault, state), dry_run=True)


def test_a_refresh_reads_the_tail_of_the_log_not_the_whole_day(tmp_path):
    vault, dash = writer(tmp_path)
    big_day(vault, 100_000)  # ~43 MB
    AuditLog(vault.root, "test").record("the.newest", target="last one")
    before = read_bytes_so_far()
    dash.refresh()
    assert read_bytes_so_far() - before < 1_000_000
    assert "the.newest last one (test)" in (vault.root / "Dashboard.md").read_text("utf-8")


def test_recent_records_are_the_newest_in_order_and_skip_a_torn_line(tmp_path):
    log = AuditLog(tmp_path, "test")
    for n in range(30):
        log.record("n", target=str(n))
    path = next((tmp_path / "Logs").glob("*.jsonl"))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"timestamp": "torn')  # a writer killed mid-line
    assert [r["target"] for r in recent_records(tmp_path, 10)] == [str(n) for n in range(20, 30)]
    assert recent_records(tmp_path, 10, day="1999-01-01") == []


def test_an_idle_refresh_does_not_look_into_the_folders_of_finished_work_again(tmp_path, monkeypatch):
    vault, dash = writer(tmp_path)
    for n in range(300):
        (vault.root / "Completed" / f"task-{n}.md").write_text("x")
    looked: list[str] = []
    real = os.scandir

    def counting(path):
        looked.append(os.path.basename(os.fspath(path)))
        return real(path)
    monkeypatch.setattr(dashboard.os, "scandir", counting)
    dash.refresh()
    assert "Completed" in looked
    looked.clear()
    dash.refresh()
    assert looked == []  # nothing changed: one stat per folder, no listing
    (vault.root / "Completed" / "task-new.md").write_text("x")
    monkeypatch.setattr(dashboard.FolderScan, "FRESH_SECONDS", 0.0)  # a busy folder is re-read every 10 s
    dash.refresh()
    assert looked == ["Completed"]
    assert "| Completed | 301 |" in (vault.root / "Dashboard.md").read_text("utf-8")
