"""A CSV export decoded, its header found, and split into the records below it (csv_rows makes them transactions)."""
from __future__ import annotations

import codecs
import csv
import io
from typing import Any, Sequence

from odoo_integration.bank_files.csv_rows import read_rows
from odoo_integration.bank_files.header import HEADER_SCAN, find_header, norm_header, preamble_value, unknown_header
from odoo_integration.bank_files.mapping import COLUMN_FIELDS, ColumnMapping
from odoo_integration.bank_files.presets import PRESETS
from odoo_integration.bank_files.result import BankFileError, ParseResult


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


def parse_csv(data: bytes, name: str, owners: list[ColumnMapping]) -> ParseResult:
    encodings = {m.encoding for m in owners if m.encoding}
    text, encoding = _decode(data, encodings.pop() if len(encodings) == 1 else None, name)
    lines = text.split("\n", HEADER_SCAN)
    lines = [line.rstrip("\r") for line in lines[:HEADER_SCAN]] + lines[HEADER_SCAN:]
    try:
        mapping, header_at, delimiter, header = find_header(lines, [*owners, *PRESETS])
    except LookupError:
        raise unknown_header(name, lines, owners) from None
    result = ParseResult([], "csv", mapping.name, encoding=encoding)
    columns = {norm_header(c): i for i, c in reversed(list(enumerate(header)))}  # first of two equal names wins

    def col(column: str | None) -> int | None:
        index = columns.get(norm_header(column)) if column else None
        if column and index is None and mapping not in PRESETS:  # presets name columns that older exports lack
            result.warnings.append(f"{name}: column {column!r} of mapping {mapping.name!r} is not in the file")
        return index

    index = {f: col(getattr(mapping, f)) for f in COLUMN_FIELDS}
    if index["date"] is None or all(index[f] is None for f in ("amount", "debit", "credit")):
        raise BankFileError(f"{name}: the date or amount column of mapping {mapping.name!r} is missing")
    described = [i for i in map(col, mapping.description) if i is not None]
    account = mapping.default_account
    if mapping.preamble_account:
        account = preamble_value(lines[:header_at], mapping.preamble_account, delimiter) or account
    offset = sum(len(line) + 1 for line in text.split("\n", header_at + 1)[:header_at + 1])
    rows, line_of = _records(text[offset:], mapping, delimiter, header_at + 1, name, result)
    read_rows(rows, line_of, mapping, index, described, account, header, name, result)
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
