"""OFX 1.x (SGML) and 2.x (XML) statements read with ofxtools: STMTTRN records with FITID as ``bank_id``, the
account from BANKACCTFROM or CCACCTFROM, the currency from CURDEF."""
from __future__ import annotations

import codecs
import html
import io
import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

from odoo_integration.bank_files.occurrences import build_transactions
from odoo_integration.bank_files.result import MAX_WARNINGS, BankFileError, ParseResult
from odoo_integration.bank_files.values import NUMBER, clean_text

_OFX1_HEADER = (b"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\n"
                b"CHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n")


def parse_ofx(data: bytes, name: str) -> ParseResult:
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
                return clean_text(html.unescape((trn.findtext(path) or "").strip()))

            try:
                posted = get("DTPOSTED")
                # The date as the bank wrote it: "20260105000000[-5:EST]" converted to UTC would be the 4th.
                day = date(int(posted[0:4]), int(posted[4:6]), int(posted[6:8]))
                amount_text = get("TRNAMT").replace(",", ".")   # some European banks write a decimal comma
                if not NUMBER.fullmatch(amount_text):
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
            result.transactions.extend(build_transactions(name, *map(list, zip(*parsed))))
