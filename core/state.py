"""The SQLite state store (WAL): cursors, watcher journal, approvals, plans, the action ledger,
rate-limit windows, the outbox and process health. Shared by every process of the suite.

A committed transaction survives ``kill -9`` of any process (WAL, synchronous=NORMAL), which is
the crash model the suite promises; each process opens its own connection.

When the store cannot be used (locked by another program past the busy timeout, unreadable, on a
full disk) every method raises ``StoreUnavailable``, the one classification of an outage that the
processes act on (``is_store_outage``); a connection that met an unreadable file, or whose file was
replaced or removed under it, is reopened at its next use, so the store comes back by itself.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS watcher_items (
    source TEXT NOT NULL, source_id TEXT NOT NULL, task_id TEXT NOT NULL,
    status TEXT NOT NULL, detail TEXT, created REAL NOT NULL,
    PRIMARY KEY (source, source_id));
CREATE TABLE IF NOT EXISTS plans (
    task_id TEXT PRIMARY KEY, planner TEXT NOT NULL, rounds INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, note TEXT, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    task_id TEXT NOT NULL, step_no INTEGER NOT NULL, skill TEXT NOT NULL, action TEXT NOT NULL,
    params TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL, approval_id TEXT,
    result TEXT, error TEXT, updated REAL NOT NULL,
    PRIMARY KEY (task_id, step_no));
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, task_id TEXT NOT NULL, step_no INTEGER NOT NULL,
    skill TEXT NOT NULL, action TEXT NOT NULL, params TEXT NOT NULL, text_param TEXT,
    risk TEXT, reason TEXT, file_name TEXT NOT NULL, status TEXT NOT NULL,
    created REAL NOT NULL, expires REAL, approved_by TEXT, approved_params TEXT,
    decided REAL, note TEXT,
    UNIQUE (task_id, step_no));
CREATE TABLE IF NOT EXISTS ledger (
    key TEXT PRIMARY KEY, skill TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rate_events (
    channel TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_events_by_channel ON rate_events (channel, at);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL, last_error TEXT,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, as_of REAL NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
    name TEXT PRIMARY KEY, state TEXT NOT NULL, detail TEXT, by TEXT, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS health (
    process TEXT PRIMARY KEY, status TEXT NOT NULL, detail TEXT, pid INTEGER,
    heartbeat REAL NOT NULL, last_error TEXT, last_error_at REAL);
CREATE TABLE IF NOT EXISTS bank_transactions (
    key TEXT PRIMARY KEY, date TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL,
    description TEXT NOT NULL, counterparty TEXT NOT NULL, reference TEXT NOT NULL, account TEXT NOT NULL,
    balance TEXT, bank_id TEXT, source TEXT NOT NULL, source_row INTEGER NOT NULL,
    occurrence INTEGER NOT NULL DEFAULT 0, imported_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS bank_transactions_by_date ON bank_transactions (date);
CREATE TABLE IF NOT EXISTS credentials (
    name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY, slot REAL NOT NULL, status TEXT NOT NULL, detail TEXT, pid INTEGER,
    started REAL, finished REAL, cadence TEXT, next_run REAL);
"""

# Columns added after a table first shipped: an existing database gets them at the next start.
MIGRATIONS = {
    "steps": {"due": "REAL"},
    "approvals": {"html_param": "TEXT", "details": "TEXT"},
    "outbox": {"key": "TEXT"},
}
# Indexes for what periodic sweeps ask, so their cost does not grow with history.
POST_MIGRATION = """
CREATE UNIQUE INDEX IF NOT EXISTS outbox_by_key ON outbox (key);
CREATE INDEX IF NOT EXISTS steps_by_status ON steps (status, due);
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals (status, created);
"""

LEDGER_STATES = ("pending", "sending", "succeeded", "failed", "unknown")
# What a channel's last real outcome was (a call to Gmail, X, Odoo, ...), by whichever process made it.
CHANNEL_STATES = ("ok", "auth_error", "unavailable", "rate_limited", "not_configured", "changed")


