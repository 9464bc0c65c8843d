"""The audit trail: one JSON object a line in ``Logs/YYYY-MM-DD.jsonl``, mirrored as a row in
``Audit_Log.md`` (its newest rows). Every process appends; one ``write`` of one line with O_APPEND
keeps records whole."""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator

from core.redact import redact
from core.text import encodable, one_line
from core.vault import Vault

AUDIT_HEADER = (
    "# Audit log\n\nThe latest actions the AI Employee took, newest last. Every record, in full, is in "
    "`Logs/YYYY-MM-DD.jsonl`.\n\n"
    "| time (UTC) | action | actor | target | approval | result | task |\n"
    "|---|---|---|---|---|---|---|\n"
)


class _Appender:
    """Appends whole records with one write() on an O_APPEND descriptor kept open between records.
    It reopens when the file was deleted or replaced (the owner may clear Audit_Log.md, another
    process may trim it): one stat of the path per record, compared with the descriptor's inode."""

    def __init__(self) -> None:
        self._fds: dict[str, tuple[int, int, int]] = {}  # path -> (fd, st_dev, st_ino)
        self._lock = threading.Lock()

    def append(self, path: str, text: str) -> None:
        data = text.encode("utf-8")
        with self._lock:
            os.write(self._current(path)[0], data)

    def append_row(self, path: str, row: str, header: str, *, max_bytes: int, keep_rows: int,
                   keep_bytes: int) -> None:
        """Append a table row; the first row brings the header, and past ``max_bytes`` the table is
        cut to its newest rows (see _trim_table). Writers of every process take turns on a lock file, so
        no row lands in a version being replaced and no header is written twice."""
        data = row.encode("utf-8")
        with self._lock, _flocked(os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.lock")):
            fd, size = self._current(path)
            if size == 0:
                data = header.encode("utf-8") + data
            elif size > max_bytes:
                _trim_table(path, header, keep_rows, keep_bytes)
                fd, size = self._current(path)
            os.write(fd, data)

    def _current(self, path: str) -> tuple[int, int]:
        """An O_APPEND descriptor on the file now at ``path``, and its size."""
        held = self._fds.get(path)
        if held is not None:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_ino == held[2] and st.st_dev == held[1]:
                return held[0], st.st_size
            os.close(held[0])
            del self._fds[path]
        if len(self._fds) > 8:  # yesterday's log files
            for old in self._fds.values():
                os.close(old[0])
            self._fds.clear()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        st = os.fstat(fd)
        self._fds[path] = (fd, st.st_dev, st.st_ino)
        return fd, st.st_size


@contextlib.contextmanager
def _flocked(lock_path: str) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if the holder is killed
        yield
    finally:
        os.close(fd)


def _trim_table(path: str, header: str, keep_rows: int, keep_bytes: int) -> None:
    """Keep the header and the newest rows, at most ``keep_rows`` of them in at most ``keep_bytes``
    (so long rows cannot make every append trim again); the full records stay in Logs/*.jsonl."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        rows = [line for line in fh if line.startswith("| ") and not line.startswith("| time (UTC)")]
    kept: list[str] = []
    budget = keep_bytes
    for row in reversed(rows[-keep_rows:]):
        budget -= len(row.encode("utf-8"))
        if budget < 0:
            break
        kept.append(row)
    text = header + "".join(reversed(kept))
    Vault(Path(path).parent).write_atomic(Path(path), text, sync=False)


_appender = _Appender()
_append = _appender.append
# Audit_Log.md is the human-readable tail of the log: past TABLE_MAX_BYTES it is cut back to its
# newest TABLE_KEEP_ROWS rows, in at most TABLE_KEEP_BYTES.
TABLE_MAX_BYTES = 512 * 1024
TABLE_KEEP_ROWS = 1000
TABLE_KEEP_BYTES = 256 * 1024


def _cell(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = one_line(text).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AuditLog:
    def __init__(self, vault_root: Path, actor: str) -> None:
        self.logs = Path(vault_root) / "Logs"
        self.table = Path(vault_root) / "Audit_Log.md"
        self.actor = actor
        self._logs_prefix = os.path.join(self.logs, "")
        self._table = str(self.table)

    def record(self, action_type: str, *, target: str = "", parameters: Any = None,
               approval_status: str = "not_required", approved_by: str | None = None,
               result: Any = "ok", task_id: str | None = None, idempotency_key: str | None = None,
               actor: str | None = None, **extra: Any) -> dict:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        day = stamp[:10]
        entry = {
            "timestamp": stamp,
            "action_type": action_type,
            "actor": actor or self.actor,
            "target": target,
            "parameters": redact(parameters) if parameters is not None else {},
            "approval_status": approval_status,
            "approved_by": approved_by,
            "result": redact(result),
            "task_id": task_id,
            "idempotency_key": idempotency_key,
        }
        entry.update(redact(extra))
        line = encodable(json.dumps(entry, ensure_ascii=False, default=str)) + "\n"
        log_file = f"{self._logs_prefix}{day}.jsonl"
        try:
            _append(log_file, line)
        except FileNotFoundError:
            self.logs.mkdir(parents=True, exist_ok=True)
            _append(log_file, line)
        row = (f"| {day} {stamp[11:19]} | {_cell(action_type)} | {_cell(entry['actor'])} | {_cell(target)} "
               f"| {_cell(approval_status)}{' by ' + _cell(approved_by) if approved_by else ''} "
               f"| {_cell(entry['result'])} | {_cell(task_id or '')} |\n")
        _appender.append_row(self._table, row, AUDIT_HEADER, max_bytes=TABLE_MAX_BYTES, keep_rows=TABLE_KEEP_ROWS,
                             keep_bytes=TABLE_KEEP_BYTES)
        return entry

    def __call__(self, **kwargs: Any) -> dict:
        action_type = kwargs.pop("action_type")
        return self.record(action_type, **kwargs)


def read_records(vault_root: Path, day: str | None = None) -> list[dict]:
    """All records of one day (or every day), oldest first; a torn last line is skipped."""
    logs = Path(vault_root) / "Logs"
    files = [logs / f"{day}.jsonl"] if day else sorted(logs.glob("*.jsonl"))
    out: list[dict] = []
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text("utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def recent_records(vault_root: Path, limit: int = 10, *, day: str | None = None) -> list[dict]:
    """The newest ``limit`` records of a day (today by default), oldest first, read from the end of
    its file: the cost does not grow with the size of the log."""
    day = day or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    path = Path(vault_root) / "Logs" / f"{day}.jsonl"
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return []
    with fh:
        end = fh.seek(0, os.SEEK_END)
        chunk = 16 * 1024
        while True:
            start = max(0, end - chunk)
            fh.seek(start)
            lines = fh.read(end - start).split(b"\n")
            if start > 0:
                lines = lines[1:]  # the first line is cut: it begins before the chunk
            if len(lines) > limit or start == 0 or chunk >= 1 << 22:
                break
            chunk *= 4
    out: list[dict] = []
    for line in reversed(lines):
        if len(out) == limit:
            break
        try:
            out.append(json.loads(line))
        except ValueError:  # a torn or empty line
            continue
    return out[::-1]
