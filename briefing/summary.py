"""The executive summary: three sentences written from the figures, by template (deterministic:
the same figures always read the same, and no model is involved)."""
from __future__ import annotations

from typing import Any

from briefing.text import hours, money, plural


def _revenue(rev: dict[str, Any]) -> str:
    if "week" not in rev:
        return f"Revenue figures are {rev['state']}, so this week's revenue is not reported."
    cur = rev.get("currency", "")
    stale = "" if rev["state"] == "ok" else f" ({rev['state'].split(': ', 1)[0]})"  # 'stale as of 12:50 UTC'
    text = (f"Revenue this week was {money(rev['week']['value'], cur)}{stale}, bringing {rev['month']} to "
            f"{money(rev['month_to_date']['value'], cur)}")
    if rev.get("target") and "target_share" in rev:
        pace = rev["pace"]["value"]
        behind = "ahead of" if rev["month_to_date"]["value"] >= pace else "behind"
        text += (f", {rev['target_share']['value']:.0f}% of the {money(rev['target']['value'], cur)} monthly target "
                 f"and {behind} the {money(pace, cur)} pace for the date")
    return text + "."


def _work(work: dict[str, Any], approvals: dict[str, Any], failures: dict[str, Any]) -> str:
    done = work["total"]["value"]
    text = f"{plural(done, 'task was', 'tasks were')} completed"
    late = work["bottlenecks_total"]
    if late:
        worst = work["bottlenecks"][0]
        text += (f", {late} of them slower than expected (the furthest over: the {worst['type']} “{worst['title']}”, "
                 f"{hours(worst['actual_hours'])} against {hours(worst['expected_hours'])})")
    failed = failures["total"]["value"]
    text += f"; {plural(failed, 'task', 'tasks')} failed" if failed else "; nothing failed"
    waiting = approvals["waiting"]["value"]
    if waiting:
        text += f", and {plural(waiting, 'approval')} still waited for you at the week's end"
    return text + "."


def _money_to_act_on(rec: dict[str, Any], subs: dict[str, Any]) -> str:
    if "total" in rec:
        cur = rec.get("currency", "")
        text = f"Customers owe {money(rec['total']['value'], cur)}, {money(rec['overdue']['value'], cur)} of it overdue"
        if rec["chase"]:
            top = rec["chase"][0]
            text += f" (chase {top['partner']} first: {money(top['amount']['value'], cur)})"
    else:
        text = f"Receivables are {rec['state']}"
    findings = subs["findings"]
    if findings:
        savings = ", ".join(money(v["value"], c) for c, v in subs["total_saving"].items() if v["value"])
        text += f"; the subscription audit found {plural(len(findings), 'saving')} worth {savings} a month"
    elif subs["state"] == "ok":
        text += "; no subscription looks wasteful"
    else:
        text += f"; the subscription audit is {subs['state'].split(' (')[0]}"
    return text + "."


def executive_summary(sections: dict[str, Any]) -> list[str]:
    return [_revenue(sections["revenue"]),
            _work(sections["work"], sections["approvals"], sections["failures"]),
            _money_to_act_on(sections["receivables"], sections["subscriptions"])]
