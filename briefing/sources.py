"""Gathering the week's data, each piece with where it came from: the Odoo server (through the
McpClient), the vault's task folders, the state store (approvals, bank transactions, the social
summaries), Business_Goals.md. Nothing here fails the briefing: a source that is down is marked
stale or missing, and the section built on it says so.

Every figure the note shows is a ``figure(value, source)``: the number and a sentence a reader can
check, e.g. "Odoo: account.move, posted customer invoices ... (GET /financial/records), as of ...".
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from core.goals import read_goals
from core.state import StateStore
from core.vault import Vault
from briefing.merchants import DIGITS_AS_ZERO, merchant_key
from briefing.odoo import Fetched, OdooFigures, iso_utc
from briefing.vault_scan import TaskRecord, scan
from briefing.week import Week

SOCIAL_PLATFORMS = ("twitter", "facebook", "instagram")
BANK_HISTORY_DAYS = 800     # a yearly charge needs three occurrences: two years and a bit
SERIES_WEEKS = 12
LOOKBACK_DAYS = 30          # how far back the subscription audit looks for use of a merchant


def figure(value: Any, source: str) -> dict[str, Any]:
    """A number the briefing shows, with the source it was read from."""
    return {"value": value, "source": source}


class Charge(NamedTuple):
    """Money out of the bank account, as stored by odoo_integration.bank_store (for callers that hold
    transactions in memory; the briefing reads them grouped, see ``bank_charges``)."""
    date: dt.date
    amount: float        # positive: what was paid
    currency: str
    payee: str           # the counterparty, else the description
    file: str            # the bank export it came from
    row: int             # its line (CSV) or record (OFX) in that file


# One charge in a group: (ISO date, the stored amount text such as '-12.99', where it is: a rowid or a
# Charge). Text (or bytes) as SQLite gives it: a briefing parses only the few charges it looks at.
Item = tuple[Any, Any, Any]


@dataclass
class BankCharges:
    """Money out, grouped by merchant (merchants.merchant_key) and currency, oldest first."""
    groups: dict[tuple[str, str], list[Item]]
    count: int
    state: StateStore | None = None

    def locate(self, refs: list[Any]) -> list[tuple[str, int]]:
        """The export file and row of each charge."""
        if all(isinstance(r, Charge) for r in refs):
            return [(r.file, r.row) for r in refs]
        assert self.state is not None
        found: dict[int, tuple[str, int]] = {}
        for start in range(0, len(refs), 500):
            chunk = refs[start:start + 500]
            for row in self.state.query(f"SELECT rowid, source, source_row FROM bank_transactions WHERE rowid IN "
                                        f"({','.join('?' * len(chunk))})", tuple(chunk)):
                found[row[0]] = (row[1], row[2])
        return [found.get(r, ("an unknown export", 0)) for r in refs]


@dataclass
class Sources:
    week: Week
    generated: dt.datetime
    goals: dict[str, Any]
    moves: Fetched                     # customer invoices and credit notes over the chart's 12 weeks
    outstanding: Fetched
    monthly: Fetched
    tasks: list[TaskRecord]
    approvals: list[dict[str, Any]]
    bank: BankCharges
    social: dict[str, tuple[dict[str, Any], float] | None] = field(default_factory=dict)

    @property
    def series_start(self) -> dt.date:
        return self.week.start - dt.timedelta(weeks=SERIES_WEEKS - 1)


def gather(vault: Vault, state: StateStore | None, odoo: OdooFigures, week: Week, *,
           now: dt.datetime | None = None) -> Sources:
    now = now or dt.datetime.now(dt.timezone.utc)
    start = min(week.start - dt.timedelta(weeks=SERIES_WEEKS - 1), week.end.replace(day=1))
    return Sources(
        week=week, generated=now, goals=read_goals(vault.root),
        moves=odoo.customer_moves(start.isoformat(), week.end.isoformat()),
        outstanding=odoo.outstanding(week.briefing_date.isoformat()),
        monthly=odoo.monthly_revenue(months=_months_back(week.end, now.date()) + 2),
        tasks=scan(vault, since=min(week.begins, week.ends - dt.timedelta(days=LOOKBACK_DAYS))),
        approvals=approvals(state, week) if state is not None else [],
        bank=(bank_charges(state, week.end - dt.timedelta(days=BANK_HISTORY_DAYS), week.end) if state is not None
              else BankCharges({}, 0)),
        social={p: (state.cache_get(f"summary:{p}") if state is not None else None) for p in SOCIAL_PLATFORMS},
    )


def _months_back(day: dt.date, today: dt.date) -> int:
    """How many months before the current one ``day``'s month is: the server counts back from today."""
    return max(0, min(34, (today.year - day.year) * 12 + today.month - day.month))


