"""Exactly-once task creation from a durable journal, for every producer of tasks (the watchers,
and the email server's ``process_email``).

For each new item the producer (1) records its intent in the state store, keyed by the item's
``source_id``, (2) does its file work and writes the task, (3) marks the item done. A crash anywhere
is repaired by replaying staged items, and a redelivered item is recognised by its ``source_id``,
so no item is lost and none becomes two tasks, whichever process produced it.

While the state store is out (locked, unreadable, on a full disk) the journal cannot be written,
but tasks still arrive: the intent is recorded in a small spool beside the database instead (one
JSON line per item, appended and fsynced before the task is written, with the task id fixed there),
so a second delivery of the item is recognised from the spool and a crash is repaired from it.
When the store answers again the spool is replayed into the journal (staged and finished under the
same task ids) and emptied. The journal stays the source of truth; the spool only bridges an outage.
If even the spool cannot be written (a disk full for both), ``emit`` raises before anything moved:
the item stays where it was and is offered again.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

from core.audit import AuditLog
from core.documents import Document
from core.locks import item_lock, task_lock
from core.state import StateStore, is_store_outage, loads
from core.tasks import new_task_id, write_new_task
from core.vault import Vault, safe_name

log = logging.getLogger(__name__)
MakeTask = Callable[[str, dict], Document]
Rebuild = Callable[[str, dict], object]  # rebuild(source_id, detail): the producer makes the item's task again
RETRY_SECONDS = 2.0        # while the store is out: how often emit tries it again (a probe, one thread at a time)
REPLAY_BATCH = 200         # spooled items journaled per transaction
# Why a task could not be written that may pass by itself (space freed): the item is offered again.
RETRIED_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


class Spool:
    """Intents recorded while the state store is out: ``<state dir>/intake-<source>.spool.jsonl``.

    The first line names the spool's generation (a new one after each replay empties it), then one
    JSON object per item: ``source_id``, ``task_id``, ``detail``. Appends are one write of whole
    lines, fsynced, under a lock (threads: a lock; processes: an flock of the file); a line torn by
    a crash is skipped, and the next append starts on a line of its own. Lookups keep an index of
    what was read, extended by what was appended since."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._fd: int | None = None
        self._index: dict[str, dict] = {}
        self._generation: str | None = None
        self._read_to = 0

    def nonempty(self) -> bool:
        """One stat: is anything waiting to be journaled (from this process or another)?"""
        try:
            return os.stat(self.path).st_size > 0
        except OSError:
            return False

    @contextlib.contextmanager
    def locked(self) -> Iterator["Spool"]:
        with self._lock:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    # -- under locked() ---------------------------------------------------------------------------
    def find(self, source_id: str) -> dict | None:
        self._refresh()
        return self._index.get(source_id)

    def entries(self) -> list[dict]:
        self._refresh()
        return list(self._index.values())

    def append(self, entry: dict) -> None:
        """Record ``entry`` durably (fsynced) before the caller writes its task."""
        fd = self._open()
        size = os.fstat(fd).st_size
        data = b""
        if size == 0:
            self._generation = uuid.uuid4().hex
            self._index, self._read_to = {}, 0
            data = _line({"spool": 1, "generation": self._generation})
        elif os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n"  # the end of a line torn by a crash: ours starts on a new one
        data += _line(entry)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):  # leave no half line behind (a full disk)
                os.ftruncate(fd, size)
            raise
        self._refresh()

    def clear(self) -> None:
        """Everything in it is in the journal now."""
        fd = self._open()
        os.ftruncate(fd, 0)
        os.fsync(fd)
        self._index, self._generation, self._read_to = {}, None, 0

    def _refresh(self) -> None:
        fd = self._open()
        size = os.fstat(fd).st_size
        head = os.pread(fd, 4096, 0).split(b"\n", 1)[0] if size else b""
        generation = _parse(head).get("generation") if head else None
        if generation != self._generation or size < self._read_to:
            self._index, self._generation, self._read_to = {}, generation, 0  # emptied, then begun anew
        if size <= self._read_to:
            return
        chunk = os.pread(fd, size - self._read_to, self._read_to)
        complete = chunk.rfind(b"\n") + 1  # a last line still without its newline is read next time
        for raw in chunk[:complete].splitlines():
            entry = _parse(raw)
            if isinstance(entry.get("source_id"), str) and isinstance(entry.get("task_id"), str):
                self._index.setdefault(entry["source_id"], entry)  # the first intent for an item wins
        self._read_to += complete


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _parse(raw: bytes) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:  # a torn line
        return {}
    return value if isinstance(value, dict) else {}


