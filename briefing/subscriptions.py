"""The subscription audit over the stored bank transactions.

A charge is recurring when the same merchant (the payee, normalised: card-network and bank noise,
numbers, references and country codes taken out) took a similar amount (within 15% of the charge
before, allowing one price step up) at a regular interval (weekly, monthly or yearly, with some
jitter), at least three times in a row, and the run is still going (the last charge within one and a
half periods of the week's end). A subscription is flagged when

- it looks unused: no task file in Needs_Action/, In_Progress/ or Completed/ of the last 30 days
  mentions the merchant (frontmatter fields first, then the body), and no audit record's target does
  (a login, a visit, a call);
- its price rose more than 20% (the last charge against the median of the ones before);
- it does the same job as another one (the ``subscription_categories`` of Business_Goals.md): the one
  used least is flagged.

Each finding says why and what cancelling it saves a month. Merchants are matched by their first
word ("canva" for "CANVA* 1234 SYDNEY"), as a whole word.
"""
from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from typing import Any

from core.vault import Vault
from briefing.merchants import Words
from briefing.sources import LOOKBACK_DAYS, BankCharges, Item, Sources, bank_source, figure
from briefing.vault_scan import STRUCTURED, TaskRecord, audit_mentions


@dataclass(frozen=True)
class Period:
    name: str
    days: float
    low: int            # the shortest and longest gap that still counts as this period (jitter:
    high: int           # weekends, month lengths, a bank's processing days)
    per_month: float    # what one charge is worth a month


PERIODS = (Period("weekly", 7.0, 5, 9, 52 / 12), Period("monthly", 30.44, 25, 36, 1.0),
           Period("yearly", 365.25, 350, 380, 1 / 12))
MIN_CHARGES = 3
SIMILAR = 0.15          # an amount within 15% of the one before is the same price
MAX_STEP = 1.0          # one price step up of at most +100% keeps it the same subscription
PRICE_RISE = 0.20       # flagged: the last charge over the median of the earlier ones by more than 20%
UNUSED_DAYS = LOOKBACK_DAYS
SEARCHED = ("Needs_Action", "In_Progress", "Completed")


@dataclass
class Subscription:
    key: str
    currency: str
    period: Period
    dates: list[dt.date]
    amounts: list[float]                                  # what each charge took (positive)
    refs: list[Any]                                       # where each charge is stored
    where: list[tuple[str, int]] = field(default_factory=list)   # (export file, row) of each
    evidence: list[str] = field(default_factory=list)     # where it was seen used in the last 30 days
    flags: list[tuple[str, str]] = field(default_factory=list)   # (rule, why)
    category: str | None = None
    label: str = ""

    @property
    def name(self) -> str:
        """What the owner reads: the merchant's first word ('Canva'), or both words when two share it."""
        return self.label or self.key.title()

    @property
    def brand(self) -> str:
        first = self.key.split(" ")[0]
        return first if len(first) >= 3 else self.key

    @property
    def last_amount(self) -> float:
        return self.amounts[-1]

    @property
    def monthly_amount(self) -> float:
        return round(self.last_amount * self.period.per_month, 2)

    @property
    def previous_median(self) -> float:
        return statistics.median(self.amounts[:-1])

    @property
    def source(self) -> str:
        return (f"{bank_source(self.where)}: {len(self.dates)} charges {self.period.name} "
                f"{self.dates[0].isoformat()}..{self.dates[-1].isoformat()}")


def _day(text: Any) -> dt.date:
    """An ISO date as SQLite stores it (text or bytes)."""
    return dt.date(int(text[0:4]), int(text[5:7]), int(text[8:10]))


def _amounts_alike(amounts: list[float]) -> bool:
    steps = 0
    for before, after in zip(amounts, amounts[1:]):
        if before <= 0:
            return False
        change = (after - before) / before
        if abs(change) <= SIMILAR:
            continue
        if change < 0 or change > MAX_STEP:
            return False
        steps += 1
    return steps <= 1


def _run(items: list[Item], last: dt.date, period: Period) -> list[tuple[dt.date, float, Any]]:
    """The run of charges at this period that ends with the latest one (oldest first). Walks back
    from the end and stops at the first gap that does not fit, so a busy merchant's thousands of
    charges cost a step or two."""
    chain = [(last, -float(items[-1][1]), items[-1][2])]
    for item in reversed(items[:-1]):
        day = _day(item[0])
        if not period.low <= (chain[-1][0] - day).days <= period.high:
            break
        chain.append((day, -float(item[1]), item[2]))
    chain.reverse()
    # Older charges at another price (a one-off purchase before the plan started) are not the plan.
    for start in range(0, len(chain) - MIN_CHARGES + 1):
        if _amounts_alike([c[1] for c in chain[start:]]):
            return chain[start:]
    return []


def detect(bank: BankCharges, until: dt.date) -> list[Subscription]:
    """The recurring charges still running at ``until``, with where each charge is stored."""
    found = []
    for (key, currency), items in bank.groups.items():
        if len(items) < MIN_CHARGES:
            continue
        last = _day(items[-1][0])
        best: tuple[Period, list] | None = None
        for period in PERIODS:
            if (until - last).days > period.days * 1.5:
                continue  # ended: cancelled already, nothing to save
            chain = _run(items, last, period)
            if len(chain) >= MIN_CHARGES and (best is None or len(chain) > len(best[1])):
                best = (period, chain)
        if best is not None:
            period, chain = best
            found.append(Subscription(key, currency, period, [c[0] for c in chain], [c[1] for c in chain],
                                      [c[2] for c in chain]))
    refs = [r for sub in found for r in sub.refs]
    where = iter(bank.locate(refs)) if refs else iter(())
    for sub in found:
        sub.where = [next(where) for _ in sub.refs]
    found.sort(key=lambda s: (-s.monthly_amount, s.key))
    brands: dict[str, int] = {}
    for sub in found:
        brands[sub.brand] = brands.get(sub.brand, 0) + 1
    for sub in found:
        sub.label = sub.brand.title() if brands[sub.brand] == 1 else sub.key.title()
    return found


