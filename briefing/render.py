"""The note: ``Briefings/YYYY-MM-DD_Monday_Briefing.md``, valid Markdown with YAML frontmatter that
Obsidian shows as properties. Every number is followed by a footnote naming its source (one
footnote per distinct source, listed under "Sources"); a section whose source is down says
"stale as of …" or "missing: …" in a callout instead of its figures."""
from __future__ import annotations

import datetime as dt
import re
from functools import partial
from typing import Any, Callable

from core.documents import Document, iso
from briefing.text import hours, inert, money, plural
from briefing.week import Week

_LINKABLE = re.compile(r"^[\w.\- ]+$")


class Footnotes:
    """Sources in order of first use; the same source is the same footnote."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def ref(self, source: str) -> str:
        n = self.numbers.setdefault(source, len(self.numbers) + 1)
        return f"[^{n}]"

    def num(self, fig: dict[str, Any] | None, shown: Callable[[Any], str] = str) -> str:
        if fig is None:
            return "—"
        return f"{shown(fig['value'])}{self.ref(fig['source'])}"

    def lines(self) -> list[str]:
        return [f"[^{n}]: {inert(source, 800)}" for source, n in self.numbers.items()]


def _link(path: str) -> str:
    """A wikilink to a vault file by its name (ours are safe names); plain text otherwise."""
    stem = path.rsplit("/", 1)[-1].removesuffix(".md")
    return f"[[{stem}]]" if _LINKABLE.match(stem) else inert(stem)


def _callout(state: str) -> list[str]:
    return [] if state == "ok" else [f"> [!warning] {inert(state, 400)}", ""]


def _day(text: str) -> str:
    return dt.date.fromisoformat(text).strftime("%d %b")


def _revenue(s: dict[str, Any], notes: Footnotes, chart: str | None) -> list[str]:
    out = ["## Revenue", "", *_callout(s["state"])]
    if "week" not in s:
        return out
    cur = s["currency"]
    cash = partial(money, currency=cur)
    out += ["| | untaxed |", "|---|---|",
            f"| This week | **{notes.num(s['week'], cash)}** |",
            f"| {s['month'].split()[0]} to date | **{notes.num(s['month_to_date'], cash)}** |"]
    if s.get("target"):
        out.append(f"| Monthly target | {notes.num(s['target'], cash)} |")
        out.append(f"| Share of the target | {notes.num(s['target_share'], lambda v: f'{v:.0f}%')} "
                   f"(pace for the date: {notes.num(s['pace'], cash)}) |")
    else:
        out.append("| Monthly target | none set: add `monthly_revenue_target` to Business_Goals.md |")
    if s.get("last_month"):
        month = dt.date.fromisoformat(s["last_month"]["month"] + "-01").strftime("%B")
        out.append(f"| Last month ({month}) | {notes.num(s['last_month'], cash)} |")
    out.append("")
    if chart:
        out += [f"![Revenue by week, last 12 weeks]({chart})", ""]
    elif s.get("chart_error"):
        out += [f"_The chart could not be drawn: {inert(s['chart_error'])}_", ""]
    series = s["series"]
    out += ["| week from | revenue |", "|---|---|"]
    out += [f"| {_day(p['week_start'])} | {money(p['value'], cur)}{notes.ref(series['source'])} |"
            for p in series["value"]]
    return out + [""]


def _receivables(s: dict[str, Any], notes: Footnotes) -> list[str]:
    out = ["## Receivables", "", *_callout(s["state"])]
    if "total" not in s:
        return out
    cash = partial(money, currency=s["currency"])
    out += [f"Customers owe **{notes.num(s['total'], cash)}**, of which **{notes.num(s['overdue'], cash)}** is "
            f"overdue, on {notes.num(s['open_invoices'])} open invoice(s).", "",
            "| days past due | amount |", "|---|---|"]
    out += [f"| {name} | {notes.num(fig, cash)} |" for name, fig in s["buckets"].items()]
    out.append("")
    if s["chase"]:
        out += ["**Customers to chase** (overdue, largest first):", ""]
        for n, who in enumerate(s["chase"], 1):
            out.append(f"{n}. {inert(who['partner'])}: {notes.num(who['amount'], cash)} on "
                       f"{plural(len(who['invoices']), 'invoice')} ({inert(', '.join(who['invoices']))}), "
                       f"the oldest {who['oldest_days']} days late")
        if s["chase_more"]:
            out.append(f"\n…and {s['chase_more']} more customer(s) with overdue invoices.")
        out.append("")
    else:
        out += ["Nobody is late paying.", ""]
    return out


def _work(work: dict[str, Any], approvals: dict[str, Any], failures: dict[str, Any], notes: Footnotes) -> list[str]:
    out = ["## Completed work and bottlenecks", "", f"**{notes.num(work['total'])}** task(s) completed this week.", ""]
    if work["by_type"]:
        out += ["| type | done | median time | longest | expected | slower than expected |", "|---|---|---|---|---|---|"]
        for kind in work["by_type"]:
            out.append(f"| {inert(kind['type'])} | {notes.num(kind['done'])} | {notes.num(kind['median_hours'], hours)} "
                       f"| {notes.num(kind['max_hours'], hours)} | {notes.num(kind['expected_hours'], hours)} | "
                       f"{notes.num(kind['over'])} |")
        out.append("")
    if work["bottlenecks"]:
        out += ["**Slower than expected** (longest over first):", ""]
        for task in work["bottlenecks"]:
            out.append(f"- {_link(task['path'])} {inert(task['title'])} ({inert(task['type'])}): "
                       f"{hours(task['actual_hours'])}{notes.ref(task['source'])} against "
                       f"{hours(task['expected_hours'])} expected")
        if work["bottlenecks_total"] > len(work["bottlenecks"]):
            out.append(f"- …and {work['bottlenecks_total'] - len(work['bottlenecks'])} more")
        out.append("")
    out += ["### Approvals that waited longest", ""]
    median = f", a median wait of {notes.num(approvals['median_hours'], hours)}" if approvals["median_hours"] else ""
    out += [f"{notes.num(approvals['decided'])} decided this week{median}; {notes.num(approvals['waiting'])} still "
            "waiting at the end of the week.", ""]
    if approvals["longest"]:
        out += ["| request | action | outcome | waited |", "|---|---|---|---|"]
        out += [f"| {_link(a['file']) if a['file'] else inert(a['id'])} | {inert(a['action'])} | {inert(a['status'])} | "
                f"{hours(a['waited_hours'])}{notes.ref(a['source'])} |" for a in approvals["longest"]]
        out.append("")
    out += ["### Failures", "", f"{notes.num(failures['total'])} failed this week.", ""]
    for item in failures["items"]:
        out.append(f"- {_link(item['path'])} {inert(item['title'])} ({inert(item['type'])}): "
                   f"{inert(item['reason'], 300)}{notes.ref(item['source'])}")
    return out + ([""] if failures["items"] else [])


def _subscriptions(s: dict[str, Any], notes: Footnotes) -> list[str]:
    out = ["## Subscription audit", "", *_callout(s["state"])]
    subs = s["subscriptions"]
    if s["state"] != "ok":
        return out
    total = ", ".join(notes.num(fig, lambda v, c=c: money(v, c)) for c, fig in s["total_monthly"].items())
    out += [f"{plural(len(subs), 'recurring charge')} in the bank transactions"
            + (f", {total} a month in all." if subs else "."), ""]
    if s["findings"]:
        saving = ", ".join(notes.num(fig, lambda v, c=c: money(v, c)) for c, fig in s["total_saving"].items()
                           if fig["value"])
        out += [f"**{plural(len(s['findings']), 'finding')}**, saving {saving} a month if cancelled:", "",
                "| merchant | a month | why | saving a month |", "|---|---|---|---|"]
        for f in s["findings"]:
            out.append(f"| {inert(f['merchant'])} | {money(f['monthly_amount'], f['currency'])}{notes.ref(f['source'])} | "
                       f"{inert(f['reason'], 400)} | {money(f['saving'], f['currency'])} |")
        out += ["", "Each finding goes to you as a request to cancel (`ceo_briefing_skill.cancel_subscription`). "
                "There is no API to cancel with: approving one records your decision in "
                "`Accounting/Subscription_Cancellations.md`, your list to cancel with each vendor.", ""]
    else:
        out += ["No subscription looks unused, pricier or doubled up.", ""]
    if subs:
        out += ["| merchant | every | category | last charge | a month | used in the last 30 days |",
                "|---|---|---|---|---|---|"]
        for sub in subs:
            used = inert(sub["used"], 80) if sub["used"] else "**no mention found**"
            out.append(f"| {inert(sub['merchant'])} | {sub['cadence']} | {inert(sub['category'] or '—')} | "
                       f"{sub['last_charge']} | {notes.num(sub['monthly'], lambda v, c=sub['currency']: money(v, c))} "
                       f"| {used} |")
        out += ["", f"_Searched for use: {inert(s['searched'], 300)}._", ""]
    return out


def _social(s: dict[str, Any], notes: Footnotes) -> list[str]:
    out = ["## Social media", ""]
    if s["goal_posts"]:
        out += [f"Goal: {notes.num(s['goal_posts'], lambda v: f'{v:.0f}')} posts a week on each platform.", ""]
    out += ["| platform | posts | reach | engagement | rate | reach against the week before |", "|---|---|---|---|---|---|"]
    for p in s["platforms"]:
        if "posts" not in p:
            out.append(f"| {p['name']} | {inert(p['state'], 200)} | | | | |")
            continue
        change = p["change_percent"].get("reach")
        trend = "new" if change is None else f"{change:+.1f}%"
        mark = "" if p["state"] == "ok" else f" ({inert(p['state'], 120)})"
        out.append(f"| {p['name']}{mark} | {notes.num(p['posts'])} | {notes.num(p['reach'], lambda v: f'{v:,}')} | "
                   f"{notes.num(p['engagement'], lambda v: f'{v:,}')} | "
                   f"{notes.num(p['engagement_rate'], lambda v: f'{v:.1%}')} | {trend} |")
    out.append("")
    for p in s["platforms"]:
        best = p.get("best_post")
        if best:
            out.append(f"- Best on {p['name']}: “{inert(best.get('text'), 120)}” (reach {int(best.get('reach') or 0):,}, "
                       f"engagement {int(best.get('engagement') or 0):,})")
    return out + [""]


def _deadlines(s: dict[str, Any], notes: Footnotes) -> list[str]:
    out = [f"## Upcoming deadlines ({_day(s['from'])} to {_day(s['to'])})", ""]
    out += ["**Invoices falling due:**", "", *_callout(s["invoices_state"])]
    if s["invoices_state"] == "ok" or s["invoices"]:
        out += [f"- {i['due']}: {inert(i['number'])}, {inert(i['partner'])}, "
                f"{notes.num(i['amount'], lambda v, c=i['currency']: money(v, c))}" for i in s["invoices"]] or ["- none"]
        out.append("")
    out += ["**Tasks with a due date:**", ""]
    out += [f"- {'**overdue** ' if t['overdue'] else ''}{t['due']}: {_link(t['path'])} {inert(t['title'])}"
            f"{notes.ref(t['source'])}" for t in s["tasks"]] or ["- none"]
    return out + [""]


def render(week: Week, generated: dt.datetime, sections: dict[str, Any], summary: list[str], stale: dict[str, str],
           chart: str | None) -> str:
    notes = Footnotes()
    title = week.briefing_date.strftime("%A %d %B %Y")
    body = [f"# Monday briefing: {title}", "",
            f"The week of {week.start.strftime('%A %d %B')} to {week.end.strftime('%A %d %B %Y')}; "
            f"generated {generated.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
            "## Executive summary", "", " ".join(inert(s, 1000) for s in summary), ""]
    if stale:
        body += [f"> [!note] Not everything was current: {inert(', '.join(stale), 300)}. Those sections say why.", ""]
    body += _revenue(sections["revenue"], notes, chart)
    body += _receivables(sections["receivables"], notes)
    body += _work(sections["work"], sections["approvals"], sections["failures"], notes)
    body += _subscriptions(sections["subscriptions"], notes)
    body += _social(sections["social"], notes)
    body += _deadlines(sections["deadlines"], notes)
    body += ["## Sources", "", "Each number above is followed by a note saying where it was read.", "", *notes.lines(), ""]
    meta = {"type": "briefing", "week_start": week.start.isoformat(), "week_end": week.end.isoformat(),
            "briefing_date": week.briefing_date.isoformat(), "generated": iso(generated), "stale": list(stale),
            "chart": chart}
    return Document(meta, "\n".join(body)).render()
