"""Bank exports (CSV from the common banks, OFX 1.x and 2.x) parsed into transactions.

``parse_bank_file(data, name)`` reads the bytes of one export and answers a ``ParseResult``. A CSV file is
recognised by its header row (searched in the first lines, below any preamble the bank writes) against the
presets below; an export of another shape needs a ``ColumnMapping``, which the owner declares in the
handbook's YAML block::

    bank_files:
      mappings:
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

Presets (``PRESETS``): natwest (UK), deutsche_bank (DE, also Postbank), ing_nl (NL), revolut, capital_one (US).
The header row must hold every column of a preset's ``detect``; when several fit, the one naming most columns
wins, and the owner's mappings are tried with the presets. OFX is read with ofxtools: STMTTRN records with FITID
as ``bank_id``, the account from BANKACCTFROM or CCACCTFROM, the currency from CURDEF.

``BankTransaction.key`` is what makes overlapping exports of one account store each transaction once:
"id:" + hash(account, bank id) when the bank gives an id, else "tx:" + hash(account, date, amount, currency,
description, counterparty, reference, occurrence), texts compared without case or runs of spaces, the account
without spaces or dashes. ``occurrence`` numbers identical rows of one day in one file in the order they
happened (0 = earliest), so two genuine coffees stay two and the same coffee in two exports is one.

Bad rows are skipped with a warning naming the row; a file that is not a bank export raises ``BankFileError``.
Speed matters (100,000 rows well under a second): the csv module does the splitting, the work runs column by
column in C (map, zip, set), dates and amounts are parsed once per distinct string, nothing is compiled per row.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import hashlib
import html
import io
import re
import xml.etree.ElementTree as ET
from collections import Counter, deque
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from itertools import compress, repeat
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, Callable, Iterator, Mapping, Sequence

from core.errors import ValidationError
from core.text import one_line

HEADER_SCAN = 30     # lines searched for the header row: banks put an account preamble above it
MAX_WARNINGS = 20    # a file of 100,000 bad rows must not make 100,000 warnings
DELIMITERS = (",", ";", "\t", "|")
DEBIT_WORDS = ("af", "s", "soll", "d", "dr", "db", "debit", "out")
CREDIT_WORDS = ("bij", "h", "haben", "c", "cr", "credit", "in")
# What SEPA and MT940 write when the payer gave no reference: not a reference.
NO_REFERENCE = frozenset({"notprovided", "nonref"})


class BankFileError(ValidationError):
    """The file is not a bank export this module can read; the message says what was expected."""


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


@dataclass
class ParseResult:
    transactions: list[BankTransaction]
    format: str                  # "csv" or "ofx"
    preset: str                  # the mapping's name for CSV, "ofx1" / "ofx2" for OFX
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0             # rows not turned into transactions (bad, pending, ...)
    encoding: str = ""


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _norm_account(account: str) -> str:
    return "".join(filter(str.isalnum, account)).upper()


def _amount_text(amount: Decimal) -> str:
    # "3.50" and "3.5" are one amount; format "f" keeps "750" from becoming "7.5E+2"
    return format(amount.normalize(), "f") if amount else "0"


def _norm_header(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").strip().strip("'\"").split()).casefold()


# -- column mappings -----------------------------------------------------------------------------------------------
_COLUMN_FIELDS = ("date", "amount", "debit", "credit", "direction", "fee", "counterparty", "reference", "currency",
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


PRESETS: tuple[ColumnMapping, ...] = (
    # NatWest / RBS (UK): "Date, Type, Description, Value, Balance, Account Name, Account Number", dd/mm/yyyy,
    # signed Value, text cells prefixed with "'", a trailing comma, several accounts one after the other.
    ColumnMapping(name="natwest", date="Date", date_formats=("%d/%m/%Y",), amount="Value",
                  description=("Description",), balance="Balance", account="Account Number",
                  default_currency="GBP", text_prefix="'",
                  detect=("Date", "Type", "Description", "Value", "Balance", "Account Name", "Account Number")),
    # Deutsche Bank / Postbank (DE): preamble with the IBAN, ';' never quoted, D.M.YYYY, "-1.000,00"; Betrag
    # signed (the older export leaves it empty and fills Soll, already negative, or Haben); a Kontostand footer.
    ColumnMapping(name="deutsche_bank", date="Buchungstag", date_formats=("%d.%m.%Y",), amount="Betrag",
                  debit="Soll", credit="Haben", counterparty="Begünstigter / Auftraggeber",
                  description=("Verwendungszweck",), reference="Kundenreferenz", currency="Währung",
                  default_currency="EUR", preamble_account="IBAN", decimal=",", thousands=".", delimiter=";",
                  quotechar=None, skip_first_cells=("Kontostand",),
                  detect=("Buchungstag", "Wert", "Umsatzart", "Begünstigter / Auftraggeber", "Verwendungszweck",
                          "Betrag", "Soll", "Haben")),
    # ING (NL): yyyymmdd, an unsigned "Bedrag (EUR)" with decimal comma and an "Af Bij" indicator; ';' (older
    # exports ','), every cell quoted, often cp1252.
    ColumnMapping(name="ing_nl", date="Datum", date_formats=("%Y%m%d", "%d-%m-%Y"), amount="Bedrag (EUR)",
                  direction="Af Bij", counterparty="Naam / Omschrijving", description=("Mededelingen",),
                  account="Rekening", balance="Saldo na mutatie", default_currency="EUR", decimal=",",
                  thousands=".",
                  detect=("Datum", "Naam / Omschrijving", "Rekening", "Tegenrekening", "Code", "Af Bij",
                          "Bedrag (EUR)", "Mutatiesoort", "Mededelingen")),
    # Revolut: ISO timestamps, signed Amount plus a Fee, a Currency column, pending and reverted rows in the file.
    ColumnMapping(name="revolut", date="Completed Date", date_formats=("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
                  amount="Amount", fee="Fee", currency="Currency", description=("Description",),
                  balance="Balance", status="State", status_ok=("COMPLETED",),
                  detect=("Type", "Product", "Started Date", "Completed Date", "Description", "Amount", "Fee",
                          "Currency", "State", "Balance")),
    # Capital One (US cards): ISO dates, separate Debit and Credit columns of positive numbers.
    ColumnMapping(name="capital_one", date="Posted Date", date_formats=("%Y-%m-%d", "%m/%d/%Y"), debit="Debit",
                  credit="Credit", description=("Description",), account="Card No.", default_currency="USD",
                  detect=("Transaction Date", "Posted Date", "Card No.", "Description", "Category", "Debit",
                          "Credit")),
)


# -- value parsers, built once per file ----------------------------------------------------------------------------
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_SYMBOLS = "£$€¥₹ \u00a0\u202f"
_ZERO = Decimal(0)


def _amount_parser(mapping: ColumnMapping) -> Callable[[str], Decimal | None]:
    drop: dict[int, str | None] = {ord(ch): None for ch in _SYMBOLS + mapping.thousands}
    drop[ord(mapping.decimal)] = "."

    def parse(text: str) -> Decimal | None:
        value = text.strip()
        if not value:
            return None
        negative = False
        if value[0] == "(" and value[-1] == ")":         # accountants' negative
            negative, value = True, value[1:-1]
        elif value[-1] == "-":                            # "12,50-", as some German exports write it
            negative, value = True, value[:-1]
        value = value.translate(drop)
        if not _NUMBER.fullmatch(value):
            raise ValueError(f"amount {text.strip()!r} is not a number")
        return -Decimal(value) if negative else Decimal(value)

    return parse


def _date_parser(formats: Sequence[str]) -> Callable[[str], date]:
    """Each format's date part is parsed once per distinct string; a time of day after it is cut off first, so
    100,000 distinct timestamps still share a few hundred dates."""
    plans = []
    for fmt in formats:
        cut = min((fmt.find(d) for d in ("%H", "%I") if d in fmt), default=-1)
        if cut > 0:
            sep, date_fmt = fmt[cut - 1], fmt[:cut - 1]
            plans.append((date_fmt, sep, date_fmt.count(sep) + 1, {}))
        else:
            plans.append((fmt, "", 0, {}))

    def parse(text: str) -> date:
        text = text.strip()
        for date_fmt, sep, parts, cache in plans:
            part = sep.join(text.split(sep, parts)[:parts]) if sep else text
            found = cache.get(part)
            if found is None:
                try:
                    found = datetime.strptime(part, date_fmt).date()
                except ValueError:
                    continue
                cache[part] = found
            return found
        raise ValueError(f"date {text!r} does not match {' or '.join(formats)}")

    return parse


def _column_values(cells: Sequence[str], parse: Callable[[str], Any]) -> tuple[list, dict[str, str]]:
    """``parse`` applied once per distinct cell (a column repeats itself: dates, currencies): the values, None
    where a cell failed, and why each failed cell failed."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for cell in set(cells):
        try:
            values[cell] = parse(cell)
        except ValueError as err:
            values[cell], errors[cell] = None, str(err)
    return list(map(values.__getitem__, cells)), errors