class Intake:
    """The journal of one source (``gmail``, ``filesystem``, ...) and the one way to turn its items into tasks."""

    def __init__(self, vault: Vault, state: StateStore, audit: AuditLog, *, source: str, kind: str,
                 state_dir: Path, rebuild: Rebuild | None = None) -> None:
        self.vault, self.state, self.audit = vault, state, audit
        self.source, self.kind, self.state_dir = source, kind, Path(state_dir)
        # How to make an item's task again from its detail (the producer's replay), for items whose
        # task could not be written: without it they wait, staged, for the producer's next start.
        self.rebuild = rebuild
        self.spool = Spool(Path(state.path).parent / f"intake-{safe_name(source, max_bytes=60)}.spool.jsonl")
        self._outage: str | None = None      # why the journal could not be written, while it cannot
        self._next_try = 0.0                 # when the store is tried again (a spool replay)
        self._next_rebuild = 0.0
        self._unwritten: dict[str, dict] = {}  # items with a task id whose task could not be written yet
        self._resuming = threading.Lock()
        self._recover_pending = False        # recover() met an outage at start: done when the store is back

    @property
    def outage(self) -> str | None:
        """Why tasks are being spooled instead of journaled right now (None: the journal is written)."""
        return self._outage

    def emit(self, source_id: str, make: MakeTask, *, kind: str | None = None, detail: dict | None = None) -> str | None:
        """Create the task for ``source_id`` once. ``make(task_id, detail)`` must be idempotent:
        it may run again after a crash. Returns the task id, or None for an item already done."""
        # Under the item's own lock: two producers of one item (the Gmail watcher and process_email,
        # threads of one watcher), one journaling it and one spooling it, can never both make it.
        with item_lock(self.state_dir, self.source, source_id):
            return self._emit(source_id, make, kind=kind, detail=detail)

    def _emit(self, source_id: str, make: MakeTask, *, kind: str | None, detail: dict | None) -> str | None:
        if self._outage is not None:
            # Known out: spooled at once. Trying the store here would hold this producer for the busy
            # timeout at every item; the heartbeat's probe finds it back, then maintain() replays.
            return self._emit_spooled(source_id, make, kind=kind, detail=detail)
        spooled = None
        if self.spool.nonempty():
            # Journal what the spool holds first (this process's or another's), so that this item
            # cannot get a second task id.
            if not self._try_resume():
                return self._emit_spooled(source_id, make, kind=kind, detail=detail)
            if self.spool.nonempty():  # not emptied (yet): an item it holds keeps its task id
                with self.spool.locked():
                    spooled = self.spool.find(source_id)
        try:
            existing = self.state.item(self.source, source_id)
            if existing is not None and existing["status"] == "done":
                return None
            row = self.state.stage_item(self.source, source_id, spooled["task_id"] if spooled else
                                        new_task_id(kind or self.kind, self.source, source_id),
                                        spooled.get("detail") if spooled else detail)
        except Exception as err:
            if not is_store_outage(err):
                raise
            self._went_out(err)
            return self._emit_spooled(source_id, make, kind=kind, detail=detail)
        task_id = row["task_id"]
        detail = loads(row["detail"]) or {}
        self._write(source_id, task_id, make, detail)
        try:
            self.state.finish_item(self.source, source_id)
        except Exception as err:
            if not is_store_outage(err):
                raise
            # The task is written and the journal still says staged: the spool finishes it later.
            self._went_out(err)
            self._spool_intent(source_id, task_id=task_id, detail=detail)
        return task_id

    def stage(self, source_id: str, detail: dict, *, kind: str | None = None) -> None:
        """Record an item's intent before its task is written (a producer that stages a batch first, as
        WhatsApp does, whose messages are read once): in the journal, or in the spool while the store is
        out. ``emit`` then writes the task under the id recorded here."""
        with item_lock(self.state_dir, self.source, source_id):
            if self._outage is None:
                try:
                    self.state.stage_item(self.source, source_id, new_task_id(kind or self.kind, self.source,
                                                                              source_id), detail)
                    return
                except Exception as err:
                    if not is_store_outage(err):
                        raise
                    self._went_out(err)
            self._spool_intent(source_id, kind=kind, detail=detail)

    def _write(self, source_id: str, task_id: str, make: MakeTask, detail: dict, *, spooled: bool = False) -> bool:
        """Write the task unless it exists; True when this call wrote it."""
        try:
            # Under the task's lock, so two producers of one item (the Gmail watcher and process_email)
            # cannot both see "no task yet" and each write one.
            with task_lock(self.state_dir, task_id):
                if self.vault.find_task(task_id) is not None:
                    return False
                doc = make(task_id, detail)
                try:
                    write_new_task(self.vault, doc)
                except FileExistsError:
                    return False  # written before a crash; the journal just had not caught up
                params = {"source": self.source, "source_id": source_id, "type": doc.meta.get("type")}
                if spooled:
                    params["journal"] = "spooled: the state store is unavailable"
                self.audit.record("task.created", target=f"Needs_Action/{task_id}.md", task_id=task_id,
                                  parameters=params)
        except OSError as err:
            if err.errno in RETRIED_ERRNOS:  # a full disk: offered again by maintain(), or at the next start
                self._unwritten[source_id] = detail
            raise
        self._unwritten.pop(source_id, None)
        return True

    # -- while the store is out -------------------------------------------------------------------
    def _went_out(self, err: BaseException) -> None:
        if self._outage is None:
            log.warning("%s intake: the journal cannot be written (%s); tasks are spooled until it can",
                        self.source, err)
        self._outage = str(err)
        self._next_try = time.monotonic() + RETRY_SECONDS

    def _emit_spooled(self, source_id: str, make: MakeTask, *, kind: str | None, detail: dict | None) -> str | None:
        entry, new = self._spool_intent(source_id, kind=kind, detail=detail)
        if entry is None:
            return None  # done already
        wrote = self._write(source_id, entry["task_id"], make, entry.get("detail") or {}, spooled=True)
        return entry["task_id"] if wrote or new else None

    def _spool_intent(self, source_id: str, *, kind: str | None = None, detail: dict | None = None,
                      task_id: str | None = None) -> tuple[dict | None, bool]:
        """The item's entry in the spool, recorded (fsynced) if it had none; True when it is new. None
        when the journal says the item is done. The journal is read under the spool's lock, which a
        replay holds from reading the spool to emptying it: the item is in one or the other."""
        with self.spool.locked():
            entry = self.spool.find(source_id)
            if entry is not None:
                return entry, False
            known = None
            try:
                known = self.state.item(self.source, source_id)  # a locked or full store can still be read
            except Exception as err:
                if not is_store_outage(err):
                    raise
            if known is not None and known["status"] == "done" and task_id is None:
                return None, False
            if known is not None:
                task_id, detail = known["task_id"], loads(known["detail"]) or {}
            entry = {"source_id": source_id, "task_id": task_id or new_task_id(kind or self.kind, self.source, source_id),
                     "detail": detail or {}, "at": round(time.time(), 3)}
            self.spool.append(entry)
            return entry, True

    def maintain(self) -> None:
        """Called regularly (after each heartbeat): while the store is out, try it again when due and
        replay the spool; offer again the items whose task could not be written. Cheap otherwise."""
        if self._outage is not None or self._recover_pending or self.spool.nonempty():
            if self._try_resume() and self._recover_pending:
                self.recover()
        if not self._unwritten or self.rebuild is None or time.monotonic() < self._next_rebuild:
            return
        self._next_rebuild = time.monotonic() + RETRY_SECONDS
        for source_id, detail in list(self._unwritten.items()):
            try:
                self.rebuild(source_id, detail)
            except Exception as err:  # noqa: BLE001 - reported; the item stays staged either way
                if is_store_outage(err) or (isinstance(err, OSError) and err.errno in RETRIED_ERRNOS):
                    log.debug("%s intake: the task for %s still cannot be written: %s", self.source, source_id, err)
                    return  # offered again at the next turn
                log.warning("%s intake: the task for %s cannot be made (%s); it waits, staged, for the next "
                            "start", self.source, source_id, err)
            self._unwritten.pop(source_id, None)

    def _try_resume(self) -> bool:
        """Replay the spool, when due and unless another thread is at it. False while the store is
        known to be out: the caller spools."""
        if self._outage is not None and time.monotonic() < self._next_try:
            return False
        if not self._resuming.acquire(blocking=False):
            return self._outage is None
        try:
            now = time.monotonic()
            if now < self._next_try:
                return self._outage is None  # a spool that did not empty: not tried again at every item
            self._next_try = now + RETRY_SECONDS
            try:
                self._replay_spool()
            except Exception as err:
                if is_store_outage(err):
                    self._went_out(err)
                    return False
                log.exception("%s intake: the spool could not be replayed", self.source)
            return self._outage is None
        finally:
            self._resuming.release()

    def _replay_spool(self) -> int:
        if not self.spool.nonempty():
            self._back()
            return 0
        missing: list[dict] = []
        duplicates: list[tuple[str, str, str]] = []
        with self.spool.locked():
            entries = self.spool.entries()
            for start in range(0, len(entries), REPLAY_BATCH):
                with self.state.transaction():
                    for entry in entries[start:start + REPLAY_BATCH]:
                        outcome = self._journal(entry)
                        if outcome == "missing":
                            missing.append(entry)
                        elif outcome != "ok":
                            duplicates.append((entry["source_id"], entry["task_id"], outcome))
            self.spool.clear()
            self._back()
        if entries:
            log.info("%s intake: %d spooled item(s) journaled", self.source, len(entries))
            self.audit.record("intake.spool_replayed", target=self.source,
                              result={"items": len(entries), "without_task": len(missing)})
        for source_id, spooled, journaled in duplicates:  # outside the transaction: it takes task locks
            self._duplicate(source_id, spooled, journaled)
        for entry in missing:  # staged in the journal now: their tasks are made again
            self._unwritten.setdefault(entry["source_id"], entry.get("detail") or {})
        if missing:
            self._next_rebuild = 0.0
        return len(entries)

    def _back(self) -> None:
        if self._outage is not None:
            log.info("%s intake: the journal is written again", self.source)
        self._outage = None

    def _journal(self, entry: dict) -> str:
        """One spooled item into the journal, inside a transaction: ``ok``; ``missing`` when its task
        is not written (it stays staged); else the task id the journal already had for the item."""
        source_id, task_id, detail = entry["source_id"], entry["task_id"], entry.get("detail") or {}
        row = self.state.stage_item(self.source, source_id, task_id, detail)
        if row["task_id"] != task_id:
            # The journal knew the item under another id: it was staged, or even done, before the store
            # went out, and could not be read when the item came again.
            if row["status"] == "staged" and self.vault.find_task(row["task_id"]) is None \
                    and self.vault.find_task(task_id) is not None:
                self.state.repoint_item(self.source, source_id, task_id)  # the spooled task is the one
                self.state.finish_item(self.source, source_id)
                return "ok"
            if row["status"] != "done" and self.vault.find_task(row["task_id"]) is not None:
                self.state.finish_item(self.source, source_id)
            elif row["status"] == "staged" and self.vault.find_task(task_id) is None:
                return "missing"  # neither task was written: made again under the journal's id
            return row["task_id"]
        if row["status"] == "done":
            return "ok"
        if self.vault.find_task(task_id) is None:
            return "missing"
        self.state.finish_item(self.source, source_id)
        return "ok"

    def _duplicate(self, source_id: str, spooled: str, journaled: str) -> None:
        path = self.vault.find_task(spooled)
        where = "not written"
        if path is not None and path.parent.name == "Needs_Action":
            reason = (f"a second task for {self.source} item {source_id!r}, made while the state store was "
                      f"unavailable: the item is task {journaled}")
            with task_lock(self.state_dir, spooled):
                if path.exists():
                    self.vault.quarantine(path, reason, actor=f"intake:{self.source}")
                    where = "quarantined"
        elif path is not None:
            where = f"already in {self.vault.relative(path.parent)}"
        log.warning("%s intake: item %s became task %s, and %s while the store was out (%s)",
                    self.source, source_id, journaled, spooled, where)
        self.audit.record("intake.duplicate", target=spooled, task_id=journaled,
                          result={"source": self.source, "source_id": source_id, "spooled_task": where})

    # -- lookups ----------------------------------------------------------------------------------
    def task_of(self, source_id: str) -> str | None:
        """The task id an item became (or is becoming), if it was ever seen."""
        row = self.state.item(self.source, source_id)
        return row["task_id"] if row is not None else None

    def done(self, source_id: str) -> bool:
        row = self.state.item(self.source, source_id)
        return row is not None and row["status"] == "done"

    def recover(self) -> int:
        """At start: the spool of an outage the last run did not see the end of, then the items
        staged before a crash (through ``rebuild``). Returns how many staged items were rebuilt.
        With the store out, it is done by ``maintain`` once the store is back."""
        try:
            with self._resuming:
                self._replay_spool()
            count = self.replay_staged(self.rebuild) if self.rebuild is not None else 0
        except Exception as err:
            if not is_store_outage(err):
                raise
            self._went_out(err)
            self._recover_pending = True
            return 0
        self._recover_pending = False
        return count

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
