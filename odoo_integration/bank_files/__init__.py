"""Bank exports (CSV from the common banks, OFX 1.x and 2.x) parsed into transactions.

``parse_bank_file(data, name)`` reads the bytes of one export and answers a ``ParseResult``. A CSV file is
recognised by its header row (searched in the first lines, below any preamble the bank writes) against the
presets; an export of another shape needs a ``ColumnMapping``, which the owner declares in the handbook's YAML
block (its settings are described in ``mapping.py``).

Presets (``PRESETS``): natwest (UK), deutsche_bank (DE, also Postbank), ing_nl (NL), revolut, capital_one (US).
The header row must hold every column of a preset's ``detect``; when several fit, the one naming most columns
wins, and the owner's mappings are tried with the presets. OFX is read with ofxtools (``ofx_reader.py``).
``BankTransaction.key`` makes overlapping exports of one account store each transaction once
(``transaction.py``).

Bad rows are skipped with a warning naming the row; a file that is not a bank export raises ``BankFileError``.
Speed matters (100,000 rows well under a second): the csv module does the splitting, the work runs column by
column in C (map, zip, set), dates and amounts are parsed once per distinct string, nothing is compiled per row.

The parts, one job each:
    parse.py         parse_bank_file(): refuses what is no bank export, hands the rest to a reader
    result.py        ParseResult and BankFileError
    transaction.py   BankTransaction, its key, and transactions to and from columns
    occurrences.py   the transactions of a file built from its columns, identical rows of a day numbered
    mapping.py       ColumnMapping: where an export keeps each field, and its dict form in the handbook
    presets.py       the mappings of the common banks
    header.py        finding the header row (and a value in the preamble above it)
    values.py        amounts, dates and texts of a column, each distinct cell parsed once
    csv_reader.py    a CSV export decoded and split into the records below its header
    csv_rows.py      those records turned into transactions, column by column
    ofx_reader.py    OFX through ofxtools
    gc_pause.py      without_gc(): the cyclic garbage collector paused for bulk work
"""
from odoo_integration.bank_files.csv_rows import NO_REFERENCE
from odoo_integration.bank_files.gc_pause import without_gc
from odoo_integration.bank_files.mapping import ColumnMapping
from odoo_integration.bank_files.parse import parse_bank_file
from odoo_integration.bank_files.presets import PRESETS
from odoo_integration.bank_files.result import BankFileError, ParseResult
from odoo_integration.bank_files.transaction import (FIELDS, BankTransaction, from_columns, to_columns,
                                                     transaction_keys)

__all__ = ["FIELDS", "NO_REFERENCE", "PRESETS", "BankFileError", "BankTransaction", "ColumnMapping", "ParseResult",
           "from_columns", "parse_bank_file", "to_columns", "transaction_keys", "without_gc"]