DEFAULT_BUSY_TIMEOUT = 30.0  # seconds a write waits for another SQLite client's lock (STATE_BUSY_TIMEOUT_SECONDS)
# The least a write waits for the suite's own write lock, however short the busy timeout: the suite's
# writers hold it for microseconds, so only a writer stuck behind another program's lock waits this long.
WRITER_MIN_WAIT = 2.0
IDENTITY_CHECK_SECONDS = 0.5  # how often a connection checks that its file is still the one at the path

# SQLite's primary result codes that mean "the store is out", not "this statement is wrong".
_LOCKED_CODES = {5, 6}                       # SQLITE_BUSY, SQLITE_LOCKED
_FULL_CODES = {13}                           # SQLITE_FULL
_UNREADABLE_CODES = {7, 8, 10, 11, 14, 15, 26}  # NOMEM, READONLY, IOERR, CORRUPT, CANTOPEN, PROTOCOL, NOTADB
_NOT_OUTAGES = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.DataError,
                sqlite3.NotSupportedError)
_REASONS = {"locked": "it is locked by another program", "full": "the disk (or the database) is full",
            "unreadable": "its file cannot be read"}


class StoreUnavailable(sqlite3.OperationalError):
    """The state store cannot be used right now: ``kind`` is ``locked``, ``full`` or ``unreadable``.

    Nothing that needs the store (planning, executing, the ledger) may go on; whatever can wait
    waits, and carries on by itself once the store answers again. A subclass of
    ``sqlite3.OperationalError``, so code that already handles SQLite errors keeps working."""

    def __init__(self, kind: str, detail: str = "") -> None:
        self.kind = kind if kind in _REASONS else "unreadable"
        self.detail = detail
        self.reason = f"{_REASONS[self.kind]} ({detail})" if detail else _REASONS[self.kind]
        super().__init__(f"the state store is unavailable: {self.reason}")


def outage_of(err: BaseException) -> StoreUnavailable | None:
    """``err`` as a store outage, or None when it is something else (a bug, a constraint)."""
    if isinstance(err, StoreUnavailable):
        return err
    if not isinstance(err, sqlite3.Error) or isinstance(err, _NOT_OUTAGES):
        return None
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(err)
    if primary in _LOCKED_CODES or (primary is None and "locked" in text):
        return StoreUnavailable("locked", text)
    if primary in _FULL_CODES or (primary is None and "is full" in text):
        return StoreUnavailable("full", text)
    if primary in _UNREADABLE_CODES or "no such table" in text or (
            primary is None and any(w in text for w in ("not a database", "malformed", "unable to open", "I/O"))):
        # "no such table": the file at the path is a database, but not ours (an empty one, another one)
        return StoreUnavailable("unreadable", text)
    return None


def is_store_outage(err: BaseException) -> bool:
    """True when ``err`` says the state store is out (locked, unreadable, full), whatever raised it."""
    return outage_of(err) is not None


def busy_timeout_from_env() -> float:
    """``STATE_BUSY_TIMEOUT_SECONDS`` (Settings refuses a bad value at start; here it falls back)."""
    try:
        value = float(os.environ.get("STATE_BUSY_TIMEOUT_SECONDS") or DEFAULT_BUSY_TIMEOUT)
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT
    return value if value >= 0 else DEFAULT_BUSY_TIMEOUT


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def canonical(value: Any) -> str:
    """One JSON spelling per value (sorted keys; 150.0 written as 150), so "exactly these parameters"
    is a string compare, whichever side typed a whole number as a float."""
    return dumps(_whole_numbers(value))


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class _Writer:
    """The write lock of one database for this process: a thread lock, then an flock of
    ``<db>.lock`` (released by the kernel if the process dies). One per database and process,
    shared by every StateStore on it, so two stores in one thread cannot deadlock each other."""

    def __init__(self, path: Path) -> None:
        self.lock = threading.RLock()
        self.fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.depth = 0

    def acquire(self, timeout: float) -> None:
        """Take the lock within ``timeout`` seconds, else ``StoreUnavailable('locked')``. Bounded, so
        that writers of several processes queued behind one that waits on another program's lock
        give up after one busy timeout each, not one after the other. Uncontended: one flock call;
        contended (held for microseconds by the suite's own writers): retried within microseconds."""
        deadline = time.monotonic() + timeout
        if not self.lock.acquire(timeout=max(timeout, 0.001)):
            raise StoreUnavailable("locked", f"another thread held the write lock for {timeout:g} s")
        if self.depth == 0:
            try:
                self._flock(deadline, timeout)
            except BaseException:
                self.lock.release()
                raise
        self.depth += 1

    def _flock(self, deadline: float, timeout: float) -> None:
        delay = 0.00005
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreUnavailable("locked", f"another process held the write lock for {timeout:g} s") \
                        from None
            time.sleep(delay)
            delay = min(delay * 2, 0.002)

    def release(self) -> None:
        self.depth -= 1
        try:
            if self.depth == 0:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.lock.release()


