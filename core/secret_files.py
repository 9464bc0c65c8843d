"""Credential files (OAuth tokens): JSON the owner never has to see, mode 0600 from the first byte."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_secret_file(path: Path, text: str) -> None:
    """Publish ``text`` at ``path`` atomically with mode 0600: a crash leaves the old or the new file.

    mkstemp creates the file 0600 and os.replace publishes that inode, so the secret is never readable by
    others, not even for a moment. The rename itself is made durable too: a platform that rotates refresh
    tokens (X) has spent the old one once a refresh succeeded, so a power cut must not bring it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
