"""parse_bank_file(): the entry. Refuses what is no bank export (empty, PDF, zip, binary), hands OFX to the OFX
reader and everything else to the CSV reader with the owner's mappings."""
from __future__ import annotations

import codecs
from typing import Mapping, Sequence

from odoo_integration.bank_files.csv_reader import parse_csv
from odoo_integration.bank_files.gc_pause import without_gc
from odoo_integration.bank_files.mapping import ColumnMapping, owner_mappings
from odoo_integration.bank_files.ofx_reader import parse_ofx
from odoo_integration.bank_files.result import BankFileError, ParseResult


def parse_bank_file(data: bytes, name: str, *,
                    mapping: ColumnMapping | Mapping | Sequence[ColumnMapping | Mapping] | None = None) -> ParseResult:
    """The transactions of one bank export. ``mapping``: the owner's mapping (or several), tried before the
    presets; given as a ``ColumnMapping`` or as the dict from the handbook."""
    if not data.strip():
        raise BankFileError(f"{name} is empty")
    _not_a_bank_export(data, name)
    if _is_ofx(data):
        return parse_ofx(data, name)
    with without_gc():
        return parse_csv(data, name, owner_mappings(mapping))


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
