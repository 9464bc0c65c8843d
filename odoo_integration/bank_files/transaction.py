"""BankTransaction, its key, and transactions to and from one list per field.

``BankTransaction.key`` is what makes overlapping exports of one account store each transaction once:
"id:" + hash(account, bank id) when the bank gives an id, else "tx:" + hash(account, date, amount, currency,
description, counterparty, reference, occurrence), texts compared without case or runs of spaces, the account
without spaces or dashes. ``occurrence`` numbers identical rows of one day in one file in the order they
happened (0 = earliest), so two genuine coffees stay two and the same coffee in two exports is one.
"""
from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from functools import partial
from itertools import repeat
from operator import attrgetter, methodcaller
from typing import Any, Callable, Sequence


@dataclass(frozen=True, slots=True)
class BankTransaction:
    date: date
    amount: Decimal              # money in > 0, money out < 0
    currency: str = ""           # ISO code, or "" when the export does not say
    description: str = ""
    counterparty: str = ""
    reference: str = ""
    account: str = ""            # IBAN or account number of the exported account, or ""
    balance: Decimal | None = None
    bank_id: str | None = None   # FITID, or the bank's own transaction id
    source: str = ""             # file name
    row: int = 0                 # line (CSV) or record (OFX) number in the file
    occurrence: int = 0          # among identical rows of that day in that file: 0, 1, ...

    @property
    def key(self) -> str:
        """The same for the same transaction in overlapping exports of one account, different for two
        genuine identical ones (two coffees on one day differ by ``occurrence``)."""
        account = _norm_account(self.account)
        if self.bank_id:
            return "id:" + _digest(account, self.bank_id)
        return "tx:" + _digest(account, self.date.isoformat(), _amount_text(self.amount), self.currency.upper(),
                               _norm(self.description), _norm(self.counterparty), _norm(self.reference),
                               str(self.occurrence))


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _norm_account(account: str) -> str:
    return "".join(filter(str.isalnum, account)).upper()


def _amount_text(amount: Decimal) -> str:
    # "3.50" and "3.5" are one amount; format "f" keeps "750" from becoming "7.5E+2"
    return format(amount.normalize(), "f") if amount else "0"


def normed(texts: Sequence[str]) -> list[str]:
    keys = list(set(texts))
    norms = dict(zip(keys, map(str.casefold, map(" ".join, map(str.split, keys)))))   # _norm(), in C
    return list(map(norms.__getitem__, texts))


_SETTERS = tuple(getattr(BankTransaction, f.name).__set__ for f in fields(BankTransaction))


def from_columns(*columns: Sequence) -> list[BankTransaction]:
    """BankTransactions from one sequence per field, in field order. A frozen dataclass's __init__ is one
    object.__setattr__ call in Python per field (about 3 µs a transaction on this VM); filling each slot for
    every transaction in one C-driven pass costs half, which is a fifth of parsing 100,000 rows."""
    if len(columns) != len(_SETTERS):
        raise TypeError(f"from_columns() takes {len(_SETTERS)} columns, got {len(columns)}")
    made = list(map(object.__new__, repeat(BankTransaction, len(columns[0]))))
    for setter, column in zip(_SETTERS, columns):
        deque(map(setter, made, column), maxlen=0)
    return made


FIELDS = tuple(f.name for f in fields(BankTransaction))
_ENCODE = methodcaller("encode", "utf-8", "surrogatepass")
_BLAKE = partial(hashlib.blake2b, digest_size=16)
_HEX = methodcaller("hexdigest")


def to_columns(transactions: Sequence[BankTransaction]) -> list[list]:
    """One list per field (the order of FIELDS), from one C pass over the transactions."""
    if not transactions:
        return [[] for _ in FIELDS]
    return list(map(list, zip(*map(attrgetter(*FIELDS), transactions))))


def _by_distinct(fn: Callable[[Any], str], values: Sequence) -> list[str]:
    done = {v: fn(v) for v in set(values)}
    return list(map(done.__getitem__, values))


def transaction_keys(transactions: Sequence[BankTransaction], columns: Sequence[Sequence] | None = None
                     ) -> list[str]:
    """``t.key`` for each transaction, the same strings, computed column by column in C (storing 100,000 would
    otherwise spend half its time hashing one transaction at a time). ``columns``: to_columns(transactions), if
    the caller has them already."""
    if not transactions:
        return []
    (dates, amounts, currencies, descriptions, counterparties, references, accounts, _balances, bank_ids, _sources,
     _rows, occurrences) = columns or to_columns(transactions)
    accounts = _by_distinct(_norm_account, accounts)
    parts = zip(accounts, map(date.isoformat, dates), _by_distinct(_amount_text, amounts),
                _by_distinct(str.upper, currencies), normed(descriptions), normed(counterparties),
                normed(references), map(str, occurrences))
    keys = list(map("tx:".__add__, map(_HEX, map(_BLAKE, map(_ENCODE, map("\x1f".join, parts))))))
    if any(bank_ids):
        for i, bank_id in enumerate(bank_ids):
            if bank_id:
                keys[i] = "id:" + _digest(accounts[i], bank_id)
    return keys
