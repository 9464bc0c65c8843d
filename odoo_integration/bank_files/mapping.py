"""ColumnMapping: where a CSV export keeps each field and how it writes numbers and dates. The owner declares
one for an export of another shape in the handbook's YAML block::

    bank_formats:
      - name: credit_union            # shown in ParseResult.preset and in warnings
        date: Posted                  # column names as in the file's header (case and spaces do not matter)
        date_formats: ["%m/%d/%Y"]    # strptime formats, tried in order; a time of day after them is ignored
        amount: Amount                # signed (money in > 0) ...
        # debit: Withdrawal           # ... or two columns: debit (its sign ignored: always money out) and credit
        # credit: Deposit
        # direction: "Credit/Debit"   # ... or an unsigned amount and an indicator column (debit_values/credit_values)
        # invert_sign: true           # a card export where purchases are positive
        description: [Memo, Type]     # one column or several, joined
        counterparty: Payee
        reference: Check Number
        currency: Currency            # or default_currency: USD
        balance: Balance
        account: Account              # or default_account: "checking-1234"
        decimal: "."                  # "." or ","
        thousands: ","                # "", ",", ".", " ", "'"
        delimiter: ","                # ",", ";", tab or "|"; omitted: detected
        encoding: utf-8               # omitted: BOM, else UTF-8, else cp1252
        detect: [Posted, Payee, Memo, Amount]   # the header names that identify the export (default: the
                                                # date and amount columns)
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

from odoo_integration.bank_files.result import BankFileError

DELIMITERS = (",", ";", "\t", "|")
DEBIT_WORDS = ("af", "s", "soll", "d", "dr", "db", "debit", "out")
CREDIT_WORDS = ("bij", "h", "haben", "c", "cr", "credit", "in")
COLUMN_FIELDS = ("date", "amount", "debit", "credit", "direction", "fee", "counterparty", "reference", "currency",
                 "balance", "account", "bank_id", "status")


@dataclass(frozen=True)
class ColumnMapping:
    """Where a CSV export keeps each field, and how it writes numbers and dates (see the module docstring)."""

    name: str
    date: str
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    amount: str | None = None
    debit: str | None = None
    credit: str | None = None
    direction: str | None = None
    debit_values: tuple[str, ...] = DEBIT_WORDS
    credit_values: tuple[str, ...] = CREDIT_WORDS
    fee: str | None = None                # subtracted from the amount (Revolut)
    invert_sign: bool = False
    description: tuple[str, ...] = ()
    counterparty: str | None = None
    reference: str | None = None
    currency: str | None = None
    default_currency: str = ""
    balance: str | None = None
    account: str | None = None
    default_account: str = ""
    preamble_account: str | None = None   # label of the account in a key/value table above the header
    bank_id: str | None = None
    status: str | None = None             # rows whose status is not in status_ok are left out (pending, ...)
    status_ok: tuple[str, ...] = ()
    decimal: str = "."
    thousands: str = ","
    delimiter: str | None = None
    quotechar: str | None = '"'           # None: the bank never quotes, a '"' is data
    encoding: str | None = None
    text_prefix: str = ""                 # stripped from text cells (NatWest's "'" that keeps Excel off them)
    skip_first_cells: tuple[str, ...] = ()  # footer rows that are not transactions ("Kontostand")
    detect: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def bad(message: str, setting: str) -> BankFileError:
            return BankFileError(f"bank mapping {self.name!r}: {message}", field=setting)

        if not self.date:
            raise bad("'date' (the date column) is required", "date")
        if not (self.amount or self.debit or self.credit):
            raise bad("name the amount column ('amount'), or 'debit' and 'credit'", "amount")
        if self.direction and not self.amount:
            raise bad("'direction' needs the unsigned 'amount' column it applies to", "direction")
        if not self.date_formats:
            raise bad("'date_formats' is empty", "date_formats")
        if self.decimal not in (".", ","):
            raise bad(f"'decimal' must be '.' or ',', not {self.decimal!r}", "decimal")
        if self.thousands not in ("", ",", ".", " ", "'", "\u00a0") or self.thousands == self.decimal:
            raise bad(f"'thousands' {self.thousands!r} is not a separator that differs from 'decimal'", "thousands")
        if self.delimiter is not None and self.delimiter not in DELIMITERS:
            raise bad(f"'delimiter' must be one of , ; tab |, not {self.delimiter!r}", "delimiter")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise bad(f"unknown encoding {self.encoding!r}", "encoding") from None

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "ColumnMapping":
        """A mapping from the handbook's YAML (lists become tuples; one string where a list is expected is a
        list of one)."""
        if not isinstance(config, Mapping):
            raise BankFileError(f"a bank mapping must be a mapping of settings, not {type(config).__name__}")
        known = {f.name: f for f in fields(cls)}
        name = str(config.get("name") or "custom")
        values: dict[str, Any] = {}
        for setting, value in config.items():
            if setting not in known:
                raise BankFileError(f"bank mapping {name!r}: unknown setting {setting!r} "
                                    f"(known: {', '.join(sorted(known))})", field=str(setting))
            if setting in ("date_formats", "debit_values", "credit_values", "description", "status_ok",
                           "skip_first_cells", "detect"):
                value = (value,) if isinstance(value, str) else tuple(str(v) for v in value or ())
            elif setting == "invert_sign":   # YAML gives a bool; a quoted "false" must not turn into True
                value = value.strip().casefold() in ("true", "yes", "1") if isinstance(value, str) else bool(value)
            elif value is not None:
                value = str(value)
            values[setting] = value
        values["name"] = name
        if "date" not in values:
            raise BankFileError(f"bank mapping {name!r}: 'date' (the date column) is required", field="date")
        return cls(**values)

    def required(self) -> tuple[str, ...]:
        """Header names that must be present for this mapping to apply."""
        if self.detect:
            return self.detect
        return tuple(c for c in (self.date, self.amount, self.debit, self.credit, self.direction) if c)


def owner_mappings(mapping: ColumnMapping | Mapping | Sequence[ColumnMapping | Mapping] | None
                   ) -> list[ColumnMapping]:
    if mapping is None:
        return []
    if isinstance(mapping, (ColumnMapping, Mapping)):
        mapping = [mapping]
    return [m if isinstance(m, ColumnMapping) else ColumnMapping.from_dict(m) for m in mapping]