_writers: dict[tuple[int, str], _Writer] = {}
_writers_lock = threading.Lock()


def _writer_for(path: Path) -> _Writer:
    key = (os.getpid(), os.path.realpath(path))  # a forked child must not share the parent's flock
    with _writers_lock:
        found = _writers.get(key)
        if found is None:
            found = _writers[key] = _Writer(path)
        return found


class StateStore:
    """Thin typed access to the tables; every method is one short transaction."""

    def __init__(self, path: Path, *, busy_timeout: float | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout = busy_timeout_from_env() if busy_timeout is None else max(0.0, float(busy_timeout))
        self._local = threading.local()
        self._writer = _writer_for(self.path)
        # Only the first connection may create the file: a database that disappears later is an
        # outage, never a silent fresh start (an empty ledger could let an action run twice).
        self._uri: str | None = None
        try:
            with self._outages():
                db = self._connect()
                db.executescript(SCHEMA)  # idempotent; executescript manages its own transaction
                self._migrate(db)
        finally:
            self._uri = f"file:{quote(os.path.abspath(self.path))}?mode=rw"

    def _migrate(self, db: sqlite3.Connection) -> None:
        for table, columns in MIGRATIONS.items():
            have = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in have:
                    with self.transaction() as tx:
                        try:
                            tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                        except sqlite3.OperationalError as err:  # another process added it first
                            if "duplicate column" not in str(err):
                                raise
        db.executescript(POST_MIGRATION)

    # -- connection -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        local = self._local
        db = getattr(local, "db", None)
        if db is not None and not getattr(local, "depth", 0):
            # A file replaced or removed under an open connection (restored from a backup, moved
            # away) is not noticed by SQLite, which goes on with the old file nobody else sees:
            # look, at most every IDENTITY_CHECK_SECONDS, and reopen whatever is at the path now.
            now = time.monotonic()
            if now >= local.check_at:
                local.check_at = now + IDENTITY_CHECK_SECONDS
                if self._identity() != local.identity:
                    self._drop()
                    db = None
        if db is None:
            if self._uri is None:
                db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                     check_same_thread=False)
            else:
                db = sqlite3.connect(self._uri, timeout=self.busy_timeout, isolation_level=None,
                                     check_same_thread=False, uri=True)
            try:
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
                db.execute("PRAGMA mmap_size=268435456")  # page reads from memory, not a pread() each
            except BaseException:
                db.close()
                raise
            local.db, local.identity = db, self._identity()
            local.check_at = time.monotonic() + IDENTITY_CHECK_SECONDS
        return db

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _drop(self) -> None:
        """Forget this thread's connection; the next call opens the file anew."""
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    @contextlib.contextmanager
    def _outages(self) -> Iterator[None]:
        """An SQLite error that means the store is out, raised as ``StoreUnavailable``; others as they are."""
        try:
            yield
        except sqlite3.Error as err:
            out = self._unavailable(err)
            if out is None or out is err:
                raise
            raise out from err

    def _unavailable(self, err: sqlite3.Error) -> StoreUnavailable | None:
        """The outage ``err`` means, if it is one; a connection that met an unreadable file is dropped."""
        out = outage_of(err)
        if out is not None and out.kind == "unreadable" and not getattr(self._local, "depth", 0):
            self._drop()
        return out

    @contextlib.contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction. Re-entrant: a transaction opened inside another (same store, same
        thread) joins it, so a caller can make several updates commit together (or not at all)."""
        local = self._local
        if getattr(local, "depth", 0):
            local.depth += 1
            try:
                yield self._connect()
            finally:
                local.depth -= 1
            return
        # The suite's writers queue on their own lock, retried within microseconds: threads of this
        # process on a thread lock, processes on an flock of a lock file beside the database.
        # SQLite's own busy handler would make a waiting writer sleep for milliseconds while the
        # write lock is held for microseconds. (busy_timeout still covers other SQLite clients.)
        self._writer.acquire(max(self.busy_timeout, WRITER_MIN_WAIT))
        try:
            with self._outages():
                db = self._connect()
                db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            local.depth = 1
            try:
                yield db
            except BaseException as err:
                local.depth = 0
                if db.in_transaction:  # an error may have rolled it back already
                    with contextlib.suppress(sqlite3.Error):  # an unreadable file may refuse even this
                        db.execute("ROLLBACK")
                out = self._unavailable(err) if isinstance(err, sqlite3.Error) else None
                if out is None or out is err:
                    raise
                raise out from err
            finally:
                local.depth = 0
            try:
                db.execute("COMMIT")
            except sqlite3.Error as err:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                out = self._unavailable(err)
                if out is None:
                    raise
                raise out from err
        finally:
            self._writer.release()

    def in_transaction(self) -> bool:
        """True while this thread has a transaction open on this store."""
        return bool(getattr(self._local, "depth", 0))

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._outages():
            return self._connect().execute(sql, args).fetchall()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- cursors --------------------------------------------------------------------------------
    def get_cursor(self, name: str) -> str | None:
        rows = self.query("SELECT value FROM cursors WHERE name=?", (name,))
        return rows[0]["value"] if rows else None

    def set_cursor(self, name: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO cursors(name, value, updated) VALUES(?,?,?) "
                       "ON CONFLICT(name) DO UPDATE SET value=excluded.value, updated=excluded.updated",
                       (name, value, time.time()))

    # -- watcher journal --------------------------------------------------------------------------
    def stage_item(self, source: str, source_id: str, task_id: str, detail: dict | None = None) -> sqlite3.Row:
        """Record intent before any file moves; returns the row (an existing one wins)."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO watcher_items(source, source_id, task_id, status, detail, created) "
                       "VALUES(?,?,?,?,?,?)", (source, source_id, task_id, "staged", dumps(detail or {}), time.time()))
            return db.execute("SELECT * FROM watcher_items WHERE source=? AND source_id=?",
                              (source, source_id)).fetchone()

    def finish_item(self, source: str, source_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE watcher_items SET status='done' WHERE source=? AND source_id=?", (source, source_id))

    def repoint_item(self, source: str, source_id: str, task_id: str) -> None:
        """A staged item whose task was written under another id (while the store was out)."""
        with self.transaction() as db:
            db.execute("UPDATE watcher_items SET task_id=? WHERE source=? AND source_id=? AND status='staged'",
                       (task_id, source, source_id))

    def staged_items(self, source: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM watcher_items WHERE source=? AND status='staged'", (source,))

    def item(self, source: str, source_id: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM watcher_items WHERE source=? AND source_id=?", (source, source_id))
        return rows[0] if rows else None

    # -- action ledger ----------------------------------------------------------------------------
    def ledger_get(self, key: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM ledger WHERE key=?", (key,))
        return rows[0] if rows else None

    def ledger_begin(self, key: str, skill: str, action: str, *, durable: bool = True) -> sqlite3.Row:
        """Mark ``key`` as sending (one more attempt) and return the row as it was before.

        ``durable``: the commit is fsynced (synchronous=FULL). Once an action may leave the
        machine, the record that it was attempted must survive even a power cut, or a restart
        could do it again without reconciling first. An action that stays on the machine (filing
        into the vault) has nothing outside to duplicate, so it skips that fsync."""
        if self.in_transaction():  # joining an open transaction would defer its commit
            raise RuntimeError("ledger_begin must commit on its own, before the action runs")
        if not durable:
            return self._ledger_begin(key, skill, action)
        with self._outages():
            db = self._connect()
            db.execute("PRAGMA synchronous=FULL")
        try:
            return self._ledger_begin(key, skill, action)
        finally:
            with contextlib.suppress(sqlite3.Error):  # a connection dropped meanwhile starts at NORMAL
                db.execute("PRAGMA synchronous=NORMAL")

    def _ledger_begin(self, key: str, skill: str, action: str) -> sqlite3.Row:
        with self.transaction() as db:
            before = db.execute("SELECT * FROM ledger WHERE key=?", (key,)).fetchone()
            db.execute("INSERT INTO ledger(key, skill, action, status, attempts, updated) VALUES(?,?,?,?,1,?) "
                       "ON CONFLICT(key) DO UPDATE SET status='sending', attempts=attempts+1, updated=excluded.updated",
                       (key, skill, action, "sending", time.time()))
            return before

    def ledger_finish(self, key: str, status: str, *, result: Any = None, error: str | None = None) -> None:
        assert status in LEDGER_STATES
        with self.transaction() as db:
            db.execute("UPDATE ledger SET status=?, result=?, error=?, updated=? WHERE key=?",
                       (status, dumps(result), error, time.time(), key))

    # -- rate limits -----------------------------------------------------------------------------
    def take_rate_slot(self, channel: str, limit: int, window: float = 3600.0) -> bool:
        """Atomically count and take one slot in ``channel``'s sliding window, across processes."""
        now = time.time()
        with self.transaction() as db:
            db.execute("DELETE FROM rate_events WHERE channel=? AND at<?", (channel, now - window))
            used = db.execute("SELECT COUNT(*) FROM rate_events WHERE channel=?", (channel,)).fetchone()[0]
            if used >= limit:
                return False
            db.execute("INSERT INTO rate_events(channel, at) VALUES(?,?)", (channel, now))
            return True

    # -- outbox ---------------------------------------------------------------------------------
    def outbox_put(self, kind: str, payload: dict, *, delay: float = 0.0, key: str | None = None,
                   error: str | None = None) -> int:
        """Queue ``payload`` for a later attempt. With ``key``, one entry per key: queueing it again
        moves its next attempt and counts the failure."""
        now = time.time()
        with self.transaction() as db:
            if key is not None:
                found = db.execute("SELECT id FROM outbox WHERE key=?", (key,)).fetchone()
                if found is not None:
                    db.execute("UPDATE outbox SET attempts=attempts+1, next_attempt=?, last_error=? WHERE id=?",
                               (now + delay, error, found["id"]))
                    return int(found["id"])
            cur = db.execute("INSERT INTO outbox(kind, payload, next_attempt, created, key, last_error, attempts) "
                             "VALUES(?,?,?,?,?,?,?)",
                             (kind, dumps(payload), now + delay, now, key, error, 1 if error else 0))
            return int(cur.lastrowid)

    def outbox_due(self, kind: str, limit: int = 50) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM outbox WHERE kind=? AND next_attempt<=? ORDER BY next_attempt, id LIMIT ?",
                          (kind, time.time(), limit))

    def outbox_entry(self, key: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM outbox WHERE key=?", (key,))
        return rows[0] if rows else None

    def outbox_waiting(self, kind: str) -> tuple[int, float | None]:
        """How many entries of ``kind`` wait, and when the next one is due."""
        row = self.query("SELECT COUNT(*) AS n, MIN(next_attempt) AS due FROM outbox WHERE kind=?", (kind,))[0]
        return int(row["n"]), row["due"]

    def outbox_done(self, item_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM outbox WHERE id=?", (item_id,))

    def outbox_retry_later(self, item_id: int, delay: float, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, next_attempt=?, last_error=? WHERE id=?",
                       (time.time() + delay, error, item_id))

    # -- cache ----------------------------------------------------------------------------------------
    def cache_put(self, key: str, value: Any) -> float:
        """Keep the latest answer under ``key`` (what a read served, what a section shows); returns its time."""
        now = time.time()
        with self.transaction() as db:
            db.execute("INSERT INTO cache(key, value, as_of) VALUES(?,?,?) ON CONFLICT(key) DO UPDATE SET "
                       "value=excluded.value, as_of=excluded.as_of", (key, dumps(value), now))
        return now

    def cache_get(self, key: str) -> tuple[Any, float] | None:
        rows = self.query("SELECT value, as_of FROM cache WHERE key=?", (key,))
        return (loads(rows[0]["value"]), rows[0]["as_of"]) if rows else None

    def cache_prefixed(self, prefix: str) -> list[tuple[str, Any, float]]:
        rows = self.query("SELECT key, value, as_of FROM cache WHERE key >= ? AND key < ? ORDER BY key",
                          (prefix, prefix + "\uffff"))
        return [(r["key"], loads(r["value"]), r["as_of"]) for r in rows]

    # -- channels ---------------------------------------------------------------------------------
    def set_channel(self, name: str, state: str, detail: str = "", *, by: str = "") -> None:
        assert state in CHANNEL_STATES, state
        with self.transaction() as db:
            db.execute("INSERT INTO channels(name, state, detail, by, at) VALUES(?,?,?,?,?) ON CONFLICT(name) DO "
                       "UPDATE SET state=excluded.state, detail=excluded.detail, by=excluded.by, at=excluded.at",
                       (name, state, detail, by, time.time()))

    def channel(self, name: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM channels WHERE name=?", (name,))
        return rows[0] if rows else None

    # -- credentials (a fingerprint and when it was first seen: never the secret) --------------------
    def credential_seen(self, name: str, fingerprint: str, now: float) -> float:
        """When this credential, as it is now, was first seen; a new fingerprint (rotated) starts now."""
        with self.transaction() as db:
            db.execute("INSERT INTO credentials(name, fingerprint, first_seen) VALUES(?,?,?) ON CONFLICT(name) "
                       "DO UPDATE SET fingerprint=excluded.fingerprint, first_seen=excluded.first_seen "
                       "WHERE credentials.fingerprint != excluded.fingerprint", (name, fingerprint, now))
            return db.execute("SELECT first_seen FROM credentials WHERE name=?", (name,)).fetchone()[0]

    # -- scheduled jobs ---------------------------------------------------------------------------
    def job_claim(self, name: str, slot: float, pid: int, *, stale_pid: int | None = None) -> bool:
        """Take the run of ``name`` due at ``slot``: True for exactly one caller, however many schedulers
        ask. A later slot replaces an earlier one; ``stale_pid`` retakes a run its process died in."""
        now = time.time()
        with self.transaction() as db:
            if stale_pid is not None:
                cur = db.execute("UPDATE jobs SET pid=?, started=?, detail=NULL WHERE name=? AND slot=? AND "
                                 "status='running' AND pid=?", (pid, now, name, slot, stale_pid))
            else:
                cur = db.execute("INSERT INTO jobs(name, slot, status, pid, started) VALUES(?,?,'running',?,?) "
                                 "ON CONFLICT(name) DO UPDATE SET slot=excluded.slot, status='running', "
                                 "detail=NULL, pid=excluded.pid, started=excluded.started, finished=NULL "
                                 "WHERE jobs.slot < excluded.slot", (name, slot, pid, now))
            return cur.rowcount == 1

    def job_baseline(self, name: str, slot: float) -> None:
        """A job seen for the first time: its past slots are not owed (nothing was missed)."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO jobs(name, slot, status, detail) VALUES(?,?,'new','not run yet')",
                       (name, slot))

    def job_finish(self, name: str, slot: float, status: str, detail: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET status=?, detail=?, finished=? WHERE name=? AND slot=?",
                       (status, detail[:500], time.time(), name, slot))

    def job_plan(self, name: str, cadence: str, next_run: float) -> None:
        """What the Dashboard shows of a job: its cadence and its next run."""
        with self.transaction() as db:
            db.execute("UPDATE jobs SET cadence=?, next_run=? WHERE name=?", (cadence, next_run, name))

    def job(self, name: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM jobs WHERE name=?", (name,))
        return rows[0] if rows else None

    def job_rows(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM jobs ORDER BY name")

    # -- health --------------------------------------------------------------------------------
    def heartbeat(self, process: str, status: str, detail: str = "", pid: int | None = None,
                  error: str | None = None) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO health(process, status, detail, pid, heartbeat, last_error, last_error_at) "
                "VALUES(?,?,?,?,?,?,?) ON CONFLICT(process) DO UPDATE SET status=excluded.status, "
                "detail=excluded.detail, pid=excluded.pid, heartbeat=excluded.heartbeat, "
                "last_error=COALESCE(excluded.last_error, health.last_error), "
                "last_error_at=COALESCE(excluded.last_error_at, health.last_error_at)",
                (process, status, detail, pid, now, error, now if error else None))

    def health_rows(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM health ORDER BY process")
