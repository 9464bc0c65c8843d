"""Bank transactions in the state store, each once, for the matching and the CEO briefing.

The table ``bank_transactions`` (core/state.py) is keyed by ``BankTransaction.key``: an overlapping export
stored again adds only what is new. Amounts are stored as text, exactly as parsed (a REAL would turn 0.10
into 0.1000000000000000055); dates as ISO text, so a date range is an index range.
"""
from __future__ import annotations

import sqlite3
import time
from datetime import date
from decimal import Decimal
from typing import Iterable, Sequence

from core.state import StateStore
from odoo_integration.bank_files import (BankTransaction, from_columns, to_columns, transaction_keys,
                                         without_gc)

_COLUMNS = ("date, amount, currency, description, counterparty, reference, account, balance, bank_id, source, "
            "source_row, occurrence")
_INSERT = f"INSERT OR IGNORE INTO bank_transactions (key, {_COLUMNS}, imported_at) VALUES ({'?, ' * 13}?)"


def store_transactions(state: StateStore, transactions: Iterable[BankTransaction]
                       ) -> tuple[list[BankTransaction], int]:
    """Store what is not stored yet, in one transaction: (the transactions this call added, how many were
    already stored). A transaction seen before, in this batch or an earlier export, keeps its first source and
    row. What is already stored is read inside the write transaction: two overlapping exports imported at once
    each learn exactly what they added, so a payment in both is matched (and proposed) once."""
    batch = transactions if isinstance(transactions, Sequence) else list(transactions)
    if not batch:
        return [], 0
    with without_gc():
        columns = to_columns(batch)
        keys = transaction_keys(batch, columns)
        dates, amounts, balances = columns[0], columns[1], columns[7]
        columns[0] = list(map(date.isoformat, dates))
        columns[1] = list(map(str, amounts))
        columns[7] = [None if b is None else str(b) for b in balances]
        rows = zip(keys, *columns, [time.time()] * len(batch))
        with state.transaction() as db:
            known = _stored_keys(db, keys)
            db.executemany(_INSERT, rows)
        added = []
        for key, tx in zip(keys, batch):
            if key not in known:
                known.add(key)
                added.append(tx)
    return added, len(batch) - len(added)


def _stored_keys(db: sqlite3.Connection, keys: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        known.update(r[0] for r in db.execute(
            f"SELECT key FROM bank_transactions WHERE key IN ({','.join('?' * len(chunk))})", chunk))
    return known


def transactions_between(state: StateStore, start: date, end: date, *, account: str | None = None
                         ) -> list[BankTransaction]:
    """Stored transactions dated ``start`` to ``end`` (both included), oldest first, in file order within a day."""
    sql = f"SELECT {_COLUMNS} FROM bank_transactions WHERE date BETWEEN ? AND ?"
    args: tuple = (start.isoformat(), end.isoformat())
    if account is not None:
        sql, args = sql + " AND account = ?", (*args, account)
    with without_gc():
        rows = state.query(sql + " ORDER BY date, source, source_row", args)
        if not rows:
            return []
        dates, amounts, currencies, descriptions, counterparties, references, accounts, balances, bank_ids, \
            sources, lines, occurrences = map(list, zip(*rows))
        return from_columns(list(map(date.fromisoformat, dates)), list(map(Decimal, amounts)), currencies,
                            descriptions, counterparties, references, accounts,
                            [None if b is None else Decimal(b) for b in balances], bank_ids, sources, lines,
                            occurrences)


def count_transactions(state: StateStore) -> int:
    return int(state.query("SELECT COUNT(*) FROM bank_transactions")[0][0])