def _amount_values(cells: Sequence[str], mapping: ColumnMapping) -> tuple[list, dict[str, str]]:
    """Amounts of a column. The usual case runs in C: the separators replaced and one Decimal() per distinct cell
    (per cell for a column of balances, distinct on every row); a column with anything unusual ("(12.50)",
    "12,50-", "n/a", "1e5") is parsed cell by cell with the checks of _amount_parser."""
    distinct = set(cells)
    direct = "" not in distinct and len(distinct) * 2 > len(cells)
    keys = list(cells) if direct else [c for c in distinct if c]
    joined = "".join(distinct)
    texts = keys
    for old, new in [(ch, "") for ch in _SYMBOLS + mapping.thousands if ch in joined] + \
            ([(mapping.decimal, ".")] if mapping.decimal != "." and mapping.decimal in joined else []):
        texts = [text.replace(old, new) for text in texts]
    try:
        if any(ch in joined for ch in "eE_"):   # Decimal() takes "1e5" and "1_000"; no bank writes either
            raise InvalidOperation
        numbers = list(map(Decimal, texts))
        if not all(map(Decimal.is_finite, numbers)):
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        return _column_values(cells, _amount_parser(mapping))
    if direct:
        return numbers, {}
    values: dict[str, Decimal | None] = dict(zip(keys, numbers))
    values[""] = None
    return list(map(values.__getitem__, cells)), {}


