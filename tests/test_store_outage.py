"""The state store out (locked by another program, unreadable, on a full disk): tasks still arrive in the
vault, nothing is planned or executed without the ledger, the Dashboard and /health say so, and the work
resumes by itself once the store is back; no item is lost or becomes two tasks."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from core.audit import AuditLog
from core.documents import Document
from core.state import StateStore, StoreUnavailable, is_store_outage, outage_of
from core.intake import Intake
from core.vault import Vault
from tests.conftest import Suite, free_port, make_env, md_files, wait_until

BUSY = "0.3"  # seconds a write waits for a lock before the store counts as out


@pytest.fixture
def suite(tmp_path: Path):
    s = Suite(tmp_path, make_env(tmp_path, STATE_BUSY_TIMEOUT_SECONDS=BUSY, TWITTER_MCP_PORT=str(free_port())))
    yield s
    s.stop_all()


def dashboard(s: Suite) -> str:
    path = s.vault / "Dashboard.md"
    return path.read_text("utf-8") if path.exists() else ""


def names(folder: Path) -> list[str]:
    return [p.name for p in md_files(folder)]


def task_of(s: Suite, file_name: str) -> list[Path]:
    """The task files (wherever they are) made for one dropped file."""
    found = []
    for folder in ("Needs_Action", "In_Progress", "Completed", "Failed", "Quarantine"):
        for p in md_files(s.folder(folder)):
            with contextlib.suppress(OSError):  # moved on meanwhile
                if Document.parse(p.read_text("utf-8")).meta.get("file_name") == file_name:
                    found.append(p)
    return found


def health(port: str) -> dict | None:
    with contextlib.suppress(requests.ConnectionError, ValueError):
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
    return None


def requests_for(s: Suite, file_name: str) -> list[Path]:
    return [p for p in md_files(s.folder("Pending_Approval")) if file_name in p.name]


def approve(s: Suite, file_name: str) -> Path:
    """What the owner does: drag the request from Pending_Approval/ to Approved/."""
    [request] = wait_until(lambda: requests_for(s, file_name), timeout=30, message=f"the request for {file_name}")
    moved = s.folder("Approved") / request.name
    os.rename(request, moved)
    return moved


def test_a_locked_store_lets_tasks_arrive_executes_nothing_and_everything_resumes_when_it_is_free(suite):
    s = suite
    s.start_all()
    s.start("twitter")
    port = s.env["TWITTER_MCP_PORT"]
    s.drop("before.txt", "hello")
    approve(s, "before.txt")
    wait_until(lambda: len(s.runs()) == 1, timeout=30, message="the first file done")
    s.drop("waiting.txt", "to be approved while the store is out")
    [request] = wait_until(lambda: requests_for(s, "waiting.txt"), timeout=30, message="the second request")

    locker = sqlite3.connect(s.vault / ".state" / "state.db", timeout=5, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another program (a database browser, say) writes and holds on
    try:
        s.drop("during.txt", "held up")
        arrived = wait_until(lambda: [p for p in task_of(s, "during.txt") if p.parent.name == "Needs_Action"],
                             timeout=30, message="the task written while the store is locked")
        wait_until(lambda: "The state store is unavailable" in dashboard(s), timeout=30,
                   message="the Dashboard to say the store is out")
        assert "locked by another program" in dashboard(s)
        approved = approve(s, "waiting.txt")  # the owner approves meanwhile
        check = wait_until(lambda: (h := health(port)) and h["checks"]["state_store"]["status"] == "degraded" and h,
                           timeout=30, message="/health to say the store is out")
        assert "locked" in check["checks"]["state_store"]["detail"]
        wait_until(lambda: "Approved/` (1 there now)" in dashboard(s), timeout=30,
                   message="the Dashboard to count the approval that waits")
        # Nothing was planned or executed: the task is where the watcher wrote it, the approval where the
        # owner put it, and nothing else ran.
        assert arrived[0].exists() and approved.exists() and len(s.runs()) == 1
        assert (s.vault / ".state" / "intake-filesystem.spool.jsonl").stat().st_size > 0  # its intent, spooled
        s.assert_alive()
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    wait_until(lambda: len(s.runs()) == 2, timeout=60, message="the approval carried out once the store is free")
    approve(s, "during.txt")  # planned now: its request comes
    wait_until(lambda: len(s.runs()) == 3, timeout=60, message="the held-up task done")
    wait_until(lambda: "The state store is unavailable" not in dashboard(s) and "Needs_Action" in dashboard(s),
               timeout=30, message="the full Dashboard back")
    wait_until(lambda: (h := health(port)) and h["checks"]["state_store"]["status"] == "healthy", timeout=30,
               message="/health healthy again")
    assert sorted(json.loads(r[2])["note"] for r in s.runs()) == ["before.txt", "during.txt", "waiting.txt"]
    for name in ("during.txt", "waiting.txt"):
        wait_until(lambda: [p.parent.name for p in task_of(s, name)] == ["Completed"], timeout=30,
                   message=f"one task for {name}, completed")
    state = StateStore(s.vault / ".state" / "state.db")
    assert {r["status"] for r in state.query("SELECT status FROM watcher_items")} == {"done"}
    assert not (s.vault / ".state" / "intake-filesystem.spool.jsonl").stat().st_size  # emptied into the journal


def test_an_unreadable_store_file_is_waited_out_and_the_restored_file_is_used_again(suite):
    s = suite
    s.start_all()
    s.drop("before.txt", "hello")
    approve(s, "before.txt")
    wait_until(lambda: len(s.runs()) == 1, timeout=30, message="the first file done")
    db = s.vault / ".state" / "state.db"
    aside = s.tmp / "aside"
    aside.mkdir()
    with sqlite3.connect(db) as c:  # everything in the main file, so the file alone is the store
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.rename(db, aside / "state.db")
    db.write_bytes(b"this is not a database, it is a damaged file " * 100)

    wait_until(lambda: "cannot be read" in dashboard(s), timeout=30, message="the Dashboard to say it is unreadable")
    s.drop("during.txt", "while damaged")
    wait_until(lambda: [p for p in task_of(s, "during.txt") if p.parent.name == "Needs_Action"], timeout=30,
               message="the task written while the store is unreadable")
    assert (s.vault / ".state" / "intake-filesystem.spool.jsonl").stat().st_size > 0
    assert len(s.runs()) == 1
    s.assert_alive()

    os.replace(aside / "state.db", db)  # the owner puts the file back (a backup would do)
    approve(s, "during.txt")
    wait_until(lambda: len(s.runs()) == 2, timeout=60, message="the task done once the file is back")
    assert [p.parent.name for p in task_of(s, "during.txt")] == ["Completed"]
    wait_until(lambda: "The state store is unavailable" not in dashboard(s), timeout=30,
               message="the full Dashboard back")


# -- the journal's side, a full disk injected at the store ------------------------------------------------------
def full(state: StateStore) -> None:
    """This thread's connection may not grow the database by a single page: SQLITE_FULL, as on a full disk."""
    db = state._connect()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")


