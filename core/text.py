"""Text from outside (email subjects and bodies, file names, messages) made safe before it becomes
Markdown or YAML in the vault: nothing in it can make the product's own files unreadable, break a
heading or a frontmatter, or drive a terminal that prints the file."""
from __future__ import annotations

import re

# C0 and C1 controls except tab and newline, DEL, Unicode line/paragraph separators, the BOM.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
# Bidirectional overrides and isolates: they make a name read differently from what it is
# ("invoice\u202efdp.exe"); a one-line field has no use for them.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_SPACES = re.compile(r"\s+")


def encodable(text: str) -> str:
    """``text`` with lone surrogates (from a file name that is not UTF-8, or a JSON escape) replaced,
    so it can be written as UTF-8."""
    return _SURROGATES.sub("\ufffd", text)


def clean_text(value: object) -> str:
    """Multi-line outside text: line endings as ``\\n``, no control characters but tab and newline."""
    text = encodable(str(value or "")).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def one_line(value: object) -> str:
    """A title, a name, a header value: one line, no controls, runs of white space as one space."""
    return _SPACES.sub(" ", _BIDI.sub("", clean_text(value).replace("\n", " "))).strip()