def approvals(state: StateStore, week: Week) -> list[dict[str, Any]]:
    """Requests the owner was asked during the week or that still waited at its start: those decided
    in the week, or not decided by its end. Grants by a handbook rule never waited for anyone."""
    begins, ends = week.begins.timestamp(), week.ends.timestamp()
    rows = state.query(
        "SELECT id, task_id, skill, action, status, created, decided, approved_by, file_name FROM approvals "
        "WHERE created < ? AND (decided IS NULL OR decided >= ?) AND COALESCE(approved_by, '') NOT LIKE 'policy:%'",
        (ends, begins))
    return [dict(r) for r in rows]


def bank_charges(state: StateStore, first: dt.date, last: dt.date) -> BankCharges:
    """Money out dated ``first``..``last``, grouped by merchant. A bank account holds tens of thousands
    of these: they are read as bytes (no decoding), payees that differ only in digits are named once,
    and nothing else is parsed until a charge is looked at."""
    db = sqlite3.connect(str(state.path), timeout=30.0)
    try:
        db.text_factory = bytes
        rows = db.execute(
            "SELECT date, amount, currency, CASE WHEN counterparty <> '' THEN counterparty ELSE description END, "
            "rowid FROM bank_transactions WHERE date BETWEEN ? AND ? AND amount LIKE '-%' ORDER BY date",
            (first.isoformat(), last.isoformat())).fetchall()
    finally:
        db.close()
    names: dict[bytes, str] = {}
    groups: dict[tuple[str, bytes], list[Item]] = {}
    for day, amount, currency, payee, rowid in rows:
        text = payee.translate(DIGITS_AS_ZERO)
        key = names.get(text)
        if key is None:
            key = names[text] = merchant_key(text.decode("utf-8", "replace"))
        if key:
            groups.setdefault((key, currency), []).append((day, amount, rowid))
    return BankCharges({(k, c.decode("utf-8", "replace")): v for (k, c), v in groups.items()}, len(rows), state)


def group_charges(charges: Iterable[Charge]) -> BankCharges:
    """The same grouping for charges held in memory."""
    groups: dict[tuple[str, str], list[Item]] = {}
    for c in sorted(charges, key=lambda c: (c.date, c.file, c.row)):
        key = merchant_key(c.payee)
        if key:
            groups.setdefault((key, c.currency), []).append((c.date.isoformat(), f"{-c.amount}", c))
    return BankCharges(groups, sum(len(v) for v in groups.values()))


def bank_source(where: list[tuple[str, int]]) -> str:
    """'bank transactions (state store): natwest.csv rows 4, 19, 33' (by export file and row)."""
    by_file: dict[str, list[int]] = {}
    for file, row in where:
        by_file.setdefault(file or "an unnamed export", []).append(row)
    parts = [f"{name} row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[-12:]))}"
             + (f" (and {len(rows) - 12} earlier)" if len(rows) > 12 else "") for name, rows in by_file.items()]
    return "bank transactions (state store): " + "; ".join(parts)


__all__ = ["BankCharges", "Charge", "Fetched", "Item", "Sources", "bank_charges", "bank_source", "figure", "gather",
           "group_charges", "iso_utc"]