def _texts(cells: Sequence[str], prefix: str = "", *, few: bool = False) -> list[str]:
    """Text cells stripped and made safe. ``few``: a column of a handful of values (account, currency) is
    cleaned once per distinct value."""
    if few:
        keys = list(set(cells))
        return list(map(dict(zip(keys, _texts(keys, prefix))).__getitem__, cells))
    out = list(map(str.strip, cells))
    if prefix:
        out = list(map(str.lstrip, map(methodcaller("removeprefix", prefix), out)))
    # isprintable() is one C call per cell; only text with controls, bidi marks or odd spaces pays for one_line()
    if not all(map(str.isprintable, out)):
        out = [t if t.isprintable() else one_line(t) for t in out]
    return out


def _clean(text: str) -> str:
    return text if text.isprintable() else one_line(text)


def _normed(texts: Sequence[str]) -> list[str]:
    keys = list(set(texts))
    norms = dict(zip(keys, map(str.casefold, map(" ".join, map(str.split, keys)))))   # _norm(), in C
    return list(map(norms.__getitem__, texts))


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
    idents = list(zip(pick(accounts), pick(dates), pick(amounts), pick(currencies), _normed(pick(descriptions)),
                      _normed(pick(counterparties)), _normed(pick(references))))
    repeated = {k for k, count in Counter(idents).items() if count > 1}
    seen: dict[tuple, int] = {}
    for j in (range(len(rows) - 1, -1, -1) if dates[0] > dates[-1] else range(len(rows))):
        ident = idents[j]
        if ident in repeated:
            numbers[rows[j]] = seen.get(ident, 0)
            seen[ident] = numbers[rows[j]] + 1
    return numbers


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
                _by_distinct(str.upper, currencies), _normed(descriptions), _normed(counterparties),
                _normed(references), map(str, occurrences))
    keys = list(map("tx:".__add__, map(_HEX, map(_BLAKE, map(_ENCODE, map("\x1f".join, parts))))))
    if any(bank_ids):
        for i, bank_id in enumerate(bank_ids):
            if bank_id:
                keys[i] = "id:" + _digest(accounts[i], bank_id)
    return keys


