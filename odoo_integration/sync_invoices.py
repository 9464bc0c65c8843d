"""Invoice requests → draft customer invoices in Odoo, idempotent by the reference stored on the
move (``ref``): a retry or a crash never makes a second invoice. The customer is the one Odoo knows
by that email or exact name; an unknown or ambiguous customer is asked about, never invented."""
from __future__ import annotations

from typing import Any, Mapping

from core.errors import ValidationError
from odoo_integration.connector import OdooConnector, m2o_id, m2o_name

READ_BACK = ["name", "state", "ref", "partner_id", "amount_untaxed", "amount_total", "currency_id", "invoice_date",
             "invoice_date_due"]


def resolve_partner(odoo: OdooConnector, who: str) -> dict[str, Any]:
    """The one customer ``who`` names (an email, or a name exactly as Odoo has it)."""
    who = (who or "").strip()
    found = odoo.find_partners(email=who) if "@" in who else odoo.find_partners(name=who)
    if not found:
        raise ValidationError(f"Odoo knows no customer {'with the email' if '@' in who else 'named'} {who!r}: "
                              "add them in Odoo or correct the name, then try again; nothing was created",
                              field="partner")
    if len(found) > 1:
        raise ValidationError(f"{len(found)} contacts in Odoo match {who!r}; name the customer by their email "
                              "so the invoice goes to the right one; nothing was created", field="partner")
    return found[0]


def summary(move: Mapping[str, Any], *, created: bool) -> dict[str, Any]:
    number = move.get("name")
    return {"id": move["id"], "number": number if number and number != "/" else None, "state": move.get("state"),
            "reference": move.get("ref") or None, "partner": m2o_name(move.get("partner_id")),
            "amount_untaxed": move.get("amount_untaxed"), "amount_total": move.get("amount_total"),
            "currency": m2o_name(move.get("currency_id")), "created": created}


def existing(odoo: OdooConnector, reference: str) -> dict[str, Any] | None:
    found = odoo.find_move_by_ref(reference, "out_invoice")
    return summary(found, created=False) if found else None


def create_invoice(odoo: OdooConnector, invoice: Mapping[str, Any]) -> dict[str, Any]:
    """One draft invoice for ``invoice`` (reference, partner, lines, dates), or the one that has its reference."""
    reference = str(invoice["reference"])
    already = existing(odoo, reference)
    if already is not None:
        return already
    partner = resolve_partner(odoo, str(invoice["partner"]))
    values: dict[str, Any] = {
        "move_type": "out_invoice", "partner_id": partner["id"], "ref": reference,
        "invoice_line_ids": [(0, 0, {"name": line["description"], "quantity": line["quantity"],
                                     "price_unit": line["unit_price"]}) for line in invoice["lines"]],
    }
    if invoice.get("invoice_date"):
        values["invoice_date"] = str(invoice["invoice_date"])
    if invoice.get("due_date"):
        values["invoice_date_due"] = str(invoice["due_date"])
    move_id = odoo.create("account.move", values)
    [move] = odoo.read("account.move", [move_id], READ_BACK)
    return summary(move, created=True)


def sync_invoices(odoo: OdooConnector, invoices: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Every invoice in Odoo once: those whose reference exists are left as they are."""
    created, found = [], []
    for invoice in invoices:
        result = create_invoice(odoo, invoice)
        (created if result["created"] else found).append(result)
    return {"created": created, "existing": found}


def find_invoice(odoo: OdooConnector, invoice: int | str) -> dict[str, Any]:
    """A customer invoice by its id or its number (INV/2026/00012)."""
    domain = [("id", "=", int(invoice))] if isinstance(invoice, int) or str(invoice).isdigit() else \
        [("name", "=", str(invoice).strip())]
    rows = odoo.search_read("account.move", [*domain, ("move_type", "in", ["out_invoice", "out_refund"])],
                            READ_BACK + ["payment_state", "amount_residual", "move_type"], limit=2)
    if len(rows) != 1:
        raise ValidationError(f"Odoo has {'no' if not rows else 'more than one'} customer invoice {invoice!r}",
                              field="invoice")
    return rows[0]


def post_invoice(odoo: OdooConnector, invoice: int | str) -> dict[str, Any]:
    move = find_invoice(odoo, invoice)
    if move["state"] != "posted":
        odoo.action("account.move", "action_post", [move["id"]])
        [move] = odoo.read("account.move", [move["id"]], READ_BACK)
    return {"id": move["id"], "number": move["name"], "state": move["state"]}


def posted(odoo: OdooConnector, invoice: int | str) -> dict[str, Any] | None:
    """The reconciler of post_invoice: the invoice's answer if it is posted already."""
    move = find_invoice(odoo, invoice)
    return {"id": move["id"], "number": move["name"], "state": move["state"]} if move["state"] == "posted" else None


def register_payment(odoo: OdooConnector, invoice: int | str, amount: float, *, date: str | None = None,
                     journal: int | None = None, memo: str) -> dict[str, Any]:
    move = find_invoice(odoo, invoice)
    if move["state"] != "posted":
        raise ValidationError(f"invoice {move['name']} is {move['state']}: only a posted invoice can be paid",
                              field="invoice")
    result = odoo.register_payment(move["id"], amount, date=date, journal_id=journal, memo=memo)
    return {"payment_id": result["payment_id"], "payment_state": result["payment_state"],
            "invoice": move["name"], "amount_residual": result.get("amount_residual")}


def payment_made(odoo: OdooConnector, invoice: int | str, memo: str) -> dict[str, Any] | None:
    """The reconciler of register_payment: the payment that carries this call's unique memo."""
    payment = odoo.find_payment_by_memo(memo)
    if payment is None:
        return None
    move = find_invoice(odoo, invoice)
    return {"payment_id": payment["id"], "payment_state": move.get("payment_state"), "invoice": move["name"],
            "amount_residual": move.get("amount_residual"), "reconciled": True}


def partner_id(move: Mapping[str, Any]) -> int | None:
    return m2o_id(move.get("partner_id"))
