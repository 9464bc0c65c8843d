"""The vault on disk: folders, atomic writes, claim-by-move, quarantine, safe names.

Every write goes to a temporary name created with O_EXCL in the destination folder, is fsynced unless
it only mirrors the state store, and is published with one rename (the Maildir habit), so no reader
ever sees half a file. Every move is one rename, so exactly
one process wins a claim. Nothing here touches a path outside the vault.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import itertools
import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from core.documents import Document
from core.text import one_line


FOLDERS = (
    "Inbox", "Needs_Action", "In_Progress", "Plans", "Pending_Approval", "Approved", "Rejected",
    "Completed", "Failed", "Quarantine", "Logs", "Briefings", "Social_Media_Summaries",
    "Bank_Transactions", "Accounting", "Documents", "Attachments", "Scheduled",
)
# Folders a task file can live in, in the order a lookup should try them.
TASK_FOLDERS = ("Needs_Action", "In_Progress", "Completed", "Failed", "Quarantine")
TMP_PREFIX = ".tmp-"
# Written into a vault that lacks them, never over the owner's own (DESIGN §3).
DEFAULTS = Path(__file__).resolve().parent / "defaults"
DEFAULT_FILES = ("Company_Handbook.md", "Business_Goals.md")
DASHBOARD_PLACEHOLDER = ("# AI Employee — Dashboard\n\nThe agent interface is not running yet. Start the suite "
                         "(`./scripts/start.sh`); this page then updates itself every few seconds.\n")
_counter = itertools.count()
_counter_lock = threading.Lock()
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)
MAX_NAME_BYTES = 120


_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
_AT_FDCWD, RENAME_NOREPLACE = -100, 1
UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP)  # the system or the filesystem cannot


class OutsideVaultError(ValueError):
    """A path escaped the vault (``..``, an absolute name, or a symlink pointing outside)."""


def unique_suffix() -> str:
    """Unique without coordination: time, microseconds, pid, counter."""
    with _counter_lock:
        n = next(_counter)
    return f"{time.time_ns() // 1000:x}{os.getpid():x}{n:x}"


def safe_name(raw: str, *, default: str = "file", max_bytes: int = MAX_NAME_BYTES) -> str:
    """Turn an outside name (an email subject, a dropped file's name) into one safe path component."""
    text = unicodedata.normalize("NFKC", raw).replace("/", " ").replace("\\", " ").replace("\x00", "")
    text = _UNSAFE.sub("_", text).strip(" ._")
    text = re.sub(r"[ _]{2,}", "_", text)
    if not text:
        text = default
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:
        text = encoded[:max_bytes].decode("utf-8", "ignore").rstrip(" ._") or default
    return text


def slug(raw: str, max_len: int = 40) -> str:
    return safe_name(raw, default="item", max_bytes=max_len).replace(" ", "_")


def renameat2(src: str | os.PathLike, dest: str | os.PathLike, flags: int) -> int:
    """renameat2(2): 0 on success, else the errno (ENOSYS where libc lacks it)."""
    if _renameat2 is None:
        return errno.ENOSYS
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dest), flags) == 0:
        return 0
    return ctypes.get_errno()


def write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=4096)
def _resolves_inside(parent: str, root: str) -> bool:
    """Whether ``parent`` (a folder) still lies inside ``root`` once symlinks are followed.
    Cached per folder: the vault's folders do not turn into links while we run, and resolving
    costs a system call per path component on every write."""
    real_parent, real_root = Path(parent).resolve(), Path(root).resolve()
    return real_parent == real_root or real_root in real_parent.parents


def rename_noreplace(src: Path, dest: Path) -> None:
    """Publish ``src`` as ``dest`` with one rename that refuses to replace an existing file.

    renameat2(RENAME_NOREPLACE) is atomic and shows up as IN_MOVED_TO, so watchers of the folder
    take the file at once; link+unlink is the fallback where the filesystem lacks it.
    """
    code = renameat2(src, dest, RENAME_NOREPLACE)
    if code == 0:
        return
    if code == errno.EEXIST:
        raise FileExistsError(code, os.strerror(code), str(dest))
    if code not in UNSUPPORTED:
        raise OSError(code, os.strerror(code), str(dest))
    os.link(src, dest)
    os.unlink(src)


