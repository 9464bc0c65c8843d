"""The records of a CSV export turned into transactions, column by column: each step is one pass in C (map, zip,
set) or one per distinct value. Rows that cannot be transactions are skipped with a warning naming the line."""
from __future__ import annotations

from itertools import compress
from operator import itemgetter
from typing import Sequence

from odoo_integration.bank_files.mapping import ColumnMapping
from odoo_integration.bank_files.occurrences import build_transactions
from odoo_integration.bank_files.result import MAX_WARNINGS, ParseResult
from odoo_integration.bank_files.values import ZERO, amount_values, clean_texts, column_values, date_parser

# What SEPA and MT940 write when the payer gave no reference: not a reference.
NO_REFERENCE = frozenset({"notprovided", "nonref"})


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
            parsed[f], failed[f] = amount_values(cols[index[f]], mapping)
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
                   else (ZERO if c is None else c) - abs(ZERO if d is None else d)
                   for a, d, c in zip(amounts, parsed.get("debit", nothing), parsed.get("credit", nothing))]
    if "fee" in parsed:
        amounts = [a - f if a is not None and f else a for a, f in zip(amounts, parsed["fee"])]
    if mapping.invert_sign:
        amounts = [None if a is None else -a for a in amounts]
    return amounts, parsed.get("balance", nothing), failed


def read_rows(rows: list[list[str]], line_of: Sequence[int], mapping: ColumnMapping, index: dict[str, int | None],
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
    dates, date_errors = column_values(cols[index["date"]], date_parser(mapping.date_formats))
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
        return clean_texts(cols[index[f]], mapping.text_prefix, few=few) if index[f] is not None else [""] * n

    parts = [clean_texts(cols[i], mapping.text_prefix) for i in described]
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
        result.transactions = build_transactions(name, *columns)
    skips.finish()
