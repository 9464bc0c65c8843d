"""The accounting section of ``Dashboard.md``: receivables, what is overdue by ageing bucket, and
revenue this month against the target in ``Business_Goals.md``, with the time the figures were read.

The Odoo server computes it in the background (``refresh``) and keeps it in the state store; the
Dashboard's one writer (the agent interface) shows it with its age, so the Dashboard never waits on
Odoo, and shows the last figures, marked with their time, while Odoo is down."""
from __future__ import annotations

from typing import Any

from core.goals import number, read_goals
from odoo_integration import accounting

SECTION_KEY = "dashboard:accounting"  # core.engine.dashboard renders every "dashboard:" entry


def _money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def section(owed: dict[str, Any], revenue: dict[str, Any], target: float | None) -> dict[str, Any]:
    currency = owed["currency"]
    month = revenue["months"][-1]
    lines = []
    if target:
        share = month["untaxed"] / target * 100 if target else 0
        lines.append(f"- Revenue this month ({month['month']}): **{_money(month['untaxed'], currency)}** of the "
                     f"{_money(target, currency)} target ({share:.0f}%), before tax")
    else:
        lines.append(f"- Revenue this month ({month['month']}): **{_money(month['untaxed'], currency)}** before tax "
                     "(no monthly_revenue_target in Business_Goals.md)")
    lines.append(f"- Customers owe **{_money(owed['total_residual'], currency)}**, of which "
                 f"{_money(owed['overdue_residual'], currency)} is overdue")
    buckets = ", ".join(f"{name} days: {_money(value, currency)}" for name, value in owed["by_bucket"].items()
                        if name != "current" and value)
    if buckets:
        lines.append(f"- Overdue by age: {buckets}")
    late = sorted((i for i in owed["invoices"] if i["days_overdue"] > 0), key=lambda i: -i["amount_residual"])[:5]
    lines += [f"  - {i['partner']}: {i['number']}, {_money(i['amount_residual'], currency)}, {i['days_overdue']} days late"
              for i in late]
    if owed["in_payment"]["invoices"]:
        lines.append(f"- Paid, awaiting the bank: {owed['in_payment']['invoices']} invoice(s), "
                     f"{_money(owed['in_payment']['amount'], currency)}")
    lines.append(f"- Scope: {', '.join(owed['scope']['companies'])} ({currency})")
    return {"title": "Accounting (Odoo)", "lines": lines}


def refresh(resources: Any, deps: Any) -> None:
    """Vertical.refresh of the Odoo server: recompute the section (three or four Odoo calls)."""
    odoo = resources.odoo
    owed = accounting.outstanding(odoo, as_of=resources.today())
    revenue = accounting.monthly_revenue(odoo, months=1, today=resources.today())
    target = number(read_goals(deps.vault.root), "monthly_revenue_target")
    deps.state.cache_put(SECTION_KEY, section(owed, revenue, target))