def _build(name: str, dates: list, amounts: list, currencies: list, descriptions: list, counterparties: list,
           references: list, accounts: list, balances: list, bank_ids: list, rows: Sequence[int]
           ) -> list[BankTransaction]:
    numbers = _occurrences(dates, amounts, currencies, descriptions, counterparties, references, accounts, bank_ids)
    return from_columns(dates, amounts, currencies, descriptions, counterparties, references, accounts, balances,
                        bank_ids, [name] * len(dates), rows, numbers)


# -- decoding and format detection ---------------------------------------------------------------------------------
def _decode(data: bytes, encoding: str | None, name: str) -> tuple[str, str]:
    if encoding:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as err:
            raise BankFileError(f"{name}: not {encoding} text ({err.reason} at byte {err.start})") from err
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, errors="replace"), codec
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"   # every byte is a latin-1 character


def _not_a_bank_export(data: bytes, name: str) -> None:
    head = data[:2048]
    if head.startswith(b"%PDF"):
        raise BankFileError(f"{name} is a PDF statement, not a bank export: download CSV or OFX from the bank")
    if head.startswith(b"PK\x03\x04"):
        raise BankFileError(f"{name} is a spreadsheet or archive (zip), not a bank export: save it as CSV")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BankFileError(f"{name} is a binary file, not a bank export (CSV or OFX)")


def _is_ofx(data: bytes) -> bool:
    head = data[:4096].lstrip(codecs.BOM_UTF8 + b" \t\r\n").upper()
    return head.startswith((b"OFXHEADER", b"<OFX>")) or (head.startswith(b"<?XML") and b"<?OFX" in head)


