"""One pass over the vault's task folders: each task's frontmatter (the structured fields the
briefing uses) and its text, for the work section, the deadlines and the subscription audit."""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from core.documents import parse_time
from core.vault import Vault
from briefing import frontmatter
from briefing.merchants import Words

# The folders a task lives in while it is open, and when it has ended.
OPEN_FOLDERS = ("Needs_Action", "In_Progress")
ENDED_FOLDERS = ("Completed", "Failed")
# Frontmatter keys that name who or what a task is about: searched before the body.
STRUCTURED = ("subject", "title", "from", "to", "cc", "sender", "chat", "merchant", "vendor", "counterparty",
              "partner", "file", "url", "platform", "source")
WANTED = frozenset(("id", "type", "created", "finished", "status", "outcome", "due", "reason", *STRUCTURED))
NOT_WORK = {"approval_request", "briefing", "quarantine"}  # files in the task folders that are not tasks


@dataclass
class TaskRecord:
    folder: str                  # Completed, Failed, Needs_Action, In_Progress
    path: str                    # vault-relative
    fields: dict[str, Any]
    text: str
    body_at: int
    created: dt.datetime | None
    finished: dt.datetime | None

    @property
    def id(self) -> str:
        return str(self.fields.get("id") or Path(self.path).stem)

    @property
    def type(self) -> str:
        return str(self.fields.get("type") or "unknown")

    @property
    def is_work(self) -> bool:
        return self.type not in NOT_WORK

    @property
    def title(self) -> str:
        """The first heading of the body, else the subject."""
        body = self.text[self.body_at:self.body_at + 4000]
        at = 0 if body.startswith("# ") else body.find("\n# ") + 1
        if at == 0 and not body.startswith("# "):
            return str(self.fields.get("subject") or self.fields.get("title") or self.type)
        end = body.find("\n", at)
        return body[at + 2:end if end != -1 else None].strip()


def _moment(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        return None


def _markdown_files(folder: Path) -> Iterator[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".md") and not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    yield entry
    except (FileNotFoundError, NotADirectoryError):
        return


def _folders(vault: Vault, names: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    for name in names:
        base = vault.root / name
        if name == "In_Progress":  # one sub-folder per agent
            try:
                agents = sorted(e.path for e in os.scandir(base) if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                agents = []
            for agent in agents:
                yield name, Path(agent)
        else:
            yield name, base


def scan(vault: Vault, names: tuple[str, ...] = (*OPEN_FOLDERS, *ENDED_FOLDERS), *,
         since: dt.datetime | None = None) -> list[TaskRecord]:
    """Every readable task file of these folders; a file that cannot be read is left out (the
    watchers quarantine broken files: the briefing only reports).

    ``since``: a task that ended is last written when it is finished (its ``finished`` is set, then
    it is moved, and a move keeps the time), so a file in Completed/ or Failed/ last modified before
    ``since`` finished before it and is not read: the briefing costs what the recent weeks hold, not
    the whole history of the vault."""
    records = []
    root = len(str(vault.root)) + 1
    oldest = since.timestamp() if since is not None else None
    for folder, path in _folders(vault, names):
        ended = folder in ENDED_FOLDERS
        for entry in _markdown_files(path):
            try:
                if ended and oldest is not None and entry.stat(follow_symlinks=False).st_mtime < oldest:
                    continue
                with open(entry.path, "rb") as fh:
                    text = fh.read(2 * 1024 * 1024).decode("utf-8", "replace")
            except OSError:
                continue
            front = frontmatter.read(text, WANTED)
            if front is None:
                continue
            fields = front.fields
            records.append(TaskRecord(folder, entry.path[root:], fields, text, front.body_at,
                                      _moment(fields.get("created")), _moment(fields.get("finished"))))
    return records


def audit_mentions(vault: Vault, first: dt.date, last: dt.date, words: Words, *, checks: int = 200
                   ) -> dict[str, str]:
    """Which of ``words`` appear in the ``target`` of an audit record dated ``first``..``last`` (a
    login, a visit, a call to a service), with the first such record as evidence. The raw text is
    searched first and only the lines it hits are parsed (at most ``checks`` a word and day), so a
    large log costs a scan."""
    found: dict[str, str] = {}
    day = first
    while day <= last and len(found) < len(words.words):
        path = vault.root / "Logs" / f"{day.isoformat()}.jsonl"
        day += dt.timedelta(days=1)
        try:
            text = path.read_text("utf-8", "replace").lower()  # offsets are the lowered text's
        except OSError:
            continue
        for name, word in words.words.items():
            if name in found or word not in text:
                continue
            for n, at in enumerate(words.at(text, word)):
                if n >= checks:
                    break
                start, end = text.rfind("\n", 0, at) + 1, text.find("\n", at)
                try:
                    record = json.loads(text[start:end if end != -1 else None])
                except ValueError:
                    continue
                target = str(record.get("target") or "") if isinstance(record, dict) else ""
                if word in target and next(words.at(target, word), None) is not None:
                    found[name] = f"Logs/{path.name}: {record.get('action_type', 'action')} → {target[:80]}"
                    break
    return found
