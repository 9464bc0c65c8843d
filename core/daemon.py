"""What every long-running process shares: logging, SIGTERM/SIGINT handling, a heartbeat in the
state store (read by the Dashboard and `agent_interface.py status`), and a folder feed that wakes on
inotify events and rescans periodically so nothing dropped while the process was down is missed."""
from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from core.config import Settings
from core.state import StateStore

log = logging.getLogger(__name__)


def setup_logging(settings: Settings, name: str) -> None:
    logging.basicConfig(level=settings.log_level, stream=sys.stdout,
                        format=f"%(asctime)s {name} %(levelname)s %(message)s")


class Daemon:
    """Stop flag, signals and heartbeat; logs health on transitions only."""

    def __init__(self, name: str, state: StateStore, beat_every: float = 2.0) -> None:
        self.name = name
        self.state = state
        self.stop = threading.Event()
        self.beat_every = beat_every
        self._last_beat = 0.0
        self._last_status: tuple[str, str] | None = None

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())

    def beat(self, status: str = "healthy", detail: str = "", *, error: str | None = None, force: bool = False) -> None:
        now = time.monotonic()
        changed = (status, detail) != self._last_status
        if changed:
            log.log(logging.WARNING if status not in ("healthy", "idle") else logging.INFO,
                    "%s is %s%s", self.name, status, f": {detail}" if detail else "")
        if changed or force or error or now - self._last_beat >= self.beat_every:
            self.state.heartbeat(self.name, status, detail, os.getpid(), error=error)
            self._last_beat = now
            self._last_status = (status, detail)


class _Handler(FileSystemEventHandler):
    def __init__(self, sink: "queue.Queue[Path]") -> None:
        self.sink = sink

    def on_closed(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.sink.put(Path(os.fsdecode(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.sink.put(Path(os.fsdecode(event.dest_path)))

    def on_created(self, event: FileSystemEvent) -> None:
        path = Path(os.fsdecode(event.src_path))
        if path.is_symlink():  # a link has no close event; let the consumer decide what to do with it
            self.sink.put(path)


class FolderFeed:
    """Candidate paths in one folder, from inotify (fast path) and periodic rescans (safety net)."""

    def __init__(self, folder: Path, rescan_seconds: float) -> None:
        self.folder = folder
        self.rescan_seconds = rescan_seconds
        self.events: "queue.Queue[Path]" = queue.Queue()
        self._observer = Observer()
        self._next_rescan = 0.0
        self.last_was_rescan = False

    def __enter__(self) -> "FolderFeed":
        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(_Handler(self.events), str(self.folder), recursive=False)
        self._observer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def scan(self) -> list[Path]:
        try:
            with os.scandir(self.folder) as entries:
                names = sorted(e.name for e in entries if not e.name.startswith("."))
        except FileNotFoundError:
            return []
        return [self.folder / n for n in names]

    def wait(self, stop: threading.Event, timeout: float = 0.5) -> list[Path]:
        """What arrived, once each; when a rescan is due, everything present (``last_was_rescan``)."""
        now = time.monotonic()
        self.last_was_rescan = now >= self._next_rescan
        if self.last_was_rescan:
            self._next_rescan = now + self.rescan_seconds
            self._drain()
            return self.scan()
        deadline = min(self._next_rescan, now + timeout)
        batch: dict[Path, None] = {}
        try:
            batch[self.events.get(timeout=max(0.0, deadline - now))] = None
            while True:
                batch[self.events.get_nowait()] = None
        except queue.Empty:
            pass
        if stop.is_set():
            return []
        return list(batch)

    def _drain(self) -> None:
        try:
            while True:
                self.events.get_nowait()
        except queue.Empty:
            pass
