"""Value parsers, built once per file: the amounts, dates and texts of a column, each distinct cell parsed once."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from operator import methodcaller
from typing import Any, Callable, Sequence

from core.text import one_line
from odoo_integration.bank_files.mapping import ColumnMapping

NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_SYMBOLS = "£$€¥₹ \u00a0\u202f"
ZERO = Decimal(0)


def _amount_parser(mapping: ColumnMapping) -> Callable[[str], Decimal | None]:
    drop: dict[int, str | None] = {ord(ch): None for ch in _SYMBOLS + mapping.thousands}
    drop[ord(mapping.decimal)] = "."

    def parse(text: str) -> Decimal | None:
        value = text.strip()
        if not value:
            return None
        negative = False
        if value[0] == "(" and value[-1] == ")":         # accountants' negative
            negative, value = True, value[1:-1]
        elif value[-1] == "-":                            # "12,50-", as some German exports write it
            negative, value = True, value[:-1]
        value = value.translate(drop)
        if not NUMBER.fullmatch(value):
            raise ValueError(f"amount {text.strip()!r} is not a number")
        return -Decimal(value) if negative else Decimal(value)

    return parse


def date_parser(formats: Sequence[str]) -> Callable[[str], date]:
    """Each format's date part is parsed once per distinct string; a time of day after it is cut off first, so
    100,000 distinct timestamps still share a few hundred dates."""
    plans = []
    for fmt in formats:
        cut = min((fmt.find(d) for d in ("%H", "%I") if d in fmt), default=-1)
        if cut > 0:
            sep, date_fmt = fmt[cut - 1], fmt[:cut - 1]
            plans.append((date_fmt, sep, date_fmt.count(sep) + 1, {}))
        else:
            plans.append((fmt, "", 0, {}))

    def parse(text: str) -> date:
        text = text.strip()
        for date_fmt, sep, parts, cache in plans:
            part = sep.join(text.split(sep, parts)[:parts]) if sep else text
            found = cache.get(part)
            if found is None:
                try:
                    found = datetime.strptime(part, date_fmt).date()
                except ValueError:
                    continue
                cache[part] = found
            return found
        raise ValueError(f"date {text!r} does not match {' or '.join(formats)}")

    return parse


def column_values(cells: Sequence[str], parse: Callable[[str], Any]) -> tuple[list, dict[str, str]]:
    """``parse`` applied once per distinct cell (a column repeats itself: dates, currencies): the values, None
    where a cell failed, and why each failed cell failed."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for cell in set(cells):
        try:
            values[cell] = parse(cell)
        except ValueError as err:
            values[cell], errors[cell] = None, str(err)
    return list(map(values.__getitem__, cells)), errors


def amount_values(cells: Sequence[str], mapping: ColumnMapping) -> tuple[list, dict[str, str]]:
    """Amounts of a column. The usual case runs in C: the separators replaced and one Decimal() per distinct cell
    (per cell for a column of balances, distinct on every row); a column with anything unusual ("(12.50)",
    "12,50-", "n/a", "1e5") is parsed cell by cell with the checks of _amount_parser."""
    distinct = set(cells)
    direct = "" not in distinct and len(distinct) * 2 > len(cells)
    keys = list(cells) if direct else [c for c in distinct if c]
    joined = "".join(distinct)
    texts = keys
    for old, new in [(ch, "") for ch in _SYMBOLS + mapping.thousands if ch in joined] + \
            ([(mapping.decimal, ".")] if mapping.decimal != "." and mapping.decimal in joined else []):
        texts = [text.replace(old, new) for text in texts]
    try:
        if any(ch in joined for ch in "eE_"):   # Decimal() takes "1e5" and "1_000"; no bank writes either
            raise InvalidOperation
        numbers = list(map(Decimal, texts))
        if not all(map(Decimal.is_finite, numbers)):
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        return column_values(cells, _amount_parser(mapping))
    if direct:
        return numbers, {}
    values: dict[str, Decimal | None] = dict(zip(keys, numbers))
    values[""] = None
    return list(map(values.__getitem__, cells)), {}


def clean_texts(cells: Sequence[str], prefix: str = "", *, few: bool = False) -> list[str]:
    """Text cells stripped and made safe. ``few``: a column of a handful of values (account, currency) is
    cleaned once per distinct value."""
    if few:
        keys = list(set(cells))
        return list(map(dict(zip(keys, clean_texts(keys, prefix))).__getitem__, cells))
    out = list(map(str.strip, cells))
    if prefix:
        out = list(map(str.lstrip, map(methodcaller("removeprefix", prefix), out)))
    # isprintable() is one C call per cell; only text with controls, bidi marks or odd spaces pays for one_line()
    if not all(map(str.isprintable, out)):
        out = [t if t.isprintable() else one_line(t) for t in out]
    return out


def clean_text(text: str) -> str:
    return text if text.isprintable() else one_line(text)
