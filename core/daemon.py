"""What every long-running process shares: logging, SIGTERM/SIGINT handling, a heartbeat in the
state store (read by the Dashboard and `agent_interface.py status`), and a folder feed that wakes on
inotify events and rescans periodically so nothing dropped while the process was down is missed."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from inotify_simple import INotify, flags

from core.config import Settings
from core.errors import ConfigError
from core.state import StateStore, StoreUnavailable, outage_of

log = logging.getLogger(__name__)


def run_daemon(name: str, build: Callable[[Settings], Any], method: str = "run",
               settings: Settings | None = None) -> int:
    """The entry point every daemon shares: settings (a bad value exits 2 naming the variable),
    logging, SIGTERM/SIGINT handling, then ``build(settings).<method>()`` until stopped."""
    try:
        settings = settings or Settings.from_env()
    except ConfigError as err:
        print(f"{name}: configuration error: {err}", file=sys.stderr)
        return 2
    setup_logging(settings, name)
    # A stop asked for while the worker is still being built (PM2 stopping a process that just started)
    # is kept and honoured once it runs, instead of killing it half-built.
    early = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: early.set())
    worker = build(settings)
    worker.daemon.install_signal_handlers()
    if early.is_set():
        worker.daemon.stop.set()
    getattr(worker, method)()
    log.info("%s stopped", name)
    return 0


def setup_logging(settings: Settings, name: str) -> None:
    logging.basicConfig(level=settings.log_level, stream=sys.stdout,
                        format=f"%(asctime)s {name} %(levelname)s %(message)s")


class Daemon:
    """Stop flag, signals and heartbeat; logs health on transitions only.

    The heartbeat is also how a process learns that the state store is out and when it is back.
    While it is out, a beat never waits for it (a locked store makes a write wait the busy
    timeout): one probe at a time writes the heartbeat in the background, and callbacks
    registered with ``on_beat`` run after every heartbeat that was recorded, the first one
    after an outage included, so work that waited for the store resumes by itself."""

    # While the store is out, how often a probe tries it; failures of the work itself (a write
    # refused while the heartbeat goes through, as on a full disk) space the probes out further.
    PROBE_SECONDS = 1.0
    PROBE_MAX_SECONDS = 30.0

    def __init__(self, name: str, state: StateStore, beat_every: float = 2.0) -> None:
        self.name = name
        self.state = state
        self.stop = threading.Event()
        self.beat_every = beat_every
        self._last_beat = 0.0
        self._last_status: tuple[str, str] | None = None
        self._outage: StoreUnavailable | None = None
        self._work_failures = 0                     # outages met by the work since the store last held up
        self._last_work_failure = 0.0
        self._probe_lock = threading.Lock()
        self._probing = False
        self._next_probe = 0.0
        self._callbacks: list[Callable[[], object]] = []

    @property
    def store_error(self) -> str | None:
        """Why the state store cannot be used, while it stays out (None when it answers)."""
        return str(self._outage) if self._outage is not None else None

    def store_outage(self) -> StoreUnavailable | None:
        """The outage this process is waiting out, if any: nothing that needs the store should start."""
        return self._outage

    def on_beat(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` after each recorded heartbeat (and at once when the store comes back)."""
        self._callbacks.append(callback)

    def store_failed(self, err: BaseException) -> StoreUnavailable:
        """The work met an outage: wait it out like a failed heartbeat, probing less often each time."""
        out = outage_of(err) or StoreUnavailable("unreadable", str(err))
        now = time.monotonic()
        if now - self._last_work_failure > 60.0:
            self._work_failures = 0
        self._work_failures += 1
        self._last_work_failure = now
        delay = min(self.PROBE_MAX_SECONDS, self.PROBE_SECONDS * 2 ** (self._work_failures - 1))
        with self._probe_lock:
            self._next_probe = max(self._next_probe, now + delay)
        self._went_out(out)
        return out

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())

    def beat(self, status: str = "healthy", detail: str = "", *, note: str = "", error: str | None = None,
             force: bool = False) -> None:
        """Record health. ``detail`` names the state (a change is logged); ``note`` is what changes
        all the time (the last poll, the next retry): shown beside it, never logged."""
        now = time.monotonic()
        changed = (status, detail) != self._last_status
        if changed:
            log.log(logging.WARNING if status not in ("healthy", "idle") else logging.INFO,
                    "%s is %s%s", self.name, status, f": {detail}" if detail else "")
        if changed or force or error or now - self._last_beat >= self.beat_every:
            shown = f"{detail} ({note})" if detail and note else detail or note
            self._last_status = (status, detail)
            if self._outage is not None:
                self._probe(status, shown, error)
                return
            if self._record(status, shown, error):
                self._last_beat = now
                self._run_callbacks()

    def _record(self, status: str, shown: str, error: str | None) -> bool:
        try:
            self.state.heartbeat(self.name, status, shown, os.getpid(), error=error)
        except Exception as err:  # noqa: BLE001 - an unreadable store must not stop the work
            self._went_out(outage_of(err) or StoreUnavailable("unreadable", str(err)))
            return False
        if self._outage is not None:
            log.info("%s: the state store is reachable again", self.name)
            self._outage = None
        return True

    def _went_out(self, out: StoreUnavailable) -> None:
        if self._outage is None:
            log.warning("%s: %s", self.name, out)
        self._outage = out

    def _probe(self, status: str, shown: str, error: str | None) -> None:
        with self._probe_lock:
            now = time.monotonic()
            if self._probing or now < self._next_probe:
                return
            self._probing = True
        threading.Thread(target=self._probe_once, args=(status, shown, error), daemon=True,
                         name=f"{self.name}-store-probe").start()

    def _probe_once(self, status: str, shown: str, error: str | None) -> None:
        try:
            if self._record(status, shown, error):
                self._last_beat = time.monotonic()
                self._run_callbacks()
        finally:
            with self._probe_lock:
                self._probing = False
                self._next_probe = max(self._next_probe, time.monotonic() + self.PROBE_SECONDS)
            with contextlib.suppress(Exception):
                self.state.close()  # this thread's connection goes with the thread

    def _run_callbacks(self) -> None:
        for callback in self._callbacks:
            try:
                callback()
            except Exception as err:  # noqa: BLE001 - the callback's own trouble; the beat goes on
                if outage_of(err) is not None:
                    self.store_failed(err)
                else:
                    log.exception("%s: after the heartbeat", self.name)