def space_freed(state: StateStore) -> None:
    state._connect().execute("PRAGMA max_page_count=1073741823")


def _intake(tmp_path: Path) -> tuple[Vault, StateStore, Intake]:
    vault = Vault(tmp_path / "vault")
    vault.ensure_layout()
    state = StateStore(tmp_path / "vault" / ".state" / "state.db", busy_timeout=0.1)
    intake = Intake(vault, state, AuditLog(vault.root, "test"), source="filesystem", kind="file_drop",
                    state_dir=tmp_path / "vault" / ".state")
    return vault, state, intake


def make(task_id: str, detail: dict) -> Document:
    return Document({"id": task_id, "type": "file_drop", "status": "pending", "file_name": detail.get("name", "")},
                    "A dropped file.\n")


def fill_up(state: StateStore) -> StoreUnavailable:
    """Tiny items of another source until the journal's pages have no room left: the outage that ends it."""
    for n in range(100_000):
        try:
            state.stage_item("filler", f"{n}", "t")
        except StoreUnavailable as out:
            return out
    raise AssertionError("the store never filled up")


def test_a_full_disk_is_classified_as_an_outage_and_a_constraint_is_not():
    full_err = sqlite3.OperationalError("database or disk is full")
    assert outage_of(full_err).kind == "full"
    assert outage_of(sqlite3.OperationalError("database is locked")).kind == "locked"
    assert outage_of(sqlite3.DatabaseError("file is not a database")).kind == "unreadable"
    assert not is_store_outage(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_store_outage(ValueError("a bug"))


def test_items_arriving_on_a_full_disk_become_tasks_once_and_are_journaled_when_space_is_freed(tmp_path):
    vault, state, intake = _intake(tmp_path)
    assert intake.emit("a", make, detail={"name": "a.txt"})  # journaled as usual
    full(state)
    assert fill_up(state).kind == "full"

    b = intake.emit("b", make, detail={"name": "b.txt"})
    assert b and vault.find_task(b) is not None and intake.outage  # written, spooled
    assert intake.emit("b", make, detail={"name": "b.txt"}) is None  # delivered again: no second task
    assert intake.emit("a", make, detail={"name": "a.txt"}) is None  # done before the outage: still done
    assert len(md_files(vault.root / "Needs_Action")) == 2

    space_freed(state)
    intake._next_try = 0.0  # its turn now, not in RETRY_SECONDS
    intake.maintain()
    assert intake.outage is None and not intake.spool.nonempty()
    assert state.item("filesystem", "b")["status"] == "done" and state.item("filesystem", "b")["task_id"] == b
    assert intake.emit("b", make, detail={"name": "b.txt"}) is None


def test_a_crash_during_an_outage_is_repaired_from_the_spool_at_the_next_start(tmp_path):
    vault, state, intake = _intake(tmp_path)
    full(state)
    fill_up(state)
    c = intake.emit("c", make, detail={"name": "c.txt"})
    assert c and intake.spool.nonempty()
    state.close()  # the process dies (kill -9) before the store is back

    _, state2, restarted = _intake(tmp_path)  # a new process; the disk has room again
    restarted.recover()
    assert not restarted.spool.nonempty()
    assert state2.item("filesystem", "c")["task_id"] == c and state2.item("filesystem", "c")["status"] == "done"
    assert restarted.emit("c", make, detail={"name": "c.txt"}) is None
    assert len(md_files(vault.root / "Needs_Action")) == 1


# -- races and waits the review found ---------------------------------------------------------------------------
def test_an_item_delivered_again_while_another_producer_replays_the_spool_is_one_task(tmp_path, monkeypatch):
    vault, state, watcher = _intake(tmp_path)
    ids = iter(f"20261201T120000Z-file_drop-{n:010x}" for n in range(100))
    monkeypatch.setattr("core.intake.new_task_id", lambda *a: next(ids))  # ids of two seconds, not one
    other = Intake(vault, StateStore(state.path, busy_timeout=0.1), AuditLog(vault.root, "t"), source="filesystem",
                   kind="file_drop", state_dir=tmp_path / "vault" / ".state")  # process_email beside the watcher
    full(state)
    fill_up(state)
    first = watcher.emit("x", make, detail={"name": "x.txt"})
    space_freed(state)
    watcher._next_try = time.monotonic() + 60  # the watcher still thinks the store is out
    read = state.item

    def read_while_the_other_replays(*args):
        row = read(*args)
        other.maintain()  # the other producer journals and empties the spool meanwhile
        return row
    state.item = read_while_the_other_replays
    try:
        watcher.emit("x", make, detail={"name": "x.txt"})  # delivered again (the cursor could not move)
    finally:
        state.item = read
    assert [p.stem for p in md_files(vault.root / "Needs_Action")] == [first]


def test_two_producers_of_one_item_one_journaling_and_one_spooling_make_one_task(tmp_path, monkeypatch):
    vault, state, spooling = _intake(tmp_path)
    journaling = Intake(vault, StateStore(state.path, busy_timeout=0.1), AuditLog(vault.root, "t"),
                        source="filesystem", kind="file_drop", state_dir=tmp_path / "vault" / ".state")
    ids = iter(f"20261201T120000Z-file_drop-{n:010x}" for n in range(100))
    monkeypatch.setattr("core.intake.new_task_id", lambda *a: next(ids))  # each producer its own id
    spooling._went_out(StoreUnavailable("locked", "database is locked"))  # its last write timed out
    read = spooling.state.item
    other = threading.Thread(target=journaling.emit, args=("y", make), kwargs={"detail": {"name": "y.txt"}})

    def read_while_the_other_emits(*args):
        row = read(*args)
        other.start()
        other.join(timeout=1.0)  # blocked on the item's lock, if there is one
        return row
    spooling.state.item = read_while_the_other_emits
    try:
        spooling.emit("y", make, detail={"name": "y.txt"})
    finally:
        spooling.state.item = read
    other.join(timeout=30)
    assert len(md_files(vault.root / "Needs_Action")) == 1


def test_while_the_store_is_known_out_an_item_is_spooled_without_waiting_for_the_store(tmp_path, monkeypatch):
    vault, state, intake = _intake(tmp_path)
    locker = sqlite3.connect(state.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        assert intake.emit("a", make, detail={"name": "a.txt"})  # this one meets the lock and waits it out
        assert intake.outage
        writes, transaction = [], state.transaction

        def counted(*args, **kwargs):
            writes.append(args)
            return transaction(*args, **kwargs)
        monkeypatch.setattr(state, "transaction", counted)
        intake._next_try = 0.0  # even with a retry due, the producer does not try the store itself
        for n in range(5):
            assert intake.emit(f"b{n}", make, detail={"name": f"b{n}.txt"})
        assert writes == []  # the heartbeat's probe finds the store back; maintain() replays then
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_a_writer_queued_behind_a_stuck_one_gives_up_after_its_wait_not_never(tmp_path, monkeypatch):
    monkeypatch.setattr("core.state.WRITER_MIN_WAIT", 0.2)
    state = StateStore(tmp_path / "state.db", busy_timeout=0.1)
    stuck = os.open(f"{state.path}.lock", os.O_RDWR)  # another process of the suite holding the write lock
    fcntl.flock(stuck, fcntl.LOCK_EX)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            state.set_cursor("c", "v")
        assert caught.value.kind == "locked"
    finally:
        os.close(stuck)
    state.set_cursor("c", "v")  # free again: written at once
    assert state.get_cursor("c") == "v"
