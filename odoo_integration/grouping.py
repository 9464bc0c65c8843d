"""One shape for grouped aggregates on every Odoo version.

Odoo 19's ``formatted_read_group`` and 17/18's ``read_group`` answer differently: date groups as
``["2026-11-01", "November 2026"]`` vs a localised label plus ``__range``; counts as ``__count`` vs
``<field>_count`` (lazy) ; aggregates keyed ``field:sum`` vs the bare field name. Both become::

    {"groups": {"invoice_date:month": "2026-11", "partner_id": [7, "Azure Interior"]},
     "count": 3, "aggregates": {"amount_untaxed_signed:sum": 1234.5}}

Date groups are normalised from the period's first day (never from the localised label): day and week
``YYYY-MM-DD`` (the week's first day), month ``YYYY-MM``, quarter ``YYYY-Qn``, year ``YYYY``.
"""
from __future__ import annotations

import re
from typing import Any

from core.errors import ValidationError

GRANULARITIES = ("day", "week", "month", "quarter", "year")
FUNCTIONS = ("sum", "avg", "min", "max", "count", "count_distinct", "bool_and", "bool_or", "array_agg")
_GROUP = re.compile(r"(\w+)(?::(\w+))?")
_AGGREGATE = re.compile(r"(\w+):(\w+)")


def check(groupby: list[str], aggregates: list[str]) -> list[str]:
    """Validate the specs; the aggregates without ``__count`` (the count is always given)."""
    for spec in groupby:
        match = _GROUP.fullmatch(spec)
        if not match or (match.group(2) and match.group(2) not in GRANULARITIES):
            raise ValidationError(f"groupby {spec!r} must be 'field' or 'date_field:{'|'.join(GRANULARITIES)}'",
                                  field="groupby")
    wanted = []
    for spec in aggregates:
        if spec == "__count":
            continue
        match = _AGGREGATE.fullmatch(spec)
        if not match or match.group(2) not in FUNCTIONS:
            raise ValidationError(f"aggregate {spec!r} must be 'field:function' with a function among "
                                  f"{', '.join(FUNCTIONS)}", field="aggregates")
        wanted.append(spec)
    return list(dict.fromkeys(wanted))


def formatted_read_group_kwargs(domain: list, groupby: list[str], aggregates: list[str]) -> dict[str, Any]:
    return {"domain": domain, "groupby": list(groupby), "aggregates": [*aggregates, "__count"]}


def read_group_kwargs(domain: list, groupby: list[str], aggregates: list[str]) -> dict[str, Any]:
    """lazy=False: every groupby at once and one ``__count``. Each aggregate under an alias (``a0:sum(field)``,
    read_group's documented ``name:agg(field)`` form) so the same field can be summed and maxed."""
    fields = [f"a{i}:{spec.split(':')[1]}({spec.split(':')[0]})" for i, spec in enumerate(aggregates)]
    return {"domain": domain, "fields": fields, "groupby": list(groupby), "lazy": False}


def normalise_formatted(rows: list[dict], groupby: list[str], aggregates: list[str]) -> list[dict]:
    out = []
    for row in rows:
        groups = {}
        for spec in groupby:
            value = row.get(spec, False)
            gran = _granularity(spec)
            if gran and isinstance(value, list) and value:
                value = period(str(value[0]), gran)  # [first day, label]
            groups[spec] = value
        out.append({"groups": groups, "count": int(row.get("__count") or 0),
                    "aggregates": {spec: row.get(spec) for spec in aggregates}})
    return out


def normalise_read_group(rows: list[dict], groupby: list[str], aggregates: list[str]) -> list[dict]:
    out = []
    for row in rows:
        ranges = row.get("__range") or {}
        groups = {}
        for spec in groupby:
            value = row.get(spec, False)
            gran = _granularity(spec)
            if gran:
                span = ranges.get(spec)
                value = period(str(span["from"]), gran) if isinstance(span, dict) and span.get("from") else False
            groups[spec] = value
        out.append({"groups": groups, "count": int(row.get("__count") or 0),
                    "aggregates": {spec: row.get(f"a{i}") for i, spec in enumerate(aggregates)}})
    return out


def period(first_day: str, granularity: str) -> str:
    """``2026-11-01`` as the group key of its period (``2026-11`` for a month)."""
    day = first_day[:10]
    year, month = day[:4], int(day[5:7])
    if granularity == "month":
        return day[:7]
    if granularity == "quarter":
        return f"{year}-Q{(month - 1) // 3 + 1}"
    if granularity == "year":
        return year
    return day


def order_terms(order: str | None, groupby: list[str], aggregates: list[str]) -> list[tuple[str, bool]]:
    """``"count desc, invoice_date:month"`` as (key, descending) terms over group keys, aggregate specs and count;
    checked before anything is sent."""
    terms = []
    for term in (t.strip() for t in (order or "").split(",")):
        if not term:
            continue
        parts = term.split()
        if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise ValidationError(f"order term {term!r} must be 'key [asc|desc]'", field="order")
        if parts[0] not in ("count", "__count", *groupby, *aggregates):
            raise ValidationError(f"order key {parts[0]!r} is neither a groupby, an aggregate nor count", field="order")
        terms.append((parts[0], len(parts) == 2 and parts[1].lower() == "desc"))
    return terms


def sort(groups: list[dict], terms: list[tuple[str, bool]]) -> list[dict]:
    """Order normalised groups. Done here rather than in Odoo because read_group's orderby syntax differs across
    versions, and grouped answers are small; groups without a value go last. Without terms, Odoo's order (by the
    groupbys) stays."""
    result = list(groups)
    for key, desc in reversed(terms):  # stable sorts, last term first
        present = [g for g in result if not _absent(_sort_value(g, key))]
        missing = [g for g in result if _absent(_sort_value(g, key))]
        present.sort(key=lambda g, key=key: _sort_value(g, key), reverse=desc)
        result = present + missing
    return result


def _sort_value(group: dict, key: str) -> Any:
    if key in ("count", "__count"):
        return group["count"]
    if key in group["aggregates"]:
        return group["aggregates"][key]
    found = group["groups"].get(key)
    if isinstance(found, list) and len(found) == 2:
        return str(found[1]).casefold()  # many2one: by name
    return found


def _absent(value: Any) -> bool:
    return value is None or value is False


def _granularity(spec: str) -> str | None:
    return spec.split(":", 1)[1] if ":" in spec else None
