"""Cross-process locks per task, so the loop and the executor never update one task at once.
Striped over a fixed set of lock files: nothing to clean up, no races on deleting a lock file."""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import zlib
from pathlib import Path
from typing import Iterator

STRIPES = 64
ITEM_STRIPES = 16  # held only while an item becomes a task; fewer files open per thread


_local = threading.local()


def _stripe_fd(state_dir: Path, stripe: int, kind: str = "stripe") -> int:
    """One open lock file per stripe and thread: flock excludes other open files, so threads of
    one process exclude each other as well as other processes."""
    cache = getattr(_local, "fds", None)
    if cache is None:
        cache = _local.fds = {}
    key = (str(state_dir), kind, stripe)
    fd = cache.get(key)
    if fd is None:
        folder = Path(state_dir) / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        fd = cache[key] = os.open(folder / f"{kind}-{stripe:02d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    return fd


def stripe_of(task_id: str) -> int:
    return zlib.crc32(task_id.encode()) % STRIPES


@contextlib.contextmanager
def task_lock(state_dir: Path, task_id: str) -> Iterator[None]:
    with _striped(state_dir, "stripe", task_id):
        yield


@contextlib.contextmanager
def item_lock(state_dir: Path, source: str, source_id: str) -> Iterator[None]:
    """One incoming item (a message, a file) of a source, while it becomes a task. Its own stripes, so
    that a task lock taken inside it can never be the same flock (which would release it early)."""
    with _striped(state_dir, "item", f"{source}\0{source_id}", ITEM_STRIPES):
        yield


@contextlib.contextmanager
def _striped(state_dir: Path, kind: str, name: str, stripes: int = STRIPES) -> Iterator[None]:
    fd = _stripe_fd(state_dir, zlib.crc32(name.encode()) % stripes, kind)
    fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if the holder is killed
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
