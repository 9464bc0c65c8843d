"""A fast reader of a few top-level frontmatter keys, for scanning thousands of task files.

A full YAML parse costs about half a millisecond per file here, which over 10,000 completed tasks
alone would spend the briefing's whole budget. Our files' frontmatter is written by
``Document.render`` (yaml.dump): flat ``key: value`` lines, plain or single-quoted scalars, long
plain scalars folded onto indented lines. This reads exactly that subset and hands anything else
(double quotes, block scalars, lists, flow collections) to the real YAML parser, so a value is never
guessed. Only the keys asked for are looked at.
"""
from __future__ import annotations

from typing import Any, Iterable

from core.documents import Document, DocumentError

_NULLS = {"", "~", "null", "Null", "NULL"}
_COMPLEX_START = frozenset("\"|>{[&*!%@`")  # a value starting so is YAML beyond flat scalars


class Frontmatter:
    __slots__ = ("fields", "body_at")

    def __init__(self, fields: dict[str, Any], body_at: int) -> None:
        self.fields = fields      # the wanted keys that are present (strings, or YAML's values on the slow path)
        self.body_at = body_at    # where the body starts in the text


def read(text: str, wanted: Iterable[str]) -> Frontmatter | None:
    """The ``wanted`` keys of ``text``'s frontmatter, or None when it has none (or it is broken)."""
    if not text.startswith("---\n"):
        return None
    end = text.find("\n---", 3)
    while end != -1 and text[end + 4:end + 5] not in ("\n", ""):
        end = text.find("\n---", end + 4)  # a line that merely starts with '---' does not close it
    if end == -1:
        return None
    body_at = min(len(text), end + 5)
    keys = wanted if isinstance(wanted, (set, frozenset)) else set(wanted)
    fields: dict[str, Any] = {}
    lines = text[4:end].split("\n")
    count = len(lines)
    i = 0
    while i < count:
        line = lines[i]
        i += 1
        if not line or line[0] in " \t-#":
            continue
        if line[0] in "'\"?":  # a quoted (or complex) key, as yaml.dump writes 'no' or 'on': beyond the subset
            return _slow(text, keys, body_at)
        key, sep, rest = line.partition(":")
        if not sep or key not in keys or (rest and rest[0] != " "):
            continue
        value = rest.strip(" \t")  # YAML's whitespace only: a no-break space is part of the value
        folded = []
        while i < count and lines[i][:1] in (" ", "\t"):
            folded.append(lines[i].strip(" \t"))
            i += 1
        first = value[:1]
        if first in _COMPLEX_START or (not value and (folded or (i < count and lines[i][:1] == "-"))):
            return _slow(text, keys, body_at)
        if first == "'":
            if folded or len(value) < 2 or not value.endswith("'"):
                return _slow(text, keys, body_at)
            fields[key] = value[1:-1].replace("''", "'")
            continue
        if " #" in value:
            value = value.split(" #", 1)[0].rstrip(" \t")  # a comment after a plain scalar
        if folded:
            value = " ".join([value, *(part for part in folded if part)])
        fields[key] = None if value in _NULLS else value
    return Frontmatter(fields, body_at)


def _slow(text: str, keys: set[str] | frozenset[str], body_at: int) -> Frontmatter | None:
    try:
        meta = Document.parse(text).meta
    except DocumentError:
        return None
    return Frontmatter({k: v for k, v in meta.items() if k in keys}, body_at)
