"""Cross-process locks per task, so the loop and the executor never update one task at once.
Striped over a fixed set of lock files: nothing to clean up, no races on deleting a lock file."""
from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from pathlib import Path
from typing import Iterator

STRIPES = 64


@contextlib.contextmanager
def task_lock(state_dir: Path, task_id: str) -> Iterator[None]:
    folder = Path(state_dir) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stripe-{zlib.crc32(task_id.encode()) % STRIPES:02d}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if the holder is killed
        yield
    finally:
        os.close(fd)
