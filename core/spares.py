"""Atomic rewrites that recycle inodes instead of freeing them.

A rewrite by temp file + rename frees the old file's inode. ext4 without a journal (this product's
reference VM, and any ext4 mounted that way) will not hand out an inode freed in the last few
seconds, or while its inode-table block is dirty, and walks past every such inode on each file
creation: at a few hundred rewrites a second, creating a file went from 30 µs to over 1 ms.

So a rewrite swaps the new content in with ``renameat2(RENAME_EXCHANGE)`` (as atomic for readers
as a rename) and keeps the old inode, now under a hidden temporary name, as a *spare*. A later
write, in any folder of the vault, fills a spare and publishes it instead of creating a file. A
spare is reused only after ``REUSE_AFTER`` seconds, so a reader that opened the old version has
long finished reading it, and never when it has another hard link (the owner's copy elsewhere).
Spares left by a process that died are ordinary temporaries: the vault's janitor removes them.
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import errno
import os
import stat
import threading
import time

REUSE_AFTER = 2.0      # seconds a spare rests before it is filled again
MAX_SPARES = 1024      # per process; beyond this the oldest spare is freed

_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a: str, b: str) -> bool:
    """Swap two names atomically. False when ``b`` does not exist (nothing to swap with)."""
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.ENOENT and os.path.lexists(a):
        return False
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        raise Unsupported(code, os.strerror(code), b)
    raise OSError(code, os.strerror(code), b)


class Unsupported(OSError):
    """This system or filesystem cannot exchange names."""


class SparePool:
    """One process's spare inodes: (path, time it became a spare), oldest first."""

    def __init__(self) -> None:
        self._spares: collections.deque[tuple[str, float]] = collections.deque()
        self._lock = threading.Lock()
        self.enabled = _renameat2 is not None  # off for good once the filesystem says it cannot

    def take(self) -> str | None:
        """The name of the oldest spare that has rested long enough."""
        with self._lock:
            if self._spares and time.monotonic() - self._spares[0][1] >= REUSE_AFTER:
                return self._spares.popleft()[0]
        return None

    def give(self, path: str) -> None:
        with self._lock:
            self._spares.append((path, time.monotonic()))
            extra = self._spares.popleft()[0] if len(self._spares) > MAX_SPARES else None
        if extra is not None:
            try:
                os.unlink(extra)
            except FileNotFoundError:
                pass

    def discard_all(self) -> None:
        """At a clean exit: the spares go (after a kill, the vault's janitor removes them)."""
        with self._lock:
            names = [name for name, _ in self._spares]
            self._spares.clear()
        for name in names:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass

    def open_rested(self) -> tuple[str, int, int] | None:
        """A rested spare opened for writing: (name, fd, its current size), or None."""
        while True:
            path = self.take()
            if path is None:
                return None
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue  # the janitor removed it
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                if stat.S_IMODE(st.st_mode) != 0o644:
                    os.fchmod(fd, 0o644)
                return path, fd, st.st_size
            os.close(fd)  # linked elsewhere: writing it would change that other name's content


def write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


_pools: dict[tuple[int, str], SparePool] = {}
_pools_lock = threading.Lock()


def pool(root: str) -> SparePool:
    """This process's pool for the vault at ``root`` (a forked child starts its own)."""
    key = (os.getpid(), root)
    with _pools_lock:
        found = _pools.get(key)
        if found is None:
            found = _pools[key] = SparePool()
        return found


@atexit.register
def _discard_spares() -> None:
    for (pid, _), found in list(_pools.items()):
        if pid == os.getpid():
            found.discard_all()
