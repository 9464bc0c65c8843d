"""The transactions of one file built from its columns, identical rows of a day numbered by ``occurrence``."""
from __future__ import annotations

from collections import Counter
from operator import itemgetter
from typing import Sequence

from odoo_integration.bank_files.transaction import BankTransaction, from_columns, normed


def _occurrences(dates: list, amounts: list, currencies: list, descriptions: list, counterparties: list,
                 references: list, accounts: list, bank_ids: list) -> list[int]:
    """0, 1, ... for identical rows of one day, in the order they happened: an export that lists the newest first
    is counted from its end, so the same coffee gets the same number (and key) in every export that holds it."""
    numbers = [0] * len(dates)
    # Only rows sharing day and amount can be identical: one C pass finds them, and only those are compared on
    # the rest (account, currency, normalised text).
    # (the amounts' hashes stand in for them: equal amounts hash equal, and hashing a Decimal inside a tuple
    # costs three times as much)
    coarse = list(zip(dates, map(hash, amounts)))
    shared = {k for k, count in Counter(coarse).items() if count > 1}
    if not shared:
        return numbers
    rows = [i for i, k in enumerate(coarse) if k in shared and not bank_ids[i]]
    if len(rows) < 2:
        return numbers
    pick = itemgetter(*rows)
    idents = list(zip(pick(accounts), pick(dates), pick(amounts), pick(currencies), normed(pick(descriptions)),
                      normed(pick(counterparties)), normed(pick(references))))
    repeated = {k for k, count in Counter(idents).items() if count > 1}
    seen: dict[tuple, int] = {}
    for j in (range(len(rows) - 1, -1, -1) if dates[0] > dates[-1] else range(len(rows))):
        ident = idents[j]
        if ident in repeated:
            numbers[rows[j]] = seen.get(ident, 0)
            seen[ident] = numbers[rows[j]] + 1
    return numbers


def build_transactions(name: str, dates: list, amounts: list, currencies: list, descriptions: list,
                       counterparties: list, references: list, accounts: list, balances: list, bank_ids: list,
                       rows: Sequence[int]) -> list[BankTransaction]:
    numbers = _occurrences(dates, amounts, currencies, descriptions, counterparties, references, accounts, bank_ids)
    return from_columns(dates, amounts, currencies, descriptions, counterparties, references, accounts, balances,
                        bank_ids, [name] * len(dates), rows, numbers)