class FolderFeed:
    """Candidate paths in one folder, from inotify (fast path) and periodic rescans (safety net).

    Raw inotify, because what matters is *how* a file arrived: a file moved in (IN_MOVED_TO) or
    closed after writing (IN_CLOSE_WRITE) is complete and taken at once; a bare IN_CREATE of a
    regular file means a writer is still at work, so it waits for the close. Symlinks and folders
    only ever produce IN_CREATE, so those are passed on for the consumer to refuse.
    """

    MASK = flags.CLOSE_WRITE | flags.MOVED_TO | flags.CREATE

    def __init__(self, folder: Path, rescan_seconds: float, *, only_when_changed: bool = False) -> None:
        self.folder = folder
        self.rescan_seconds = rescan_seconds
        # For a folder that only grows (Rejected/) and whose files need no second look: a rescan
        # happens only when the folder changed since the last one, so an idle one costs a stat.
        self.only_when_changed = only_when_changed
        self._scanned: int | None = None  # the folder's mtime when it was last scanned
        self._inotify: INotify | None = None
        self._next_rescan = 0.0
        self.last_was_rescan = False

    def __enter__(self) -> "FolderFeed":
        self.folder.mkdir(parents=True, exist_ok=True)
        self._inotify = INotify()
        self._inotify.add_watch(self.folder, self.MASK)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None

    def rescan_now(self) -> None:
        """The next wait lists everything present (after the consumer paused: nothing is missed)."""
        self._next_rescan, self._scanned = 0.0, None

    def scan(self) -> list[Path]:
        try:
            with os.scandir(self.folder) as entries:
                names = sorted(e.name for e in entries if not e.name.startswith("."))
        except FileNotFoundError:
            return []
        return [self.folder / n for n in names]

    def wait(self, stop: threading.Event, timeout: float = 0.5) -> list[Path]:
        """What arrived, once each; when a rescan is due, everything present (``last_was_rescan``)."""
        assert self._inotify is not None, "use FolderFeed as a context manager"
        now = time.monotonic()
        self.last_was_rescan = now >= self._next_rescan
        if self.last_was_rescan:
            self._next_rescan = now + self.rescan_seconds
            if self.only_when_changed and not self._changed():
                self.last_was_rescan = False
                return [p for p in self._events(0) if not stop.is_set()]
            self._inotify.read(timeout=0)  # what those events announced is in the scan
            return self.scan()
        wait_ms = int(max(0.0, min(self._next_rescan, now + timeout) - now) * 1000)
        batch = self._events(wait_ms)
        return [] if stop.is_set() else batch

    def _events(self, wait_ms: int) -> list[Path]:
        assert self._inotify is not None
        batch: dict[Path, None] = {}
        for event in self._inotify.read(timeout=wait_ms):
            if event.mask & flags.Q_OVERFLOW:
                self._next_rescan, self._scanned = 0.0, None  # events were dropped: look at everything
                continue
            if not event.name or event.name.startswith("."):
                continue
            path = self.folder / event.name
            if event.mask & flags.CREATE and not event.mask & flags.ISDIR and not path.is_symlink():
                continue  # a writer just opened it; its IN_CLOSE_WRITE will follow
            batch[path] = None
        return list(batch)

    def _changed(self) -> bool:
        try:
            stamp = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            return False
        changed, self._scanned = stamp != self._scanned, stamp
        return changed
