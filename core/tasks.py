"""Task files: ids, creation in ``Needs_Action/``, reading with validation, status updates."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.documents import Document, iso, require_keys, utcnow, REQUIRED_TASK_KEYS
from core.text import clean_text, one_line
from core.vault import Vault, safe_name

PRIORITIES = ("high", "normal", "low")


def new_task_id(kind: str, source: str, source_id: str) -> str:
    """Unique, stable (derived from the source id, stored in the watcher journal) and sortable."""
    digest = hashlib.sha256(f"{source}\x00{source_id}".encode("utf-8")).hexdigest()[:10]
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{safe_name(kind, max_bytes=20).lower()}-{digest}"


@dataclass
class Task:
    path: Path
    doc: Document

    @property
    def id(self) -> str:
        return str(self.doc.meta["id"])

    @property
    def meta(self) -> dict[str, Any]:
        return self.doc.meta

    @property
    def title(self) -> str:
        for line in self.doc.body.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
        return str(self.meta.get("subject") or self.meta.get("type"))

    @classmethod
    def load(cls, path: Path) -> "Task":
        doc = Document.from_bytes(path.read_bytes())
        require_keys(doc.meta, REQUIRED_TASK_KEYS, "task file")
        if Path(path).stem != str(doc.meta["id"]):
            from core.documents import DocumentError
            raise DocumentError(f"the task id {doc.meta['id']!r} does not match the file name {Path(path).name!r}")
        return cls(Path(path), doc)


def build_task(task_id: str, kind: str, source: str, source_id: str, *, title: str, content: str,
               priority: str = "normal", extra: dict[str, Any] | None = None) -> Document:
    meta: dict[str, Any] = {
        "id": task_id, "type": kind, "source": source, "source_id": source_id,
        "created": iso(utcnow()), "status": "needs_action",
        "priority": priority if priority in PRIORITIES else "normal",
    }
    meta.update(_outside(extra or {}))
    return Document(meta, f"# {one_line(title) or kind}\n\n{clean_text(content).rstrip()}\n")


def _outside(value: Any) -> Any:
    """Values taken from outside (headers, names): no control characters in what we write."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {k: _outside(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_outside(v) for v in value]
    return value


def write_new_task(vault: Vault, doc: Document) -> Path:
    return vault.write_atomic(vault.folder("Needs_Action") / f"{doc.meta['id']}.md", doc.render(), exclusive=True)


def update_task(vault: Vault, path: Path, doc: Document | None = None, **changes: Any) -> Document:
    """Rewrite a task's (or request's) frontmatter keys in place; the owner's body text is kept.

    Atomic, but not fsynced: a status rewrite only mirrors the state store, so one lost to a power
    cut leaves the previous version, and resuming the task writes it again. (fsync costs 1-2 ms
    here and serialises every writer on the machine.)"""
    doc = doc or Document.from_bytes(path.read_bytes())  # callers holding the parsed file pass it
    doc.meta.update(changes)
    vault.write_atomic(path, doc.render(), sync=False)
    return doc
