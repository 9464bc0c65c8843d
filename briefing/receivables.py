"""Receivables: what customers owe by ageing bucket, and whom to chase (overdue, largest first)."""
from __future__ import annotations

from typing import Any

from briefing.sources import Sources, figure

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def receivables(src: Sources, *, chase_limit: int = 10) -> dict[str, Any]:
    fetched = src.outstanding
    out: dict[str, Any] = {"state": fetched.state()}
    if not fetched.ok:
        return out
    data, source = fetched.data, fetched.source
    invoices = data.get("invoices") or []
    out["currency"] = data.get("currency") or ""
    totals = f"{source}: total_residual, overdue_residual, by_bucket, invoices"
    out["total"] = figure(float(data.get("total_residual") or 0.0), totals)
    out["overdue"] = figure(float(data.get("overdue_residual") or 0.0), totals)
    by_bucket = data.get("by_bucket") or {}
    out["buckets"] = {name: figure(float(by_bucket.get(name) or 0.0), totals) for name in BUCKETS}
    out["open_invoices"] = figure(sum(1 for i in invoices if float(i.get("amount_residual") or 0) > 0), totals)
    # Whom to chase: customers with invoices past due, by what they owe on those (credit notes are
    # the customer's money, not a debt, and are shown in the totals only).
    late: dict[str, dict[str, Any]] = {}
    for inv in invoices:
        residual = float(inv.get("amount_residual") or 0.0)
        if residual <= 0 or int(inv.get("days_overdue") or 0) <= 0:
            continue
        who = late.setdefault(str(inv.get("partner") or "unknown customer"),
                              {"amount": 0.0, "invoices": [], "oldest_days": 0})
        who["amount"] += residual
        who["invoices"].append(str(inv.get("number") or "?"))
        who["oldest_days"] = max(who["oldest_days"], int(inv["days_overdue"]))
    ranked = sorted(late.items(), key=lambda kv: (-kv[1]["amount"], kv[0]))
    out["chase"] = [{"partner": name, "invoices": who["invoices"], "oldest_days": who["oldest_days"],
                     "amount": figure(round(who["amount"], 2),
                                      f"{source}: invoices {', '.join(who['invoices'])}")}
                    for name, who in ranked[:chase_limit]]
    out["chase_more"] = max(0, len(ranked) - chase_limit)
    return out
