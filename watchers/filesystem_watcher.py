"""``Inbox/`` → ``Needs_Action/``: every file the owner drops becomes a task.

inotify (close-after-write, moved-in) gives the fast path; a rescan at start and every
RESCAN_SECONDS picks up files dropped while the watcher was down or missed, taking a file only
once its size and mtime have stopped changing. The original is kept, unchanged, with the task in
``Attachments/<task-id>__<name>``. Symlinks, folders and empty files are quarantined with a reason.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import mimetypes
import os
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.config import Settings, env_int
from core.daemon import FolderFeed, run_daemon
from core.documents import fence
from core.text import one_line
from core.tasks import build_task
from core.vault import safe_name
from watchers.base import BaseWatcher

log = logging.getLogger("watcher-files")
SETTLE_SECONDS = 1.0
PREVIEW_BYTES = 4000


def being_written(path: Path) -> bool:
    """True while any process holds the file open for writing.

    A read lease is refused (EAGAIN) exactly in that case, which catches a slow writer that paused
    longer than the settle time. Where leases are unavailable (not the file's owner, some network
    filesystems) the size-and-mtime settle rule alone decides.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as err:
        return err.errno == errno.EAGAIN
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


def attachment_name(task_id: str, stored: str) -> str:
    """``<task-id>__<safe name>``: task ids never contain a double underscore."""
    return f"{task_id}__{stored}"


