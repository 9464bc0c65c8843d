"""How numbers and outside text are written in the note: money, hours, and names made inert (a
merchant, a task title or a failure reason cannot open a link, a table cell or an HTML tag)."""
from __future__ import annotations

import re

from core.text import one_line

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~=^$])")


def money(value: float, currency: str = "") -> str:
    return f"{value:,.2f} {currency}".strip()


def hours(value: float) -> str:
    if value >= 48:
        return f"{value / 24:.1f} days"
    return f"{value:.1f} h"


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def inert(text: object, limit: int = 160) -> str:
    """Outside text as plain Markdown text: one line, cut to ``limit``, its markup characters escaped."""
    line = one_line(text)
    if len(line) > limit:
        line = line[:limit - 1].rstrip() + "…"
    return _SPECIAL.sub(r"\\\1", line)
