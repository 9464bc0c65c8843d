"""The Odoo server's tool inputs and outputs (DESIGN §11). Amounts are numbers in the company
currency unless a record says otherwise; dates are ISO dates."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_servers.tools import ToolInput

REFERENCE = r"^[A-Za-z0-9][A-Za-z0-9 _./#:-]{0,63}$"


class FinancialRecordsInput(ToolInput):
    kind: Literal["invoices", "bills", "credit_notes", "payments"] = Field(description="Which records.")
    state: Literal["draft", "posted", "cancel"] | None = Field(None, description="Only records in this state.")
    partner: str | None = Field(None, max_length=200, description="Only this partner's (name contains this).")
    date_from: dt.date | None = Field(None, description="Dated on or after (invoice date, or payment date).")
    date_to: dt.date | None = Field(None, description="Dated on or before.")
    limit: int = Field(50, ge=1, le=500, description="Records per page.")
    offset: int = Field(0, ge=0, description="Records to skip (for the next page).")


class OutstandingInput(ToolInput):
    partner: str | None = Field(None, max_length=200, description="Only this customer's (name contains this).")
    as_of: dt.date | None = Field(None, description="The day ageing is counted to; default today.")


class MonthlyRevenueInput(ToolInput):
    months: int = Field(12, ge=1, le=36, description="How many months back, this one included.")


class FindPartnersInput(ToolInput):
    name: str | None = Field(None, max_length=200, description="The partner's exact name.")
    email: str | None = Field(None, max_length=254, description="The partner's email (any case).")


class InvoiceLine(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    description: str = Field(min_length=1, max_length=500, description="What was sold.")
    quantity: float = Field(gt=0, le=1_000_000, description="How many (hours, days, items).")
    unit_price: float = Field(ge=0, le=100_000_000, description="Price per unit, before tax.")


class InvoiceFields(ToolInput):
    reference: str = Field(pattern=REFERENCE, description="Unique reference kept on the invoice (Odoo's ref): "
                                                            "the same reference never makes a second invoice.")
    partner: str = Field(min_length=1, max_length=200, description="The customer: their email, or their name "
                                                                   "exactly as Odoo has it.")
    lines: list[InvoiceLine] = Field(min_length=1, max_length=100, description="The invoice lines.")
    invoice_date: dt.date | None = Field(None, description="Invoice date; default: Odoo's (today, when posted).")
    due_date: dt.date | None = Field(None, description="Due date; default: from the payment terms.")


class CreateInvoiceInput(InvoiceFields):
    pass


class InvoiceItem(InvoiceFields):
    """One invoice of a sync_invoices call (the same fields as create_invoice)."""


class SyncInvoicesInput(ToolInput):
    invoices: list[InvoiceItem] = Field(min_length=1, max_length=100, description="The invoices to have in Odoo.")


class PostInvoiceInput(ToolInput):
    invoice: int | str = Field(description="The draft invoice: its id, or its number.")


class RegisterPaymentInput(ToolInput):
    invoice: int | str = Field(description="The posted invoice: its id, or its number (INV/2026/00012).")
    amount: float = Field(gt=0, le=100_000_000, description="The amount received.")
    date: dt.date | None = Field(None, description="Payment date; default today.")
    journal: int | None = Field(None, description="Bank or cash journal id; default the first bank journal.")


_NUM, _TEXT, _MAYBE_TEXT = {"type": "number"}, {"type": "string"}, {"type": ["string", "null"]}
SCOPE = {"type": "object", "properties": {"companies": {"type": "array", "items": _TEXT}, "company": _TEXT,
                                          "currency": _TEXT}}
RECORDS_SCHEMA = {"type": "object", "properties": {"records": {"type": "array", "items": {"type": "object"}},
                                                   "total": {"type": "integer"}, "scope": SCOPE},
                  "required": ["records", "total"]}
OUTSTANDING_SCHEMA = {
    "type": "object",
    "properties": {
        "invoices": {"type": "array", "items": {"type": "object", "properties": {
            "number": _MAYBE_TEXT, "partner": _MAYBE_TEXT, "invoice_date": _MAYBE_TEXT, "due_date": _MAYBE_TEXT,
            "amount_total": _NUM, "amount_residual": _NUM, "currency": _MAYBE_TEXT,
            "days_overdue": {"type": "integer"}, "bucket": {"enum": ["current", "1-30", "31-60", "61-90", "90+"]}}}},
        "total_residual": _NUM, "overdue_residual": _NUM,
        "by_bucket": {"type": "object", "properties": {k: _NUM for k in ("current", "1-30", "31-60", "61-90", "90+")}},
        "currency": _TEXT, "in_payment": {"type": "object"}, "scope": SCOPE,
    },
    "required": ["invoices", "total_residual", "overdue_residual", "by_bucket", "currency"],
}
REVENUE_SCHEMA = {
    "type": "object",
    "properties": {"months": {"type": "array", "items": {"type": "object", "properties": {
        "month": _TEXT, "untaxed": _NUM, "total": _NUM, "invoices": {"type": "integer"},
        "credit_notes": {"type": "integer"}}}}, "currency": _TEXT, "scope": SCOPE},
    "required": ["months", "currency"],
}
PARTNERS_SCHEMA = {"type": "object", "properties": {"partners": {"type": "array", "items": {"type": "object"}}},
                   "required": ["partners"]}
INVOICE_SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "number": _MAYBE_TEXT, "state": _TEXT,
                                                   "reference": _MAYBE_TEXT, "partner": _MAYBE_TEXT,
                                                   "amount_total": {"type": ["number", "null"]}},
                  "required": ["id", "state"]}
SYNC_SCHEMA = {"type": "object", "properties": {"created": {"type": "array", "items": INVOICE_SCHEMA},
                                                "existing": {"type": "array", "items": INVOICE_SCHEMA}},
               "required": ["created", "existing"]}
POSTED_SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "number": _TEXT, "state": _TEXT},
                 "required": ["id", "number", "state"]}
PAYMENT_SCHEMA = {"type": "object", "properties": {"payment_id": {"type": ["integer", "null"]},
                                                   "payment_state": _MAYBE_TEXT, "invoice": _TEXT},
                  "required": ["payment_id", "payment_state"]}
