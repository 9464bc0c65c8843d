"""What parsing a bank export answers (ParseResult), and the error of a file that is not one."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import ValidationError
from odoo_integration.bank_files.transaction import BankTransaction

MAX_WARNINGS = 20    # a file of 100,000 bad rows must not make 100,000 warnings


class BankFileError(ValidationError):
    """The file is not a bank export bank_files can read; the message says what was expected."""


@dataclass
class ParseResult:
    transactions: list[BankTransaction]
    format: str                  # "csv" or "ofx"
    preset: str                  # the mapping's name for CSV, "ofx1" / "ofx2" for OFX
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0             # rows not turned into transactions (bad, pending, ...)
    encoding: str = ""
