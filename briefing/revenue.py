"""Revenue: this week, month to date against ``monthly_revenue_target``, and the last 12 weeks.

Revenue is what the Dashboard and the accountant count: posted customer invoices minus credit
notes, untaxed, in the company currency (Odoo's ``amount_untaxed_signed``), by invoice date."""
from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from core.goals import number
from briefing.odoo import shown_time
from briefing.sources import SERIES_WEEKS, Sources, figure


def _dated(records: list[dict[str, Any]]) -> list[tuple[dt.date, float, str]]:
    out = []
    for r in records:
        try:
            day = dt.date.fromisoformat(str(r.get("invoice_date"))[:10])
        except ValueError:
            continue
        out.append((day, float(r.get("amount_untaxed_signed") or 0.0), str(r.get("move_type") or "")))
    return out


def _between(moves: list[tuple[dt.date, float, str]], first: dt.date, last: dt.date) -> tuple[float, int, int]:
    """(revenue, invoices, credit notes) dated first..last."""
    picked = [m for m in moves if first <= m[0] <= last]
    return (round(sum(m[1] for m in picked), 2), sum(1 for m in picked if m[2] != "out_refund"),
            sum(1 for m in picked if m[2] == "out_refund"))


def _span(first: dt.date, last: dt.date) -> str:
    return f"{first.isoformat()}..{last.isoformat()}"


def revenue(src: Sources) -> dict[str, Any]:
    week, fetched = src.week, src.moves
    target = number(src.goals, "monthly_revenue_target")
    out: dict[str, Any] = {"state": fetched.state(), "target": None if target is None else
                           figure(target, "Business_Goals.md: goals.monthly_revenue_target")}
    if not fetched.ok:
        return out
    data = fetched.data
    currency = data.get("currency") or ""
    moves = _dated(data.get("records") or [])
    when = f", as of {shown_time(fetched.as_of)}" + (" (stale)" if fetched.stale else "")
    partial = " (partial: more records than the briefing reads)" if data.get("partial") else ""

    def source(first: dt.date, last: dt.date, invoices: int, credits: int) -> str:
        return (f"Odoo: account.move, {invoices} posted customer invoice(s) and {credits} credit note(s) with invoice "
                f"date {_span(first, last)}, untaxed (GET /financial/records){when}{partial}")

    value, invoices, credits = _between(moves, week.start, week.end)
    out["currency"] = currency
    out["week"] = figure(value, source(week.start, week.end, invoices, credits))
    month_start = week.end.replace(day=1)
    mtd, invoices, credits = _between(moves, month_start, week.end)
    out["month"] = week.end.strftime("%B %Y")
    out["month_to_date"] = figure(mtd, source(month_start, week.end, invoices, credits))
    if target:
        days = calendar.monthrange(week.end.year, week.end.month)[1]
        out["target_share"] = figure(round(mtd / target * 100, 1),
                                     "month to date ÷ Business_Goals.md monthly_revenue_target")
        out["pace"] = figure(round(target * week.end.day / days, 2),
                             f"the target × {week.end.day}/{days} days of {out['month']}")
    series = []
    for n in range(SERIES_WEEKS):
        first = src.series_start + dt.timedelta(weeks=n)
        value, invoices, credits = _between(moves, first, first + dt.timedelta(days=6))
        series.append({"week_start": first.isoformat(), "value": value})
    out["series"] = figure(series, source(src.series_start, week.end,
                                          *_between(moves, src.series_start, week.end)[1:]) + ", by week (Mon–Sun)")
    out["last_month"] = _last_month(src, month_start)
    return out


def _last_month(src: Sources, month_start: dt.date) -> dict[str, Any] | None:
    """The month before, whole, as Odoo's monthly revenue has it (by accounting month)."""
    if not src.monthly.ok:
        return None
    wanted = (month_start - dt.timedelta(days=1)).strftime("%Y-%m")
    for month in src.monthly.data.get("months") or []:
        if month.get("month") == wanted:
            return {"month": wanted, **figure(float(month.get("untaxed") or 0.0), src.monthly.source + f", {wanted}")}
    return None
