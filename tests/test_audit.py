"""The audit trail: every record in Logs/*.jsonl; Audit_Log.md its readable tail, with one header and
no row lost while several processes append and one of them trims it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core import audit
from core.audit import AUDIT_HEADER, AuditLog, read_records

ROOT = Path(__file__).resolve().parent.parent
WRITER = """
import sys
from core import audit
audit.TABLE_MAX_BYTES, audit.TABLE_KEEP_ROWS = int(sys.argv[3]), int(sys.argv[4])
audit.TABLE_KEEP_BYTES = audit.TABLE_MAX_BYTES
log = audit.AuditLog(sys.argv[1], "writer-" + sys.argv[2])
sys.stdin.readline()  # start together
for n in range(int(sys.argv[5])):
    log.record("test.row", target=f"w{sys.argv[2]}-{n:04d}")
"""


def table_rows(vault: Path) -> list[str]:
    lines = (vault / "Audit_Log.md").read_text("utf-8").splitlines()
    return [line for line in lines if line.startswith("| ") and not line.startswith("| time (UTC)")]


def run_writers(vault: Path, writers: int, rows: int, max_bytes: int, keep_rows: int) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(vault), str(w), str(max_bytes), str(keep_rows),
                               str(rows)], cwd=ROOT, stdin=subprocess.PIPE, text=True) for w in range(writers)]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0


def test_processes_starting_together_write_one_header(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    run_writers(vault, writers=6, rows=30, max_bytes=10**9, keep_rows=10**9)
    text = (vault / "Audit_Log.md").read_text("utf-8")
    assert text.startswith(AUDIT_HEADER) and text.count("| time (UTC) |") == 1
    assert len(table_rows(vault)) == 180
    assert len(read_records(vault)) == 180


def test_trimming_while_others_append_loses_no_row(tmp_path):
    # Kept near 4 KB, so nearly every append trims while four processes append: a row written into
    # a version being replaced would leave a gap in its writer's run of rows.
    vault = tmp_path / "vault"
    vault.mkdir()
    run_writers(vault, writers=4, rows=300, max_bytes=4096, keep_rows=10**9)
    kept: dict[str, list[int]] = {}
    for row in table_rows(vault):
        writer, n = row.split(" | ")[3].split("-")
        kept.setdefault(writer, []).append(int(n))
    assert kept
    for writer, numbers in kept.items():
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), f"{writer} lost a row: {numbers}"
    assert (vault / "Audit_Log.md").read_text("utf-8").count("| time (UTC) |") == 1
    assert len(read_records(vault)) == 1200


def test_the_table_keeps_the_newest_rows_and_the_logs_keep_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(audit, "TABLE_MAX_BYTES", 1500)
    monkeypatch.setattr(audit, "TABLE_KEEP_ROWS", 5)
    monkeypatch.setattr(audit, "TABLE_KEEP_BYTES", 1000)
    vault = tmp_path / "vault"
    log = AuditLog(vault, "test")
    for n in range(100):
        log.record("test.row", target=f"row-{n:03d}", parameters={"api_key": "sk-secret-value"})
    rows = table_rows(vault)
    assert 5 <= len(rows) < 30
    assert rows[-1].split(" | ")[3] == "row-099"
    assert [r.split(" | ")[3] for r in rows] == [f"row-{n:03d}" for n in range(100 - len(rows), 100)]
    records = read_records(vault)
    assert [r["target"] for r in records] == [f"row-{n:03d}" for n in range(100)]
    monkeypatch.setattr(audit, "TABLE_MAX_BYTES", 100)
    monkeypatch.setattr(audit, "TABLE_KEEP_BYTES", 100)  # room for one row: the byte budget wins over the row count
    log.record("test.row", target="row-100")
    assert [r.split(" | ")[3] for r in table_rows(vault)] == ["row-099", "row-100"]
    assert "sk-secret-value" not in json.dumps(records)
    assert not [p for p in vault.iterdir() if p.name.startswith(".tmp-")]