@contextlib.contextmanager
def without_gc() -> Iterator[None]:
    """Bulk work on 100,000 rows makes a million small containers and no cycles; the cyclic collector would walk
    them again and again (a third of the parse time). Threads may nest this: the first to pause restores."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def parse_bank_file(data: bytes, name: str, *,
                    mapping: ColumnMapping | Mapping | Sequence[ColumnMapping | Mapping] | None = None) -> ParseResult:
    """The transactions of one bank export. ``mapping``: the owner's mapping (or several), tried before the
    presets; given as a ``ColumnMapping`` or as the dict from the handbook."""
    if not data.strip():
        raise BankFileError(f"{name} is empty")
    _not_a_bank_export(data, name)
    if _is_ofx(data):
        return _parse_ofx(data, name)
    with without_gc():
        return _parse_csv(data, name, _owner_mappings(mapping))


def _owner_mappings(mapping: ColumnMapping | Mapping | Sequence[ColumnMapping | Mapping] | None
                    ) -> list[ColumnMapping]:
    if mapping is None:
        return []
    if isinstance(mapping, (ColumnMapping, Mapping)):
        mapping = [mapping]
    return [m if isinstance(m, ColumnMapping) else ColumnMapping.from_dict(m) for m in mapping]


def _find_header(lines: list[str], candidates: Sequence[ColumnMapping]) -> tuple[ColumnMapping, int, str, list[str]]:
    """The first line that carries every required column of a candidate; the most specific candidate wins."""
    wanted = [(m, {_norm_header(c) for c in m.required()}) for m in candidates]
    for index, line in enumerate(lines[:HEADER_SCAN]):
        for delimiter in DELIMITERS:
            if delimiter not in line:
                continue
            cells = next(csv.reader([line], delimiter=delimiter))
            names = {_norm_header(c) for c in cells}
            fits = [(len(req), -order, m) for order, (m, req) in enumerate(wanted)
                    if req <= names and m.delimiter in (None, delimiter)]
            if fits:
                return max(fits, key=lambda fit: fit[:2])[2], index, delimiter, cells
    raise LookupError


def _unknown_header(name: str, lines: list[str], owners: Sequence[ColumnMapping]) -> BankFileError:
    first = next((line.strip() for line in lines[:HEADER_SCAN] if line.strip()), "")
    if owners:
        expected = "; ".join(f"{m.name}: {', '.join(m.required())}" for m in owners)
        return BankFileError(f"{name}: no header row in the first {HEADER_SCAN} lines has the columns of the bank "
                             f"mapping ({expected}); the file begins {first[:120]!r}")
    presets = "; ".join(f"{m.name} ({', '.join(m.required())})" for m in PRESETS)
    return BankFileError(f"{name}: not a bank export this suite recognises. Expected OFX, or a CSV whose header row "
                         f"matches a preset: {presets}. The file begins {first[:120]!r}. For another bank, declare "
                         f"its columns under bank_files: mappings: in the handbook.")


def _preamble_value(lines: list[str], label: str, delimiter: str) -> str:
    """The value under ``label`` in a key/value table above the header (Deutsche Bank's IBAN line)."""
    want = _norm_header(label)
    rows = [next(csv.reader([line], delimiter=delimiter), []) for line in lines]
    for above, below in zip(rows, rows[1:]):
        names = [_norm_header(c) for c in above]
        if want in names and names.index(want) < len(below):
            return below[names.index(want)].strip()
    return ""


def _parse_csv(data: bytes, name: str, owners: list[ColumnMapping]) -> ParseResult:
    encodings = {m.encoding for m in owners if m.encoding}
    text, encoding = _decode(data, encodings.pop() if len(encodings) == 1 else None, name)
    lines = text.split("\n", HEADER_SCAN)
    lines = [line.rstrip("\r") for line in lines[:HEADER_SCAN]] + lines[HEADER_SCAN:]
    try:
        mapping, header_at, delimiter, header = _find_header(lines, [*owners, *PRESETS])
    except LookupError:
        raise _unknown_header(name, lines, owners) from None
    result = ParseResult([], "csv", mapping.name, encoding=encoding)
    columns = {_norm_header(c): i for i, c in reversed(list(enumerate(header)))}  # first of two equal names wins

    def col(column: str | None) -> int | None:
        index = columns.get(_norm_header(column)) if column else None
        if column and index is None and mapping not in PRESETS:  # presets name columns that older exports lack
            result.warnings.append(f"{name}: column {column!r} of mapping {mapping.name!r} is not in the file")
        return index

    index = {f: col(getattr(mapping, f)) for f in _COLUMN_FIELDS}
    if index["date"] is None or all(index[f] is None for f in ("amount", "debit", "credit")):
        raise BankFileError(f"{name}: the date or amount column of mapping {mapping.name!r} is missing")
    described = [i for i in map(col, mapping.description) if i is not None]
    account = mapping.default_account
    if mapping.preamble_account:
        account = _preamble_value(lines[:header_at], mapping.preamble_account, delimiter) or account
    offset = sum(len(line) + 1 for line in text.split("\n", header_at + 1)[:header_at + 1])
    rows, line_of = _records(text[offset:], mapping, delimiter, header_at + 1, name, result)
    _read_rows(rows, line_of, mapping, index, described, account, header, name, result)
    return result


def _records(body: str, mapping: ColumnMapping, delimiter: str, first_line: int, name: str,
             result: ParseResult) -> tuple[list[list[str]], Sequence[int]]:
    """Every record below the header, and the line each begins on."""
    def reader() -> Any:
        return csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, quotechar=mapping.quotechar or '"',
                          quoting=csv.QUOTE_MINIMAL if mapping.quotechar else csv.QUOTE_NONE)

    fast = reader()
    rows: list[list[str]] = []
    try:
        rows.extend(fast)   # the whole file in C; line numbers follow when no record spans two lines
        if fast.line_num == len(rows):
            return rows, range(first_line + 1, first_line + 1 + len(rows))
    except csv.Error:
        pass
    slow, rows, line_of, last = reader(), [], [], 0
    while True:
        try:
            for row in slow:
                rows.append(row)
                line_of.append(first_line + last + 1)
                last = slow.line_num
            return rows, line_of
        except csv.Error as err:   # a field over the size limit: that record goes, reading goes on
            result.skipped += 1
            result.warnings.append(f"{name} line {first_line + last + 1}: skipped, not CSV ({err})")
            last = slow.line_num


