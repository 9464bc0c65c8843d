"""Finding a CSV export's header row among its first lines, and a value in the preamble above it."""
from __future__ import annotations

import csv
from typing import Sequence

from odoo_integration.bank_files.mapping import DELIMITERS, ColumnMapping
from odoo_integration.bank_files.presets import PRESETS
from odoo_integration.bank_files.result import BankFileError

HEADER_SCAN = 30     # lines searched for the header row: banks put an account preamble above it


def norm_header(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").strip().strip("'\"").split()).casefold()


def find_header(lines: list[str], candidates: Sequence[ColumnMapping]) -> tuple[ColumnMapping, int, str, list[str]]:
    """The first line that carries every required column of a candidate; the most specific candidate wins."""
    wanted = [(m, {norm_header(c) for c in m.required()}) for m in candidates]
    for index, line in enumerate(lines[:HEADER_SCAN]):
        for delimiter in DELIMITERS:
            if delimiter not in line:
                continue
            cells = next(csv.reader([line], delimiter=delimiter))
            names = {norm_header(c) for c in cells}
            fits = [(len(req), -order, m) for order, (m, req) in enumerate(wanted)
                    if req <= names and m.delimiter in (None, delimiter)]
            if fits:
                return max(fits, key=lambda fit: fit[:2])[2], index, delimiter, cells
    raise LookupError


def unknown_header(name: str, lines: list[str], owners: Sequence[ColumnMapping]) -> BankFileError:
    first = next((line.strip() for line in lines[:HEADER_SCAN] if line.strip()), "")
    if owners:
        expected = "; ".join(f"{m.name}: {', '.join(m.required())}" for m in owners)
        return BankFileError(f"{name}: no header row in the first {HEADER_SCAN} lines has the columns of the bank "
                             f"mapping ({expected}); the file begins {first[:120]!r}")
    presets = "; ".join(f"{m.name} ({', '.join(m.required())})" for m in PRESETS)
    return BankFileError(f"{name}: not a bank export this suite recognises. Expected OFX, or a CSV whose header row "
                         f"matches a preset: {presets}. The file begins {first[:120]!r}. For another bank, declare "
                         f"its columns under bank_files: mappings: in the handbook.")


def preamble_value(lines: list[str], label: str, delimiter: str) -> str:
    """The value under ``label`` in a key/value table above the header (Deutsche Bank's IBAN line)."""
    want = norm_header(label)
    rows = [next(csv.reader([line], delimiter=delimiter), []) for line in lines]
    for above, below in zip(rows, rows[1:]):
        names = [norm_header(c) for c in above]
        if want in names and names.index(want) < len(below):
            return below[names.index(want)].strip()
    return ""
