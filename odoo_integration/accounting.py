"""The figures an accountant would sign, computed in Odoo (search_read, read_group), never one call
per record: receivables with their ageing, monthly revenue, and the records behind them.

Rules (issue 8): only posted moves count; customer invoices and credit notes are ``out_invoice`` and
``out_refund``; outstanding = posted with ``payment_state`` not_paid or partial (``in_payment`` shown
apart; reversed and cancelled excluded); amounts in the company currency (``*_signed``, a credit
note negative); revenue by accounting month (``date``), untaxed and taxed. Every answer states its
scope: the companies it covers and their currency.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from odoo_integration.connector import OdooConnector, m2o_id, m2o_name

CUSTOMER_MOVES = ["out_invoice", "out_refund"]
OPEN = ["not_paid", "partial"]
IN_PAYMENT = "in_payment"
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
KINDS = {"invoices": ("account.move", ["out_invoice"]), "credit_notes": ("account.move", ["out_refund"]),
         "bills": ("account.move", ["in_invoice", "in_refund"]), "payments": ("account.payment", None)}
MOVE_FIELDS = ["name", "ref", "move_type", "state", "payment_state", "partner_id", "invoice_date", "invoice_date_due",
               "date", "amount_untaxed_signed", "amount_total_signed", "amount_residual_signed", "currency_id",
               "company_id"]
PAYMENT_FIELDS = ["name", "date", "amount", "currency_id", "partner_id", "payment_type", "state", "company_id"]


def bucket(days_overdue: int) -> str:
    if days_overdue <= 0:
        return "current"
    if days_overdue <= 30:
        return "1-30"
    if days_overdue <= 60:
        return "31-60"
    if days_overdue <= 90:
        return "61-90"
    return "90+"


def scope(odoo: OdooConnector) -> dict[str, Any]:
    """Which companies an answer covers, and the currency its ``*_signed`` amounts are in."""
    main = odoo.company_currency()
    return {"companies": [c["name"] for c in odoo.companies()], "company": main["company"],
            "currency": main["currency"]}


def _partner_leaf(partner: str | None) -> list:
    return [("partner_id.name", "ilike", partner.strip())] if partner and partner.strip() else []


def outstanding(odoo: OdooConnector, *, partner: str | None = None, as_of: dt.date | None = None) -> dict[str, Any]:
    """What customers owe, invoice by invoice, with ageing buckets (days past the due date)."""
    as_of = as_of or dt.date.today()
    base = [("move_type", "in", CUSTOMER_MOVES), ("state", "=", "posted"), *_partner_leaf(partner)]
    # One search for the open moves and those in payment (shown apart): one round trip, not a search and a sum.
    rows = odoo.search_read("account.move", [*base, ("payment_state", "in", [*OPEN, IN_PAYMENT])], MOVE_FIELDS,
                            order="invoice_date_due, name")
    paying = [row for row in rows if row.get("payment_state") == IN_PAYMENT]
    invoices, by_bucket = [], dict.fromkeys(BUCKETS, 0.0)
    for row in (r for r in rows if r.get("payment_state") != IN_PAYMENT):
        due = _date(row.get("invoice_date_due")) or _date(row.get("invoice_date"))
        days = (as_of - due).days if due else 0
        residual = float(row.get("amount_residual_signed") or 0.0)
        invoices.append({"number": row.get("name"), "partner": m2o_name(row.get("partner_id")),
                         "invoice_date": row.get("invoice_date") or None, "due_date": row.get("invoice_date_due") or None,
                         "amount_total": float(row.get("amount_total_signed") or 0.0), "amount_residual": residual,
                         "currency": m2o_name(row.get("currency_id")), "days_overdue": max(0, days),
                         "bucket": bucket(days), "move_type": row.get("move_type"),
                         "payment_state": row.get("payment_state")})
        by_bucket[bucket(days)] += residual
    total = sum(by_bucket.values())
    where = scope(odoo)
    return {"invoices": invoices, "total_residual": round(total, 2),
            "overdue_residual": round(total - by_bucket["current"], 2),
            "by_bucket": {k: round(v, 2) for k, v in by_bucket.items()}, "currency": where["currency"],
            "in_payment": {"invoices": len(paying), "amount": round(_numeric_sum(
                row.get("amount_total_signed") for row in paying), 2)},
            "as_of_date": as_of.isoformat(), "scope": where}


def monthly_revenue(odoo: OdooConnector, *, months: int = 12, today: dt.date | None = None) -> dict[str, Any]:
    """Posted customer invoices minus credit notes, by accounting month, for the last ``months``."""
    today = today or dt.date.today()
    first = _month_start(today, months - 1)
    groups = odoo.read_group(
        "account.move", [("move_type", "in", CUSTOMER_MOVES), ("state", "=", "posted"), ("date", ">=", first.isoformat()),
                         ("date", "<=", today.isoformat())],
        ["date:month", "move_type"], ["amount_untaxed_signed:sum", "amount_total_signed:sum"])
    by_month = {_month_start(today, back).strftime("%Y-%m"): {"untaxed": 0.0, "total": 0.0, "invoices": 0,
                                                              "credit_notes": 0}
                for back in range(months - 1, -1, -1)}
    for group in groups:
        month = by_month.get(str(group["groups"].get("date:month")))
        if month is None:
            continue
        month["untaxed"] += float(group["aggregates"].get("amount_untaxed_signed:sum") or 0.0)
        month["total"] += float(group["aggregates"].get("amount_total_signed:sum") or 0.0)
        month["invoices" if group["groups"].get("move_type") == "out_invoice" else "credit_notes"] += group["count"]
    where = scope(odoo)
    return {"months": [{"month": m, **{k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}}
                       for m, figures in by_month.items()],
            "currency": where["currency"], "scope": where}


def records(odoo: OdooConnector, *, kind: str, state: str | None = None, partner: str | None = None,
            date_from: dt.date | None = None, date_to: dt.date | None = None, limit: int = 50,
            offset: int = 0) -> dict[str, Any]:
    """One page of invoices, bills, credit notes or payments, newest first, and how many there are."""
    model, move_types = KINDS[kind]
    date_field = "invoice_date" if model == "account.move" else "date"
    domain: list = [("move_type", "in", move_types)] if move_types else []
    domain += [("state", "=", state)] if state else []
    domain += _partner_leaf(partner)
    domain += [(date_field, ">=", date_from.isoformat())] if date_from else []
    domain += [(date_field, "<=", date_to.isoformat())] if date_to else []
    fields = MOVE_FIELDS if model == "account.move" else PAYMENT_FIELDS
    rows = odoo.search_read(model, domain, fields, order=f"{date_field} desc, id desc", limit=limit, offset=offset)
    total = odoo.search_count(model, domain)
    return {"records": [_flat(row) for row in rows], "total": total, "kind": kind, "scope": scope(odoo)}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """Many2one pairs as names (and ids), Odoo's False as None: what a reader expects."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], int):
            out[key.removesuffix("_id")] = m2o_name(value)
            out[key] = m2o_id(value)
        else:
            out[key] = None if value is False else value
    return out


def _numeric_sum(values: Any) -> float:
    """What Odoo's SUM over a numeric column gives: the exact decimal sum of the amounts, then a float."""
    return float(sum((Decimal(repr(float(v or 0.0))) for v in values), Decimal(0)))


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _month_start(today: dt.date, back: int) -> dt.date:
    month = today.year * 12 + today.month - 1 - back
    return dt.date(month // 12, month % 12 + 1, 1)