def _in_window(task: TaskRecord, first: dt.datetime, end: dt.datetime) -> bool:
    """The task existed in the window: created before its end, not finished before its start."""
    if task.created is None or task.created >= end:
        return False
    return task.finished is None or task.finished >= first


def find_use(subs: list[Subscription], tasks: list[TaskRecord], vault: Vault, first: dt.datetime,
             end: dt.datetime) -> None:
    """Fill each subscription's evidence of use: tasks of the window that mention it (structured
    fields first, then the body), then audit records' targets."""
    words = Words({str(i): s.brand for i, s in enumerate(subs)})
    if not words:
        return
    by_name = {str(i): s for i, s in enumerate(subs)}
    for task in tasks:
        if task.folder not in SEARCHED or not task.is_work or not _in_window(task, first, end):
            continue
        seen: set[str] = set()
        for key in STRUCTURED:  # who and what the task is about, before what its text says
            value = task.fields.get(key)
            if value:
                for name in words.found(str(value).lower()):
                    if name not in seen:
                        seen.add(name)
                        by_name[name].evidence.append(f"{task.path} ({key})")
        body = task.text[task.body_at:].lower()
        for name in words.found(body, set(by_name) - seen):
            by_name[name].evidence.append(f"{task.path} (body)")
    last_day = (end - dt.timedelta(seconds=1)).date()
    for name, where in audit_mentions(vault, first.date(), last_day, words).items():
        by_name[name].evidence.append(where)


def categorise(subs: list[Subscription], categories: Any) -> dict[str, list[Subscription]]:
    """Subscriptions by the category of Business_Goals.md whose names match their merchant."""
    out: dict[str, list[Subscription]] = {}
    if not isinstance(categories, dict):
        return out
    for sub in subs:
        words = set(sub.key.split(" "))
        for category, names in categories.items():
            names = names if isinstance(names, list) else [names]
            wanted = [str(n).strip().lower() for n in names if str(n).strip()]
            if any(n in words or (" " in n and n in sub.key) for n in wanted):
                sub.category = str(category)
                out.setdefault(str(category), []).append(sub)
                break
    return out


def _money(sub: Subscription, value: float) -> str:
    return f"{value:,.2f} {sub.currency}".strip()


def audit(src: Sources, vault: Vault) -> dict[str, Any]:
    end = src.week.ends
    first = end - dt.timedelta(days=UNUSED_DAYS)
    subs = detect(src.bank, src.week.end)
    find_use(subs, src.tasks, vault, first, end)
    for sub in subs:
        if not sub.evidence and sub.dates[0] <= first.date():  # a newer one is too new to judge
            sub.flags.append(("unused", f"no task, email or login mentions “{sub.brand}” in the last {UNUSED_DAYS} "
                                        f"days ({first.date().isoformat()}..{src.week.end.isoformat()})"))
        before = sub.previous_median
        if before > 0 and sub.last_amount > before * (1 + PRICE_RISE):
            rise = (sub.last_amount / before - 1) * 100
            sub.flags.append(("price_rise", f"the price rose {rise:.0f}%, from {_money(sub, before)} to "
                                            f"{_money(sub, sub.last_amount)} on {sub.dates[-1].isoformat()}"))
    for category, members in categorise(subs, src.goals.get("subscription_categories")).items():
        if len(members) < 2:
            continue
        keep = max(members, key=lambda s: (len(s.evidence), len(s.dates), s.monthly_amount, s.key))
        for sub in members:
            if sub is not keep:
                sub.flags.append(("duplicate", f"does the same job ({category}) as {keep.name}, which is used more"))
    findings = [{"merchant": sub.name, "monthly_amount": sub.monthly_amount, "currency": sub.currency,
                 "reason": "; ".join(why for _, why in sub.flags), "rules": [rule for rule, _ in sub.flags],
                 "saving": sub.monthly_amount, "cadence": sub.period.name, "category": sub.category,
                 "last_charge": sub.dates[-1].isoformat(), "last_amount": sub.last_amount, "source": sub.source}
                for sub in subs if sub.flags]
    findings.sort(key=lambda f: (-f["saving"], f["merchant"]))
    window = f"{first.date().isoformat()}..{src.week.end.isoformat()}"
    rows = [{"merchant": s.name, "cadence": s.period.name, "currency": s.currency, "category": s.category,
             "last_charge": s.dates[-1].isoformat(), "charges": len(s.dates),
             "monthly": figure(s.monthly_amount, s.source),
             "used": s.evidence[0] if s.evidence else None, "flags": [rule for rule, _ in s.flags]} for s in subs]
    currencies = sorted({s.currency for s in subs})
    state = "ok" if src.bank.count else ("missing: no bank transactions stored yet (drop a bank export into Inbox/: "
                                         "the odoo_skill reads it)")
    return {"state": state, "subscriptions": rows, "findings": findings, "window": window,
            "total_monthly": {c: figure(round(sum(s.monthly_amount for s in subs if s.currency == c), 2),
                                        "the subscriptions above, each a month") for c in currencies},
            "total_saving": {c: figure(round(sum(f["saving"] for f in findings if f["currency"] == c), 2),
                                       "the findings above, each a month") for c in currencies},
            "searched": f"vault: {', '.join(f + '/' for f in SEARCHED)} tasks of {window} and Logs/ targets"}