class _Skips:
    """Counts the rows left out and names the first MAX_WARNINGS of them."""

    def __init__(self, name: str, result: ParseResult) -> None:
        self.name, self.result, self.listed = name, result, 0

    def row(self, line: int, why: str) -> None:
        self.result.skipped += 1
        if self.listed < MAX_WARNINGS:
            self.listed += 1
            self.result.warnings.append(f"{self.name} line {line}: skipped, {why}")

    def finish(self) -> None:
        if self.result.skipped > self.listed == MAX_WARNINGS:
            self.result.warnings.append(f"{self.name}: {self.result.skipped} rows skipped in all, the first "
                                        f"{self.listed} are listed")


def _usable(rows: list[list[str]], line_of: Sequence[int], mapping: ColumnMapping, index: dict[str, int | None],
            needed: int, header: list[str], skips: _Skips) -> tuple[list[list[str]], Sequence[int]]:
    """The rows that can be transactions: no blank lines, footers, short rows, or rows with a status left out."""
    skip_first = {c.casefold() for c in mapping.skip_first_cells}
    drop = {i for i, row in enumerate(rows) if row and row[0].strip().casefold() in skip_first} if skip_first \
        else set()
    if rows and min(map(len, rows)) < needed:
        for i, row in enumerate(rows):
            if len(row) < needed and i not in drop:
                drop.add(i)
                if len(row) > 1 or (row and row[0].strip()):   # a blank line is no row
                    skips.row(line_of[i], f"{len(row)} fields where the header has {len(header)}")
    if drop:
        line_of = [line for i, line in enumerate(line_of) if i not in drop]
        rows = [row for i, row in enumerate(rows) if i not in drop]
    i_status = index["status"]
    if i_status is not None and rows:
        ok = {c.casefold() for c in mapping.status_ok}
        cells = [row[i_status] for row in rows]
        good = {c: c.strip().casefold() in ok for c in set(cells)}
        if not all(good.values()):
            keep = list(map(good.__getitem__, cells))
            left_out = keep.count(False)
            rows, line_of = list(compress(rows, keep)), list(compress(line_of, keep))
            skips.result.skipped += left_out
            skips.result.warnings.append(f"{skips.name}: {left_out} rows left out, their {mapping.status} is not "
                                         f"{' or '.join(mapping.status_ok)} (pending or reverted)")
    return rows, line_of


