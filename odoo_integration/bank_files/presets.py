"""The mappings of the common banks' CSV exports, tried after the owner's own."""
from __future__ import annotations

from odoo_integration.bank_files.mapping import ColumnMapping

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
