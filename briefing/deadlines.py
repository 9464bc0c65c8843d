"""Upcoming deadlines: invoices falling due in the next 14 days (Odoo), and open tasks with a
``due`` date in their frontmatter (overdue ones included: they are the most urgent)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from briefing.sources import Sources, figure
from briefing.vault_scan import OPEN_FOLDERS

HORIZON_DAYS = 14


def _day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def deadlines(src: Sources) -> dict[str, Any]:
    first = src.week.briefing_date
    last = first + dt.timedelta(days=HORIZON_DAYS - 1)
    out: dict[str, Any] = {"from": first.isoformat(), "to": last.isoformat(), "invoices_state": src.outstanding.state(),
                           "invoices": [], "tasks": []}
    if src.outstanding.ok:
        currency = src.outstanding.data.get("currency") or ""
        for inv in src.outstanding.data.get("invoices") or []:
            due, residual = _day(inv.get("due_date")), float(inv.get("amount_residual") or 0.0)
            if due is not None and residual > 0 and first <= due <= last:
                out["invoices"].append({"due": due.isoformat(), "number": str(inv.get("number") or "?"),
                                        "partner": str(inv.get("partner") or ""), "currency": currency,
                                        "amount": figure(residual, f"{src.outstanding.source}: invoice "
                                                                   f"{inv.get('number')}, due_date")})
        out["invoices"].sort(key=lambda i: (i["due"], i["number"]))
    for task in src.tasks:
        if task.folder not in OPEN_FOLDERS or not task.is_work:
            continue
        due = _day(task.fields.get("due"))
        if due is not None and due <= last:
            out["tasks"].append({"due": due.isoformat(), "overdue": due < first, "id": task.id, "title": task.title,
                                 "path": task.path, "source": f"vault: {task.path}, frontmatter due"})
    out["tasks"].sort(key=lambda t: (t["due"], t["id"]))
    return out