def _signed_amounts(cols: dict[int, Sequence[str]], index: dict[str, int | None], mapping: ColumnMapping, n: int
                    ) -> tuple[list, list, dict[str, dict[str, str]]]:
    """(amounts, balances, failed cells by field): money in > 0 whichever way the bank writes it. None where a
    row has no usable amount."""
    failed: dict[str, dict[str, str]] = {}
    parsed: dict[str, list] = {}
    for f in ("amount", "debit", "credit", "fee", "balance"):
        if index[f] is not None:
            parsed[f], failed[f] = _amount_values(cols[index[f]], mapping)
    nothing = [None] * n
    amounts = parsed.get("amount", nothing)
    if index["direction"] is not None:
        debit_words = {w.casefold() for w in mapping.debit_values}
        credit_words = {w.casefold() for w in mapping.credit_values}
        ways = {c: -1 if c.strip().casefold() in debit_words else 1 if c.strip().casefold() in credit_words else 0
                for c in set(cols[index["direction"]])}
        failed["direction"] = {c: f"{c.strip()!r} is neither debit nor credit" for c, way in ways.items() if not way}
        amounts = [None if a is None or not w else abs(a) if w > 0 else -abs(a)
                   for a, w in zip(amounts, map(ways.__getitem__, cols[index["direction"]]))]
    if "debit" in parsed or "credit" in parsed:   # the older Deutsche Bank export: Betrag empty, Soll or Haben
        amounts = [a if a is not None else None if d is None and c is None
                   else (_ZERO if c is None else c) - abs(_ZERO if d is None else d)
                   for a, d, c in zip(amounts, parsed.get("debit", nothing), parsed.get("credit", nothing))]
    if "fee" in parsed:
        amounts = [a - f if a is not None and f else a for a, f in zip(amounts, parsed["fee"])]
    if mapping.invert_sign:
        amounts = [None if a is None else -a for a in amounts]
    return amounts, parsed.get("balance", nothing), failed


def _read_rows(rows: list[list[str]], line_of: Sequence[int], mapping: ColumnMapping, index: dict[str, int | None],
               described: list[int], account: str, header: list[str], name: str, result: ParseResult) -> None:
    """Column by column: each step is one pass in C (map, zip, set) or one per distinct value, never per-row
    Python with branches."""
    skips = _Skips(name, result)
    used = sorted({i for i in (*index.values(), *described) if i is not None})
    rows, line_of = _usable(rows, line_of, mapping, index, used[-1] + 1, header, skips)
    if not rows:
        skips.finish()
        return
    # one C pass turns the rows into the columns used (itemgetter of one index gives a cell, not a tuple)
    cols = dict(zip(used, zip(*map(itemgetter(*used), rows)))) if len(used) > 1 else \
        {used[0]: [row[used[0]] for row in rows]}
    n = len(rows)
    dates, date_errors = _column_values(cols[index["date"]], _date_parser(mapping.date_formats))
    amounts, balances, failed = _signed_amounts(cols, index, mapping, n)
    failed = {"date": date_errors, **failed}
    # all() first: "None in amounts" would call Decimal.__eq__(None) 100,000 times; a zero amount is falsy too
    bad = set() if all(amounts) else {i for i, a in enumerate(amounts) if a is None}
    for f, errors in failed.items():
        if errors:
            bad.update(i for i, c in enumerate(cols[index[f]]) if c in errors)
    if bad:
        plain_header = [c.strip() for c in header]
        for i in sorted(bad):
            if [c.strip() for c in rows[i]] != plain_header:   # the header again: an export of several accounts
                why = [errors[cols[index[f]][i]] for f, errors in failed.items() if cols[index[f]][i] in errors]
                skips.row(line_of[i], why[0] if why else "no amount")

    def texts(f: str, few: bool = False) -> list[str]:
        return _texts(cols[index[f]], mapping.text_prefix, few=few) if index[f] is not None else [""] * n

    parts = [_texts(cols[i], mapping.text_prefix) for i in described]
    descriptions = parts[0] if len(parts) == 1 else [" ".join(filter(None, p)) for p in zip(*parts)] if parts \
        else [""] * n
    references = texts("reference")
    if NO_REFERENCE & {r.casefold() for r in set(references)}:
        references = ["" if r.casefold() in NO_REFERENCE else r for r in references]
    currencies = texts("currency", few=True)
    upper = {c: c.upper() or mapping.default_currency for c in set(currencies)}
    accounts = texts("account", few=True) if index["account"] is not None else [account] * n
    if not all(accounts):
        accounts = [a or account for a in accounts]
    bank_ids = [b or None for b in texts("bank_id")] if index["bank_id"] is not None else [None] * n
    columns = [dates, amounts, list(map(upper.__getitem__, currencies)), descriptions, texts("counterparty"),
               references, accounts, balances, bank_ids, list(line_of)]
    if bad:
        keep = [i not in bad for i in range(n)]
        columns = [list(compress(c, keep)) for c in columns]
    if columns[0]:
        result.transactions = _build(name, *columns)
    skips.finish()


