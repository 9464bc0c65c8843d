"""Markdown files with YAML frontmatter: task files, approval requests, plans.

Round-trips keep what the owner wrote: the body is kept byte for byte and only the keys we set
change. Parsing is strict; a caller that gets ``DocumentError`` quarantines the file with its reason.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from core.errors import ValidationError
from core.text import encodable

REQUIRED_TASK_KEYS = ("id", "type", "source", "created", "status")
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024


class DocumentError(ValidationError):
    """The file is not a readable Markdown document with YAML frontmatter."""


# libyaml's C emitter and parser when available: YAML is most of the CPU a task costs.
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR, _INT, _BOOL, _NULL = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
                             "tag:yaml.org,2002:null")
_implicit_tags: dict[str, str] = {}  # plain scalar text -> the tag it would resolve to


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    """The safe dumper with shortcuts for what frontmatter is made of. The output is exactly the
    safe dumper's: the common scalar types skip the generic dispatch and come out as their own
    representers make them, and the emitter's question "what would this text resolve to" is
    answered from a cache (the answer depends only on the text: no path resolvers are registered)."""

    def represent_data(self, data: Any) -> yaml.Node:
        kind = type(data)
        if kind is str:
            style = "|" if "\n" in data else self.default_style
            return yaml.ScalarNode(_STR, data, style=style)
        if kind is int:
            return yaml.ScalarNode(_INT, str(data), style=self.default_style)
        if kind is bool:
            return yaml.ScalarNode(_BOOL, "true" if data else "false", style=self.default_style)
        if data is None:
            return yaml.ScalarNode(_NULL, "null", style=self.default_style)
        return super().represent_data(data)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and not self.yaml_path_resolvers:
            if not implicit[0]:
                return self.DEFAULT_SCALAR_TAG
            if not implicit[1]:
                tag = _implicit_tags.get(value)
                if tag is None:
                    tag = super().resolve(kind, value, implicit)
                    if len(_implicit_tags) >= 4096:
                        _implicit_tags.clear()
                    _implicit_tags[value] = tag
                return tag
        return super().resolve(kind, value, implicit)


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encodable(v) for v in value]
    return value


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    text = str(value).strip().replace("Z", "+00:00")
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


@dataclass
class Document:
    meta: dict[str, Any]
    body: str = ""
    raw_front: str | None = field(default=None, repr=False)

    def render(self) -> str:
        """The file's text. Whatever it holds, ``parse`` reads it back: YAML escapes what it must in
        the frontmatter, and what no file of ours may contain (NUL, which marks a file as binary,
        and lone surrogates, which are not Unicode) is taken out on the way."""
        front = yaml.dump(_encodable(self.meta), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        return f"---\n{front}---\n{encodable(self.body).replace(chr(0), '')}"

    @classmethod
    def parse(cls, text: str) -> "Document":
        if not text.startswith("---"):
            raise DocumentError("no YAML frontmatter: the file must start with a line '---'")
        lines = text.split("\n")
        if lines[0].rstrip() != "---":
            raise DocumentError("no YAML frontmatter: the first line must be exactly '---'")
        for end, line in enumerate(lines[1:], start=1):
            # At the start of the line only: an indented '---' is the text of a YAML block scalar.
            if line.rstrip() == "---":
                break
        else:
            raise DocumentError("the YAML frontmatter is not closed by a line '---'")
        front = "\n".join(lines[1:end])
        try:
            meta = yaml.load(front, Loader=_Loader)  # safe: the C twin of SafeLoader
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 2}" if mark is not None else ""
            raise DocumentError(f"the YAML frontmatter is invalid{where}: {getattr(err, 'problem', err)}") from err
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise DocumentError("the YAML frontmatter must be a mapping of keys to values")
        return cls(meta=meta, body="\n".join(lines[end + 1:]), raw_front=front)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Document":
        if len(data) > MAX_DOCUMENT_BYTES:
            raise DocumentError(f"the file is {len(data)} bytes; task files are limited to {MAX_DOCUMENT_BYTES}")
        if b"\x00" in data:
            raise DocumentError("the file is binary (it contains NUL bytes), not Markdown")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DocumentError(f"the file is not valid UTF-8 (byte {err.start})") from err
        return cls.parse(text.lstrip("\ufeff"))


def fence(text: str, info: str = "text") -> str:
    """A code fence longer than any run of backticks in ``text``, so outside content (an email, a
    dropped file) cannot close it early and pose as our own Markdown or instructions."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def require_keys(meta: dict[str, Any], keys: tuple[str, ...], kind: str) -> None:
    missing = [k for k in keys if meta.get(k) in (None, "")]
    if missing:
        raise DocumentError(f"the {kind} is missing required key(s): {', '.join(missing)}")


def _outside_fences(lines: list[str]):  # noqa: ANN202 - yields (index, line)
    """The lines that are not inside a fenced code block: a heading quoted inside one (an HTML part
    shown to the owner, a message's own text) is not ours."""
    fence: str | None = None
    for i, line in enumerate(lines):
        run = re.match(r"^(`{3,})", line)
        if fence is None and run:
            fence = run.group(1)
            continue
        if fence is not None:
            if line.strip() and set(line.strip()) == {"`"} and len(line.strip()) >= len(fence):
                fence = None
            continue
        yield i, line


def section(body: str, title: str, end_prefix: str) -> str | None:
    """The text between the line ``## title`` and the LAST line starting with ``end_prefix``.

    Everything in between belongs to the section, headings included: a message may contain
    Markdown headings, and cutting it at the first one would send half of what the owner approved.
    None when either boundary is missing, so a caller refuses rather than guesses."""
    lines = body.split("\n")
    start = next((i + 1 for i, line in _outside_fences(lines) if line.strip().lower() == f"## {title}".lower()), None)
    if start is None:
        return None
    end = next((i for i in range(len(lines) - 1, start - 1, -1) if lines[i].startswith(end_prefix)), None)
    if end is None:
        return None
    return "\n".join(lines[start:end]).strip("\n")


APPROVAL_FOOTER_PREFIX = "Move this file to Approved/"
