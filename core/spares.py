"""Atomic rewrites that recycle inodes instead of freeing them.

A rewrite by temp file + rename frees the old file's inode. ext4 without a journal (this product's
reference VM, and any ext4 mounted that way) will not hand out an inode freed in the last 60 s (360 s
while its inode-table block is dirty) and walks past every such inode on each file creation: at a
few hundred rewrites a second, creating a file went from 30 µs to over 1 ms.

So a rewrite swaps the new content in with ``renameat2(RENAME_EXCHANGE)`` (as atomic for readers
as a rename) and keeps the old inode, now under a hidden temporary name, as a *spare*. A later
write, in any folder of the vault on the same filesystem, may fill a spare and publish it instead of
creating a file (``Vault.write_atomic`` says which writes may). A spare is filled only when it has
rested ``REUSE_AFTER`` seconds, belongs to us, has no other name (the owner's hard link) and nobody
has it open (a write lease would be refused), so no reader or writer of the old version ever sees
the new bytes. Spares go at a clean exit; those of a killed process are ordinary temporaries, which
the vault's janitor removes.
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import errno
import fcntl
import os
import stat
import threading
import time

REUSE_AFTER = 2.0      # seconds a spare rests before it is filled again
MAX_SPARES = 1024      # per process; beyond this the oldest spare is freed


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o644 & ~umask


FILE_MODE = _file_mode()  # what os.open(..., 0o644) gives a new file under this process's umask

_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
_AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP)  # the system or the filesystem cannot


def renameat2(src: str | os.PathLike, dest: str | os.PathLike, flags: int) -> int:
    """renameat2(2): 0 on success, else the errno (ENOSYS where libc lacks it)."""
    if _renameat2 is None:
        return errno.ENOSYS
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dest), flags) == 0:
        return 0
    return ctypes.get_errno()


def exchange(a: str, b: str) -> bool:
    """Swap two names atomically. False when ``b`` does not exist (nothing to swap with)."""
    code = renameat2(a, b, RENAME_EXCHANGE)
    if code == 0:
        return True
    if code == errno.ENOENT and os.path.lexists(a):
        return False
    if code in UNSUPPORTED:
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
        self.fillable = True  # off where leases are unavailable: a spare's disuse cannot be proven

    def take(self) -> str | None:
        """The name of the oldest spare that has rested long enough."""
        with self._lock:
            if self.fillable and self._spares and time.monotonic() - self._spares[0][1] >= REUSE_AFTER:
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
                # O_NONBLOCK: should a FIFO have been swapped in under the name, do not wait for a reader
                fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue  # the janitor removed it
            try:
                if self._fit(fd):
                    return path, fd, os.fstat(fd).st_size
            except OSError:
                pass
            os.close(fd)
            try:
                os.unlink(path)  # not ours to reuse; whoever holds it keeps their inode
            except OSError:
                pass

    def _fit(self, fd: int) -> bool:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
            return False  # another name would change with it; another owner's file stays theirs
        try:
            if not _nobody_else_has_it_open(fd):
                return False
        except OSError:
            self.fillable = False
            return False
        if stat.S_IMODE(st.st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
        return True


def _nobody_else_has_it_open(fd: int) -> bool:
    """A write lease is granted only when no other descriptor, in any process, has the file open.
    It is released at once: a spare has no public name, so nobody new can open it meanwhile."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EBUSY):
            return False
        raise  # leases unavailable here
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return True


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