# -- OFX ------------------------------------------------------------------------------------------------------------
_OFX1_HEADER = (b"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\n"
                b"CHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n")


def _parse_ofx(data: bytes, name: str) -> ParseResult:
    # ofxtools reads the header (v1 SGML or v2 XML, its charset) and builds the element tree. Its typed
    # convert() is not used: it rejects what real banks send (a NAME over 32 characters, a missing SONRS field)
    # and turns DTPOSTED into UTC, which can move a transaction to the day before.
    from ofxtools.Parser import OFXTree  # noqa: PLC0415  (only OFX files pay for importing it)

    tree = OFXTree()
    body = data.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    if body[:5].upper() == b"<OFX>":  # some banks leave out the header that ofxtools insists on
        body = _OFX1_HEADER + body
    try:
        root = tree.parse(io.BytesIO(body))
    except Exception as err:  # noqa: BLE001  (a third-party parser on outside input: any failure is a bad file)
        raise BankFileError(f"{name}: not a readable OFX file ({type(err).__name__}: {str(err)[:200]})") from err
    version = int(getattr(tree.header, "version", 100) or 100)
    result = ParseResult([], "ofx", f"ofx{version // 100}", encoding=getattr(tree.header, "codec", "") or "")
    _read_ofx_tree(root, name, result)
    if not result.transactions and not any(el.tag in ("STMTRS", "CCSTMTRS") for el in root.iter()):
        raise BankFileError(f"{name}: an OFX file without a bank or card statement (STMTRS / CCSTMTRS)")
    return result


def _read_ofx_tree(root: ET.Element, name: str, result: ParseResult) -> None:
    """STMTTRN records of every bank and card statement in the tree."""
    record = 0
    for statement in root.iter():
        if statement.tag not in ("STMTRS", "CCSTMTRS"):
            continue
        curdef = (statement.findtext("CURDEF") or "").strip().upper()
        account_el = statement.find("BANKACCTFROM")
        if account_el is None:
            account_el = statement.find("CCACCTFROM")
        account = (account_el.findtext("ACCTID") or "").strip() if account_el is not None else ""
        parsed: list[tuple] = []
        for trn in statement.iter("STMTTRN"):
            record += 1

            def get(path: str) -> str:
                return _clean(html.unescape((trn.findtext(path) or "").strip()))

            try:
                posted = get("DTPOSTED")
                # The date as the bank wrote it: "20260105000000[-5:EST]" converted to UTC would be the 4th.
                day = date(int(posted[0:4]), int(posted[4:6]), int(posted[6:8]))
                amount_text = get("TRNAMT").replace(",", ".")   # some European banks write a decimal comma
                if not _NUMBER.fullmatch(amount_text):
                    raise ValueError(f"TRNAMT {amount_text!r} is not a number")
                amount = Decimal(amount_text)
            except ValueError as err:
                result.skipped += 1
                if len(result.warnings) < MAX_WARNINGS:
                    result.warnings.append(f"{name} transaction {record}: skipped, {err}")
                continue
            # <CURRENCY> means TRNAMT is in that currency; <ORIGCURRENCY> means it was converted into CURDEF.
            currency = get("CURRENCY/CURSYM").upper() or curdef
            counterparty = get("NAME") or get("PAYEE/NAME")
            description, reference = get("MEMO"), get("CHECKNUM") or get("REFNUM")
            parsed.append((day, amount, currency, description, counterparty, reference, account, None,
                           get("FITID") or None, record))
        if parsed:
            result.transactions.extend(_build(name, *map(list, zip(*parsed))))