@dataclass(frozen=True)
class Vault:
    root: Path
    durable: bool = True  # fsync what we publish (content always; the folder for new files)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(os.path.abspath(self.root)))
        object.__setattr__(self, "_root_str", str(self.root))

    # -- layout ---------------------------------------------------------------------------------
    def ensure_layout(self) -> None:
        """The folders, and the shipped handbook and goals where the vault has none: any new or
        existing folder can be the vault, and it works from the first start."""
        for name in FOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        files = {name: (DEFAULTS / name).read_bytes for name in DEFAULT_FILES}
        files["Dashboard.md"] = lambda: DASHBOARD_PLACEHOLDER.encode()  # rewritten by the agent interface
        for name, content in files.items():
            path = self.root / name
            if not path.exists() and not path.is_symlink():
                try:
                    self.write_atomic(path, content(), exclusive=True)
                except FileExistsError:
                    pass  # another process of the suite wrote it first

    def folder(self, name: str, *sub: str) -> Path:
        path = self.root.joinpath(name, *sub)
        self.check_inside(path)
        return path

    def check_inside(self, path: Path) -> Path:
        """Defence in depth: refuse anything whose lexical or resolved location leaves the vault."""
        absolute = os.path.abspath(path)
        root = self._root_str
        if absolute != root and not absolute.startswith(root + os.sep):
            raise OutsideVaultError(f"{path} is outside the vault")
        if not _resolves_inside(os.path.dirname(absolute), root):
            raise OutsideVaultError(f"{path} resolves outside the vault")
        if isinstance(path, Path) and str(path) == absolute:
            return path  # already in canonical form: no need to build it again
        return Path(absolute)

    def relative(self, path: Path) -> str:
        return Path(os.path.abspath(path)).relative_to(self.root).as_posix()

    # -- writing --------------------------------------------------------------------------------
    def write_atomic(self, path: Path, data: bytes | str, *, exclusive: bool = False, sync: bool = True) -> Path:
        """Publish ``data`` at ``path`` with one rename. ``exclusive`` refuses to replace a file.

        ``sync=False``: not fsynced (a status rewrite or a view that only mirrors the state store):
        still atomic, but a power cut may roll it back to the previous version."""
        path = self.check_inside(path)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        tmp = os.path.join(os.path.dirname(path), f"{TMP_PREFIX}{unique_suffix()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            try:
                write_all(fd, payload)
                if self.durable and sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if exclusive:
                rename_noreplace(tmp, path)
            else:
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.durable and exclusive:
            # A new file must survive a power cut once we report it written (the watcher's journal
            # moves on); a rewrite that is lost leaves the previous version, which is consistent.
            fsync_dir(os.path.dirname(path))
        return path

    def move(self, src: Path, dest_dir: Path, name: str | None = None) -> Path:
        """Move with one rename. Raises FileNotFoundError when another process won the race."""
        src = self.check_inside(src)
        dest = self.check_inside(dest_dir / (name or src.name))
        try:
            os.rename(src, dest)
        except FileNotFoundError:
            if not src.exists() and not src.is_symlink():
                raise  # another process took it first
            dest_dir.mkdir(parents=True, exist_ok=True)
            os.rename(src, dest)
        # No folder fsync: a move lost to a power cut leaves the file where it was, and every
        # consumer resumes from there (the action ledger keeps a repeat from acting twice).
        return dest

    def claim(self, src: Path, dest_dir: Path) -> Path | None:
        """Claim by rename: the one process whose rename succeeds owns the file; others get None."""
        try:
            return self.move(src, dest_dir)
        except FileNotFoundError:
            return None

    def free_name(self, folder: Path, name: str) -> Path:
        """``name`` in ``folder``, or ``stem-<n>.ext`` if taken: never overwrite the owner's files."""
        candidate = folder / name
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        n = 1
        while candidate.exists() or candidate.is_symlink():
            n += 1
            candidate = folder / (f"{stem}-{n}.{ext}" if dot else f"{stem}-{n}")
        return candidate

    def quarantine(self, src: Path, reason: str, *, actor: str) -> Path:
        """Move an unreadable input aside with a sibling ``.reason.md``; nothing is deleted."""
        folder = self.folder("Quarantine")
        folder.mkdir(parents=True, exist_ok=True)
        dest = self.free_name(folder, safe_name(src.name))
        if src.is_symlink():
            # Never follow a link: move the link itself, which keeps its target untouched.
            os.rename(src, dest)
        else:
            dest = self.move(src, folder, dest.name)
        note = Document({"type": "quarantine", "file": dest.name, "original": self.relative(src), "actor": actor,
                         "quarantined": time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())},
                        f"# Quarantined: {one_line(dest.name)}\n\n**Why:** {one_line(reason)}\n\n"
                        "Nothing was deleted. Fix the file and drop it into `Inbox/` again, or delete both files.\n"
                        ).render()
        self.write_atomic(folder / f"{dest.name}.reason.md", note)
        return dest

    # -- lookups --------------------------------------------------------------------------------
    def find_task(self, task_id: str) -> Path | None:
        if not task_id or task_id != safe_name(task_id) or task_id.startswith("."):
            return None  # not a name we could have given a task file: never glob or join it
        name = f"{task_id}.md"
        for folder in TASK_FOLDERS:
            base = os.path.join(self._root_str, folder)
            if folder == "In_Progress":
                try:
                    agents = [e.path for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
                except FileNotFoundError:
                    agents = []
                for agent in agents:
                    if os.path.exists(os.path.join(agent, name)):
                        return Path(agent) / name
            elif os.path.exists(os.path.join(base, name)):
                return Path(base) / name
        return None

    def markdown_files(self, folder: Path) -> list[Path]:
        """Visible Markdown files of a folder, oldest name first (ids sort by time)."""
        try:
            entries = os.scandir(folder)
        except FileNotFoundError:
            return []
        with entries:
            names = sorted(e.name for e in entries if e.name.endswith(".md") and not e.name.startswith("."))
        return [folder / n for n in names]

    def remove_stale_temporaries(self, older_than: float = 3600.0) -> int:
        """Janitor: a temporary left by a process killed mid-write is never published; drop it after
        a while. Only our own folders: Inbox/ belongs to the owner's tools."""
        folders = [self.root] + [self.root / name for name in FOLDERS if name != "Inbox"]
        folders += [p for p in (self.root / "In_Progress").glob("*/") if not p.is_symlink()]
        removed = 0
        now = time.time()
        for folder in folders:
            for entry in folder.glob(f"{TMP_PREFIX}*"):
                try:
                    if not entry.is_symlink() and entry.is_file() and now - entry.stat().st_mtime > older_than:
                        entry.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