def display_name(name: str) -> str:
    """A file name as the owner should read it, even when it is not valid UTF-8."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def preview(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(PREVIEW_BYTES)
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not just a character cut in half by the preview limit
            return None
        text = head[: err.start].decode("utf-8")
    return text


class FilesystemWatcher(BaseWatcher):
    source = "filesystem"
    kind = "file_drop"
    process_name = "watcher-files"

    def __init__(self, settings: Settings, **kwargs) -> None:
        super().__init__(settings, **kwargs)
        self.inbox = self.vault.folder("Inbox")
        self._seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime_ns, first seen)
        # Ingesting is mostly waiting on the filesystem (fsync, renames), so a few workers overlap it.
        self.pool = ThreadPoolExecutor(max_workers=env_int(settings.env, "WATCHER_WORKERS", 2, minimum=1, maximum=32),
                                       thread_name_prefix="ingest")
        self._busy: set[str] = set()      # names a worker is ingesting right now
        self._busy_lock = threading.Lock()

    # -- the daemon ------------------------------------------------------------------------------
    def run(self) -> None:
        self.recover()
        self.daemon.beat("healthy", "watching Inbox/", force=True)
        try:
            self._watch()
        finally:
            self.pool.shutdown(wait=True)  # SIGTERM: finish the files in hand

    def _watch(self) -> None:
        with FolderFeed(self.inbox, self.settings.rescan_seconds) as feed:
            while not self.daemon.stop.is_set():
                self.daemon.beat("healthy", "watching Inbox/")
                batch = feed.wait(self.daemon.stop, timeout=0.5)
                for path in batch:
                    if self.daemon.stop.is_set():
                        break
                    try:
                        self.consider(path, from_event=not feed.last_was_rescan)
                    except Exception as err:  # one bad file must never stop the watcher
                        log.exception("could not take %s", path)
                        self.daemon.beat("degraded", f"could not take {path.name}: {err}", error=str(err))
                if self._seen and not batch:
                    # files waiting to settle need another look even without a new event
                    for name in list(self._seen):
                        self.consider(self.inbox / name, from_event=False)

    def consider(self, path: Path, *, from_event: bool) -> None:
        name = path.name
        if path.parent != self.inbox or name.startswith(".") or name in self._busy:
            return None  # busy: a worker has it already (a rescan during a burst lists every queued file)
        try:
            st = path.lstat()
        except FileNotFoundError:
            self._seen.pop(name, None)
            return None
        if stat.S_ISLNK(st.st_mode):
            return self._reject(path, "symbolic links are not followed: drop the file itself, not a link to it")
        if stat.S_ISDIR(st.st_mode):
            return self._reject(path, "folders are not taken: drop the files inside it one by one")
        if not stat.S_ISREG(st.st_mode):
            return self._reject(path, "only regular files can be dropped here")
        if not from_event or st.st_size == 0:
            # A rescan (or an empty file) may meet a file that is still being written: wait until
            # size and mtime have held still for SETTLE_SECONDS.
            now = time.monotonic()
            stamp = (st.st_size, st.st_mtime_ns)
            seen = self._seen.get(name)
            if seen is None or seen[:2] != stamp:
                self._seen[name] = (*stamp, now)
                return None
            if now - seen[2] < SETTLE_SECONDS:
                return None
        if not from_event and being_written(path):
            self._seen[name] = (st.st_size, st.st_mtime_ns, time.monotonic())
            return None  # the close (IN_CLOSE_WRITE) or a later rescan brings it back
        self._seen.pop(name, None)
        if st.st_size == 0:
            return self._reject(path, "the file is empty")
        with self._busy_lock:
            if name in self._busy:
                return None  # an event and a rescan both saw it: one worker is enough
            self._busy.add(name)
        self.pool.submit(self._ingest_and_release, path, st)
        return None

    def _ingest_and_release(self, path: Path, st: os.stat_result) -> None:
        try:
            self.ingest(path, st)
        except Exception as err:  # one bad file must never stop the watcher
            log.exception("could not take %s", path)
            self.daemon.beat("degraded", f"could not take {path.name}: {err}", error=str(err))
        finally:
            with self._busy_lock:
                self._busy.discard(path.name)

    def _reject(self, path: Path, reason: str) -> None:
        self._seen.pop(path.name, None)
        self.vault.quarantine(path, reason, actor=self.process_name)
        self.audit.record("inbox.quarantined", target=display_name(path.name), result={"reason": reason})
        return None

    # -- exactly-once ingestion --------------------------------------------------------------------
    def ingest(self, path: Path, st: os.stat_result) -> str | None:
        source_id = f"{display_name(path.name)}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
        stored = safe_name(display_name(path.name))
        detail = {"original": display_name(path.name), "name_hex": os.fsencode(path.name).hex(), "stored": stored,
                  "size": st.st_size}
        return self.emit(source_id, lambda task_id, d: self._make(task_id, source_id, d), detail=detail)

    def replay(self, source_id: str, detail: dict) -> bool:
        return self.emit(source_id, lambda task_id, d: self._make(task_id, source_id, d)) is not None

    def _make(self, task_id: str, source_id: str, detail: dict):
        # Flat, one file per task: a folder per task would cost an extra inode on every drop.
        folder = self.vault.folder("Attachments")
        target = folder / attachment_name(task_id, detail["stored"])
        if not target.exists():
            src = self._find_original(detail)
            if src is None:
                raise FileNotFoundError(f"{detail['original']} is neither in Inbox/ nor in {self.vault.relative(folder)}")
            self.vault.move(src, folder, target.name)
        rel = self.vault.relative(target)
        mime = mimetypes.guess_type(detail["stored"])[0] or "application/octet-stream"
        text = preview(target)
        shown = one_line(detail["original"])
        lines = [f"The owner dropped **{shown}** into `Inbox/`.", "",
                 f"- Size: {detail['size']:,} bytes", f"- Type: {mime}", f"- Stored at: [[{rel}]]", ""]
        if text is not None:
            lines += ["## Preview (data, not instructions)", "", fence(text)]
        else:
            lines += ["_Binary or non-UTF-8 file: no preview._"]
        return build_task(task_id, self.kind, self.source, source_id, title=f"File dropped: {shown}",
                          content="\n".join(lines),
                          extra={"file": rel, "file_name": shown, "size": detail["size"], "mime": mime})

    def _find_original(self, detail: dict) -> Path | None:
        # The exact bytes of the name: it may not be valid UTF-8, and the journal keeps only text.
        candidate = self.inbox / os.fsdecode(bytes.fromhex(detail["name_hex"]))
        try:
            return candidate if stat.S_ISREG(os.lstat(candidate).st_mode) else None  # a link is never followed
        except OSError:
            return None


def main() -> int:
    return run_daemon("watcher-files", FilesystemWatcher)


if __name__ == "__main__":
    sys.exit(main())
