"""The models the fake serves, with Odoo's technical names, field names and business rules.

Field names and behaviour follow odoo/addons/account (account_move.py, account_move_line.py,
account_payment.py, wizard/account_payment_register.py) and odoo/addons/base (res_partner.py, res_currency.py):
``_compute_amount``'s sign conventions (direction_sign, *_signed amounts), ``_post``'s checks and messages,
sequence names ``INV/2026/00001`` / ``RINV/...`` / ``BILL/...`` / ``PBNK1/...``, ``_compute_payment_state``
(community answers 'paid', the accountant app 'in_payment' until the bank statement matches the payment),
the payment register wizard's default_get checks and ``action_create_payments``' return value.
"""
from __future__ import annotations

import re
from typing import Any

from .errors import UserError, ValidationError
from .orm import BaseModel, Field as F, fields, float_round, rpc

SALE = ("out_invoice", "out_refund", "out_receipt")
PURCHASE = ("in_invoice", "in_refund", "in_receipt")
INVOICE = SALE + PURCHASE
INBOUND = ("out_invoice", "in_refund", "out_receipt")
REFUND_OF = {"out_invoice": "out_refund", "in_invoice": "in_refund"}
MOVE_TYPES = [("entry", "Journal Entry"), ("out_invoice", "Customer Invoice"), ("out_refund", "Customer Credit Note"),
              ("in_invoice", "Vendor Bill"), ("in_refund", "Vendor Credit Note"), ("out_receipt", "Sales Receipt"),
              ("in_receipt", "Purchase Receipt")]
PAYMENT_STATES = {
    17: [("not_paid", "Not Paid"), ("in_payment", "In Payment"), ("paid", "Paid"), ("partial", "Partially Paid"),
         ("reversed", "Reversed"), ("invoicing_legacy", "Invoicing App Legacy")],
    18: [("not_paid", "Not Paid"), ("in_payment", "In Payment"), ("paid", "Paid"), ("partial", "Partially Paid"),
         ("reversed", "Reversed"), ("blocked", "Blocked"), ("invoicing_legacy", "Invoicing App Legacy")],
}
DRAFT_LABEL = {"out_invoice": "Draft Invoice", "out_refund": "Draft Credit Note", "in_invoice": "Draft Bill",
               "in_refund": "Draft Vendor Credit Note", "out_receipt": "Draft Sales Receipt",
               "in_receipt": "Draft Purchase Receipt", "entry": "Draft Entry"}


class ResCurrency(BaseModel):
    _name, _description, _order = "res.currency", "Currency", "active desc, name"
    _fields = fields(
        name=F("char", "Currency", required=True),
        full_name=F("char", "Name"),
        symbol=F("char", "Symbol", required=True),
        rate=F("float", "Current Rate", store=False, compute="_compute_rate"),
        rounding=F("float", "Rounding Factor", default=0.01),
        decimal_places=F("integer", "Decimal Places", store=False, compute="_compute_decimal_places"),
        active=F("boolean", "Active", default=True),
        position=F("selection", "Symbol Position", selection=[("after", "After Amount"),
                                                              ("before", "Before Amount")], default="after"),
    )

    def _compute_rate(self, rid: int) -> float:
        return float(self._row(rid).get("_rate", 1.0))

    def _compute_decimal_places(self, rid: int) -> int:
        rounding = self._row(rid).get("rounding") or 0.01
        return max(0, len(repr(rounding).split(".")[1].rstrip("0"))) if rounding < 1 else 0


class ResCompany(BaseModel):
    _name, _description, _order = "res.company", "Companies", "sequence, name"
    _fields = fields(
        name=F("char", "Company Name", required=True),
        currency_id=F("many2one", "Currency", comodel="res.currency", required=True),
        partner_id=F("many2one", "Partner", comodel="res.partner"),
        email=F("char", "Email"),
        phone=F("char", "Phone"),
        vat=F("char", "Tax ID"),
        sequence=F("integer", "Sequence", default=10),
        active=F("boolean", "Active", default=True),
    )


class ResUsers(BaseModel):
    _name, _description, _order = "res.users", "User", "name, login"
    _fields = fields(
        name=F("char", "Name"),
        login=F("char", "Login", required=True),
        partner_id=F("many2one", "Related Partner", comodel="res.partner", required=True),
        company_id=F("many2one", "Company", comodel="res.company"),
        email=F("char", "Email"),
        active=F("boolean", "Active", default=True),
        share=F("boolean", "Share User"),
        tz=F("char", "Timezone"),
        lang=F("char", "Language", default="en_US"),
    )

    @rpc()
    def context_get(self):
        user = self.env.server.users_by_uid[self.env.uid]
        return {"lang": "en_US", "tz": user.tz, "uid": self.env.uid}
    context_get._api = "model"


class ResPartner(BaseModel):
    _name, _description, _order = "res.partner", "Contact", "complete_name ASC, id DESC"
    _sql_constraints = [("check_name", lambda r: r.get("type", "contact") != "contact" or bool(r.get("name")),
                         "Contacts require a name")]
    _fields = fields(
        name=F("char", "Name"),
        complete_name=F("char", "Complete Name", compute="_compute_complete_name"),
        email=F("char", "Email"),
        phone=F("char", "Phone"),
        mobile=F("char", "Mobile", until=17),
        is_company=F("boolean", "Is a Company", default=False),
        company_type=F("selection", "Company Type", selection=[("person", "Individual"), ("company", "Company")],
                       compute="_compute_company_type", store=False),
        customer_rank=F("integer", "Customer Rank", default=0),
        supplier_rank=F("integer", "Supplier Rank", default=0),
        active=F("boolean", "Active", default=True),
        parent_id=F("many2one", "Related Company", comodel="res.partner"),
        child_ids=F("one2many", "Contact", comodel="res.partner", inverse="parent_id"),
        commercial_partner_id=F("many2one", "Commercial Entity", comodel="res.partner",
                                compute="_compute_commercial_partner"),
        type=F("selection", "Address Type", default="contact", selection=[
            ("contact", "Contact"), ("invoice", "Invoice Address"), ("delivery", "Delivery Address"),
            ("other", "Other Address")]),
        vat=F("char", "Tax ID"),
        ref=F("char", "Reference"),
        street=F("char", "Street"),
        street2=F("char", "Street2"),
        zip=F("char", "Zip"),
        city=F("char", "City"),
        website=F("char", "Website Link"),
        function=F("char", "Job Position"),
        comment=F("html", "Notes"),
        lang=F("char", "Language", default="en_US"),
        company_id=F("many2one", "Company", comodel="res.company"),
        user_ids=F("one2many", "Users", comodel="res.users", inverse="partner_id"),
    )

    def _compute_complete_name(self, rid: int) -> str | bool:
        row = self._row(rid)
        name = row.get("name") or ""
        parent = row.get("parent_id")
        if parent and not row.get("is_company") and parent in self._table:
            return f"{self._table[parent].get('name') or ''}, {name}"
        return name or False

    def _compute_display_name(self, rid: int) -> str:
        return self._get(rid, "complete_name") or ""

    def _compute_company_type(self, rid: int) -> str:
        return "company" if self._row(rid).get("is_company") else "person"

    def _compute_commercial_partner(self, rid: int) -> int:
        seen, node = set(), rid
        while node and node not in seen:
            seen.add(node)
            row = self._table.get(node, {})
            if row.get("is_company") or not row.get("parent_id"):
                return node
            node = row["parent_id"]
        return rid

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        if "company_type" in vals:
            vals["is_company"] = vals.pop("company_type") == "company"
        return vals

    def _write(self, vals):
        vals = dict(vals)
        if "company_type" in vals:
            vals["is_company"] = vals.pop("company_type") == "company"
        super()._write(vals)

    def _check_row(self, rid: int) -> None:
        super()._check_row(rid)
        seen, node = set(), rid
        while node:
            if node in seen:
                raise ValidationError("You cannot create recursive Partner hierarchies.")
            seen.add(node)
            node = self._table.get(node, {}).get("parent_id")


class AccountAccount(BaseModel):
    _name, _description, _order = "account.account", "Account", "code"
    _fields = fields(
        name=F("char", "Account Name", required=True),
        code=F("char", "Code", required=True),
        account_type=F("selection", "Type", required=True, selection=[
            ("asset_receivable", "Receivable"), ("asset_cash", "Bank and Cash"), ("asset_current", "Current Assets"),
            ("liability_payable", "Payable"), ("liability_current", "Current Liabilities"), ("income", "Income"),
            ("expense", "Expenses"), ("equity", "Equity")]),
        reconcile=F("boolean", "Allow Reconciliation"),
        active=F("boolean", "Active", default=True, until=17),
        deprecated=F("boolean", "Deprecated", default=False),
    )

    def _compute_display_name(self, rid: int) -> str:
        row = self._row(rid)
        return f"{row['code']} {row['name']}"


class AccountJournal(BaseModel):
    _name, _description, _order = "account.journal", "Journal", "sequence, type, code"
    _fields = fields(
        name=F("char", "Journal Name", required=True),
        code=F("char", "Short Code", required=True),
        type=F("selection", "Type", required=True, selection=[
            ("sale", "Sales"), ("purchase", "Purchase"), ("cash", "Cash"), ("bank", "Bank"),
            ("credit", "Credit Card"), ("general", "Miscellaneous")]),
        company_id=F("many2one", "Company", comodel="res.company", required=True, default=1),
        currency_id=F("many2one", "Currency", comodel="res.currency"),
        default_account_id=F("many2one", "Default Account", comodel="account.account"),
        active=F("boolean", "Active", default=True),
        sequence=F("integer", "Sequence", default=10),
        refund_sequence=F("boolean", "Dedicated Credit Note Sequence"),
        payment_sequence=F("boolean", "Dedicated Payment Sequence"),
    )


class AccountTax(BaseModel):
    _name, _description, _order = "account.tax", "Tax", "sequence,id"
    _fields = fields(
        name=F("char", "Tax Name", required=True),
        amount=F("float", "Amount", aggregator="none"),
        amount_type=F("selection", "Tax Computation", default="percent", selection=[
            ("group", "Group of Taxes"), ("fixed", "Fixed"), ("percent", "Percentage of Price"),
            ("division", "Percentage of Price Tax Included")]),
        type_tax_use=F("selection", "Tax Type", default="sale", selection=[
            ("sale", "Sales"), ("purchase", "Purchases"), ("none", "None")]),
        price_include=F("boolean", "Included in Price", default=False),
        active=F("boolean", "Active", default=True),
        company_id=F("many2one", "Company", comodel="res.company", default=1),
        sequence=F("integer", "Sequence", default=1),
    )


def _company_currency(env) -> int:
    return env["res.company"]._row(1)["currency_id"]


def to_company(env, amount: float, currency_id: int) -> float:
    """Odoo's res.currency rates are 'units of this currency per unit of the company currency'."""
    cur = env["res.currency"]
    company = _company_currency(env)
    if currency_id == company:
        return float_round(amount, cur._get(company, "decimal_places"))
    return float_round(amount / cur._get(currency_id, "rate") * cur._get(company, "rate"),
                       cur._get(company, "decimal_places"))


def _is_zero(env, amount: float, currency_id: int) -> bool:
    digits = env["res.currency"]._get(currency_id, "decimal_places")
    return abs(float_round(amount, digits)) < 10 ** -digits / 2


def _account(env, code: str) -> int:
    acc = env["account.account"]
    return next(rid for rid, row in acc._table.items() if row["code"] == code)


class AccountMoveLine(BaseModel):
    _name, _description, _order = "account.move.line", "Journal Item", "date desc, move_name desc, sequence, id"
    _rec_name = "name"
    _fields = fields(
        move_id=F("many2one", "Journal Entry", comodel="account.move", required=True, ondelete="cascade"),
        move_name=F("char", "Number", compute="_compute_move_name"),
        name=F("char", "Label"),
        sequence=F("integer", "Sequence", default=10),
        display_type=F("selection", "Display Type", default="product", selection=[
            ("product", "Product"), ("cogs", "Cost of Goods Sold"), ("tax", "Tax"), ("discount", "Discount"),
            ("rounding", "Rounding"), ("payment_term", "Payment Term"), ("line_section", "Section"),
            ("line_note", "Note"), ("epd", "Early Payment Discount")]),
        quantity=F("float", "Quantity", default=1.0),
        price_unit=F("float", "Unit Price", aggregator="none"),
        discount=F("float", "Discount (%)", aggregator="none"),
        tax_ids=F("many2many", "Taxes", comodel="account.tax"),
        tax_line_id=F("many2one", "Originator Tax", comodel="account.tax"),
        price_subtotal=F("monetary", "Subtotal"),
        price_total=F("monetary", "Total"),
        account_id=F("many2one", "Account", comodel="account.account"),
        account_type=F("selection", "Internal Type", compute="_compute_account_type",
                       selection=AccountAccount._fields["account_type"].selection),
        partner_id=F("many2one", "Partner", comodel="res.partner", ondelete="restrict"),
        currency_id=F("many2one", "Currency", comodel="res.currency"),
        company_currency_id=F("many2one", "Company Currency", comodel="res.currency",
                              compute="_compute_company_currency"),
        company_id=F("many2one", "Company", comodel="res.company", default=1),
        journal_id=F("many2one", "Journal", comodel="account.journal"),
        date=F("date", "Date"),
        date_maturity=F("date", "Due Date"),
        parent_state=F("selection", "Status", compute="_compute_parent_state",
                       selection=[("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled")]),
        debit=F("monetary", "Debit"),
        credit=F("monetary", "Credit"),
        balance=F("monetary", "Balance"),
        amount_currency=F("monetary", "Amount in Currency"),
        amount_residual=F("monetary", "Residual Amount", compute="_compute_residual"),
        amount_residual_currency=F("monetary", "Residual Amount in Currency", compute="_compute_residual_currency"),
        reconciled=F("boolean", "Reconciled", compute="_compute_reconciled"),
        matched_debit_ids=F("one2many", "Matched Debits", comodel="account.partial.reconcile",
                            inverse="credit_move_id"),
        matched_credit_ids=F("one2many", "Matched Credits", comodel="account.partial.reconcile",
                             inverse="debit_move_id"),
        ref=F("char", "Reference"),
    )
    for _f in ("price_subtotal", "price_total", "debit", "credit", "balance", "amount_currency"):
        _fields[_f].readonly = False

    def _compute_move_name(self, rid):
        return self.env["account.move"]._get(self._row(rid)["move_id"], "name")

    def _compute_account_type(self, rid):
        acc = self._row(rid).get("account_id")
        return self.env["account.account"]._row(acc)["account_type"] if acc else False

    def _compute_company_currency(self, rid):
        return _company_currency(self.env)

    def _compute_parent_state(self, rid):
        return self.env["account.move"]._row(self._row(rid)["move_id"])["state"]

    def _reconcilable(self, rid) -> bool:
        acc = self._row(rid).get("account_id")
        return bool(acc and self.env["account.account"]._row(acc).get("reconcile"))

    def _matched(self, rid, currency: bool) -> float:
        partials = self.env["account.partial.reconcile"]
        total = 0.0
        for row in partials._table.values():
            if row["debit_move_id"] == rid:
                total -= row["debit_amount_currency" if currency else "amount"]
            if row["credit_move_id"] == rid:
                total += row["credit_amount_currency" if currency else "amount"]
        return total

    def _compute_residual(self, rid):
        if not self._reconcilable(rid):
            return 0.0
        return float_round(self._row(rid).get("balance", 0.0) + self._matched(rid, False), 2)

    def _compute_residual_currency(self, rid):
        if not self._reconcilable(rid):
            return 0.0
        return float_round(self._row(rid).get("amount_currency", 0.0) + self._matched(rid, True), 2)

    def _compute_reconciled(self, rid):
        return self._reconcilable(rid) and self._get(rid, "amount_residual") == 0 \
            and self._get(rid, "amount_residual_currency") == 0

    def _compute_display_name(self, rid):
        row = self._row(rid)
        parts = [self._get(rid, "move_name"), row.get("ref") and f"({row['ref']})", row.get("name")]
        return " ".join(p for p in parts if p and p != "/") or f"{self._name},{rid}"

    def _prepare_create(self, vals):
        move_id = vals.get("move_id")
        if not move_id or move_id not in self.env["account.move"]._table:
            return vals
        move = self.env["account.move"]._row(move_id)
        journal = self.env["account.journal"]._row(move["journal_id"])
        vals.setdefault("currency_id", move["currency_id"])
        vals.setdefault("partner_id", self.env["account.move"]._get(move_id, "commercial_partner_id"))
        vals.setdefault("journal_id", move["journal_id"])
        vals.setdefault("date", move["date"])
        if "account_id" not in vals and vals.get("display_type", "product") == "product":
            vals["account_id"] = journal.get("default_account_id") or False
        if move["move_type"] == "entry" and vals.get("display_type", "product") == "product":
            debit, credit = float(vals.get("debit") or 0.0), float(vals.get("credit") or 0.0)
            balance = vals.get("balance", debit - credit)
            vals["balance"], vals["debit"], vals["credit"] = balance, max(balance, 0.0), max(-balance, 0.0)
            vals.setdefault("amount_currency", balance)
        return vals

    def _check_posted(self, ids, vals=None):
        moves = self.env["account.move"]
        for rid in ids:
            row = self._table.get(rid)
            if row and moves._row(row["move_id"])["state"] == "posted":
                if vals is not None and not {"tax_ids", "tax_line_id"} & set(vals):
                    continue
                if vals is not None:
                    raise UserError("You cannot modify the taxes related to a posted journal item, you should "
                                    "reset the journal entry to draft to do so.")
                raise UserError("You cannot delete an item linked to a posted entry.")

    def _write(self, vals):
        if not self.env.context.get("dynamic_write"):
            self._check_posted(self._ids, vals)
        super()._write(vals)
        if not self.env.context.get("dynamic_write"):
            for mid in {self._table[r]["move_id"] for r in self._ids}:
                self.env["account.move"]._sync(mid)

    def _unlink(self):
        if not self.env.context.get("force_delete"):
            self._check_posted(self._existing())
        if not self.env.context.get("dynamic_unlink"):
            for rid in self._existing():
                kind = self._table[rid].get("display_type")
                if kind == "tax":
                    raise ValidationError("You cannot delete a tax line as it would impact the tax report")
                if kind == "payment_term":
                    raise ValidationError("You cannot delete a payable/receivable line as it would not be "
                                          "consistent with the payment terms")
        super()._unlink()


class AccountPartialReconcile(BaseModel):
    _name, _description, _order = "account.partial.reconcile", "Partial Reconcile", "id"
    _rec_name = "id"
    _fields = fields(
        debit_move_id=F("many2one", "Debit Journal Item", comodel="account.move.line", required=True,
                        ondelete="cascade"),
        credit_move_id=F("many2one", "Credit Journal Item", comodel="account.move.line", required=True,
                         ondelete="cascade"),
        amount=F("monetary", "Amount"),
        debit_amount_currency=F("monetary", "Debit Amount in Currency"),
        credit_amount_currency=F("monetary", "Credit Amount in Currency"),
        company_id=F("many2one", "Company", comodel="res.company", default=1),
        max_date=F("date", "Max Date of Matched Lines"),
    )


class AccountMove(BaseModel):
    _name, _description, _order = "account.move", "Journal Entry", "date desc, name desc, id desc"
    _fields = fields(
        name=F("char", "Number", default="/"),
        ref=F("char", "Reference"),
        move_type=F("selection", "Type", required=True, default="entry", selection=MOVE_TYPES),
        state=F("selection", "Status", required=True, default="draft", selection=[
            ("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled")]),
        payment_state=F("selection", "Payment Status", compute="_compute_payment_state", selection=PAYMENT_STATES),
        date=F("date", "Date", required=True),
        invoice_date=F("date", "Invoice/Bill Date"),
        invoice_date_due=F("date", "Due Date"),
        partner_id=F("many2one", "Partner", comodel="res.partner", ondelete="restrict"),
        commercial_partner_id=F("many2one", "Commercial Entity", comodel="res.partner",
                                compute="_compute_commercial_partner"),
        journal_id=F("many2one", "Journal", comodel="account.journal", required=True),
        company_id=F("many2one", "Company", comodel="res.company", required=True, default=1),
        currency_id=F("many2one", "Currency", comodel="res.currency", required=True),
        company_currency_id=F("many2one", "Company Currency", comodel="res.currency",
                              compute="_compute_company_currency"),
        line_ids=F("one2many", "Journal Items", comodel="account.move.line", inverse="move_id"),
        invoice_line_ids=F("one2many", "Invoice lines", comodel="account.move.line", inverse="move_id",
                           filter_domain=lambda r: r.get("display_type") in ("product", "line_section",
                                                                              "line_note")),
        amount_untaxed=F("monetary", "Untaxed Amount", compute="_amount"),
        amount_tax=F("monetary", "Tax", compute="_amount"),
        amount_total=F("monetary", "Total", compute="_amount"),
        amount_residual=F("monetary", "Amount Due", compute="_amount"),
        amount_untaxed_signed=F("monetary", "Untaxed Amount Signed", compute="_amount"),
        amount_tax_signed=F("monetary", "Tax Signed", compute="_amount"),
        amount_total_signed=F("monetary", "Total Signed", compute="_amount"),
        amount_total_in_currency_signed=F("monetary", "Total in Currency Signed", compute="_amount"),
        amount_residual_signed=F("monetary", "Amount Due Signed", compute="_amount"),
        payment_reference=F("char", "Payment Reference"),
        invoice_origin=F("char", "Origin"),
        narration=F("html", "Terms and Conditions"),
        invoice_user_id=F("many2one", "Salesperson", comodel="res.users"),
        posted_before=F("boolean", "Posted Before"),
        payment_id=F("many2one", "Payment", comodel="account.payment"),
        reversed_entry_id=F("many2one", "Reversal of", comodel="account.move"),
    )

    # -- computed values
    def _amount(self, rid: int, fname: str | None = None) -> Any:
        amounts = self.env.store.memo((self._name, "__amounts__", rid), lambda: self._compute_amounts(rid))
        return amounts if fname is None else amounts[fname]

    def _get(self, rid, fname):
        f = self._fields[fname]
        if f.compute == "_amount":
            return self._amount(rid, fname)
        return super()._get(rid, fname)

    def _value_getter(self, fname):
        if self._fields[fname].compute == "_amount":
            return lambda rid: self._amount(rid, fname)
        return super()._value_getter(fname)  # every other field is base _get's

    def _compute_amounts(self, rid: int) -> dict[str, float]:
        move = self._row(rid)
        lines = self.env["account.move.line"]
        is_invoice = move["move_type"] in INVOICE
        tot = dict.fromkeys(("untaxed", "untaxed_cur", "tax", "tax_cur", "total", "total_cur", "res", "res_cur"),
                            0.0)
        for lid in self._get(rid, "line_ids"):
            line = lines._row(lid)
            kind, bal, cur = line.get("display_type"), line.get("balance", 0.0), line.get("amount_currency", 0.0)
            if is_invoice:
                if kind == "tax":
                    tot["tax"] += bal
                    tot["tax_cur"] += cur
                    tot["total"] += bal
                    tot["total_cur"] += cur
                elif kind in ("product", "rounding"):
                    tot["untaxed"] += bal
                    tot["untaxed_cur"] += cur
                    tot["total"] += bal
                    tot["total_cur"] += cur
                elif kind == "payment_term":
                    tot["res"] += lines._get(lid, "amount_residual")
                    tot["res_cur"] += lines._get(lid, "amount_residual_currency")
            elif line.get("debit"):
                tot["total"] += bal
                tot["total_cur"] += cur
        sign = self._direction_sign(move["move_type"])
        r = lambda x: float_round(x, 2) + 0.0  # noqa: E731  (+0.0 turns -0.0 into 0.0)
        total = r(sign * tot["total_cur"])
        return {
            "amount_untaxed": r(sign * tot["untaxed_cur"]),
            "amount_tax": r(sign * tot["tax_cur"]),
            "amount_total": total,
            "amount_residual": r(-sign * tot["res_cur"]),
            "amount_untaxed_signed": r(-tot["untaxed"]),
            "amount_tax_signed": r(-tot["tax"]),
            "amount_total_signed": r(abs(tot["total"]) if move["move_type"] == "entry" else -tot["total"]),
            "amount_total_in_currency_signed": r(abs(total) if move["move_type"] == "entry" else -(sign * total)),
            "amount_residual_signed": r(tot["res"]),
        }

    @staticmethod
    def _direction_sign(move_type: str) -> int:
        return 1 if move_type == "entry" or move_type not in INBOUND else -1

    def _compute_commercial_partner(self, rid):
        partner = self._row(rid).get("partner_id")
        return self.env["res.partner"]._get(partner, "commercial_partner_id") if partner else False

    def _compute_company_currency(self, rid):
        return _company_currency(self.env)

    def _compute_display_name(self, rid):
        row = self._row(rid)
        name = f"{DRAFT_LABEL[row['move_type']]} " if row["state"] == "draft" else ""
        name += f"(* {rid})" if not row.get("name") or row["name"] == "/" else row["name"]
        return name + (f" ({row['ref'][:50]})" if row.get("ref") else "")

    def _counterpart_moves(self, rid) -> list[int]:
        lines, partials = self.env["account.move.line"], self.env["account.partial.reconcile"]
        mine = set(self._get(rid, "line_ids"))
        out = []
        for p in partials._table.values():
            for a, b in (("debit_move_id", "credit_move_id"), ("credit_move_id", "debit_move_id")):
                if p[a] in mine and p[b] in lines._table:
                    other = lines._table[p[b]]["move_id"]
                    if other != rid and other not in out:
                        out.append(other)
        return out

    def _compute_payment_state(self, rid):
        move = self._row(rid)
        if move["state"] != "posted" or move["move_type"] not in INVOICE:
            return "not_paid"
        if move.get("_payment_state"):
            return move["_payment_state"]
        counterparts = self._counterpart_moves(rid)
        if _is_zero(self.env, self._amount(rid, "amount_residual"), move["currency_id"]):
            refund = REFUND_OF.get(move["move_type"])
            if counterparts and refund and all(self._row(m)["move_type"] == refund for m in counterparts):
                return "reversed"
            payments = self.env["account.payment"]
            pays = [self._row(m).get("payment_id") for m in counterparts if self._row(m).get("payment_id")]
            if self.env.server.accountant and any(not payments._row(p).get("is_matched") for p in pays):
                return "in_payment"  # account_accountant's _get_invoice_in_payment_state
            return "paid"
        return "partial" if counterparts else "not_paid"

    # -- create / write
    def _prepare_create(self, vals):
        move_type = vals.get("move_type") or "entry"
        journals = self.env["account.journal"]
        if not vals.get("journal_id"):
            wanted = "sale" if move_type in SALE else "purchase" if move_type in PURCHASE else "general"
            vals["journal_id"] = next(j for j in journals._sorted(list(journals._table))
                                      if journals._row(j)["type"] == wanted)
        journal = journals._row(int(vals["journal_id"]))
        if not vals.get("currency_id"):
            vals["currency_id"] = journal.get("currency_id") or _company_currency(self.env)
        vals.setdefault("date", vals.get("invoice_date") or self.env.today)
        if move_type in INVOICE:
            vals.setdefault("invoice_user_id", self.env.uid)
        return vals

    def _after_create(self, rid):
        row = self._row(rid)
        row["_due_explicit"] = bool(row.get("invoice_date_due"))
        self._sync(rid)

    def _write(self, vals):
        vals = dict(vals)
        for rid in self._ids:
            row = self._table.get(rid)
            if row and row["state"] == "posted" and {"invoice_line_ids", "line_ids", "currency_id", "move_type",
                                                     "journal_id"} & set(vals) \
                    and not self.env.context.get("dynamic_write"):
                raise UserError("You cannot modify a posted entry: reset it to draft first.")
        super()._write(vals)
        for rid in self._ids:
            row = self._row(rid)
            if "invoice_date_due" in vals:
                row["_due_explicit"] = bool(vals["invoice_date_due"])
            if "invoice_date" in vals and row["state"] == "draft" and "date" not in vals and vals["invoice_date"]:
                row["date"] = row["invoice_date"]
            if row["state"] == "draft":
                self._sync(rid)

    def _unlink(self):
        for rid in self._existing():
            if self._table[rid]["state"] == "posted":
                raise UserError("You cannot delete an item linked to a posted entry.")
        lines = self.env["account.move.line"].with_context(force_delete=True, dynamic_unlink=True)
        for rid in self._existing():
            lines.browse(self._get(rid, "line_ids"))._unlink()
        super()._unlink()

    def _sync(self, rid: int) -> None:
        """_sync_dynamic_lines: recompute product lines, tax lines and the receivable/payable line."""
        move = self._row(rid)
        lines = self.env["account.move.line"].with_context(dynamic_write=True, dynamic_unlink=True,
                                                           force_delete=True)
        taxes = self.env["account.tax"]
        cur_id = move["currency_id"]
        digits = self.env["res.currency"]._get(cur_id, "decimal_places")
        partner = self._get(rid, "commercial_partner_id")
        common = {"currency_id": cur_id, "journal_id": move["journal_id"], "date": move["date"],
                  "partner_id": partner, "company_id": move["company_id"]}
        all_lines = self._get(rid, "line_ids")
        if move["move_type"] not in INVOICE:
            for lid in all_lines:
                lines._table[lid].update({k: v for k, v in common.items() if k != "partner_id"})
            self.env.store.touch()
            return
        sign = self._direction_sign(move["move_type"])
        tax_totals: dict[int, float] = {}
        dyn_cur = dyn_bal = 0.0
        product_lines = [lid for lid in all_lines if lines._row(lid).get("display_type") == "product"]
        for lid in product_lines:
            line = lines._row(lid)
            qty, price = float(line.get("quantity") or 0.0), float(line.get("price_unit") or 0.0)
            total = price * (1 - float(line.get("discount") or 0.0) / 100.0) * qty
            line_taxes = [taxes._row(t) for t in line.get("tax_ids") or [] if t in taxes._table]
            base = total
            for t in line_taxes:
                if t.get("price_include") and t["amount_type"] == "percent":
                    base = base / (1 + t["amount"] / 100.0)
                elif t.get("price_include") and t["amount_type"] == "fixed":
                    base -= t["amount"] * qty
            subtotal = float_round(base, digits)
            tax_sum = 0.0
            for t in line_taxes:
                if t.get("price_include"):
                    amount = float_round(total, digits) - subtotal
                elif t["amount_type"] == "fixed":
                    amount = float_round(t["amount"] * qty, digits)
                else:
                    amount = float_round(subtotal * t["amount"] / 100.0, digits)
                tax_totals[t["id"]] = tax_totals.get(t["id"], 0.0) + amount
                tax_sum += amount
            amount_currency = sign * subtotal
            balance = to_company(self.env, amount_currency, cur_id)
            line.update(common, price_subtotal=subtotal, price_total=float_round(subtotal + tax_sum, digits),
                        amount_currency=amount_currency, balance=balance, debit=max(balance, 0.0),
                        credit=max(-balance, 0.0))
            dyn_cur += amount_currency
            dyn_bal += balance
        existing = {lines._row(lid)["display_type"]: [] for lid in all_lines}
        for lid in all_lines:
            existing[lines._row(lid)["display_type"]].append(lid)
        purchase = move["move_type"] in PURCHASE
        old_tax = {lines._row(lid).get("tax_line_id"): lid for lid in existing.get("tax", [])}
        for tax_id, amount in tax_totals.items():
            amount_currency = sign * float_round(amount, digits)
            balance = to_company(self.env, amount_currency, cur_id)
            vals = {**common, "name": taxes._row(tax_id)["name"], "display_type": "tax", "tax_line_id": tax_id,
                    "account_id": _account(self.env, "131000" if purchase else "251000"),
                    "amount_currency": amount_currency, "balance": balance, "debit": max(balance, 0.0),
                    "credit": max(-balance, 0.0), "quantity": 1.0, "price_unit": 0.0}
            if tax_id in old_tax:
                lines._table[old_tax.pop(tax_id)].update(vals)
            else:
                lines._create_one({**vals, "move_id": rid})
            dyn_cur += amount_currency
            dyn_bal += balance
        lines.browse(list(old_tax.values()))._unlink()
        terms = existing.get("payment_term", [])
        if product_lines:
            due = move.get("invoice_date_due") if move.get("_due_explicit") else False
            due = due or move.get("invoice_date") or move["date"]
            if not move.get("_due_explicit"):
                move["invoice_date_due"] = due
            vals = {**common, "name": move.get("payment_reference") or "", "display_type": "payment_term",
                    "account_id": _account(self.env, "211000" if purchase else "121000"), "date_maturity": due,
                    "amount_currency": float_round(-dyn_cur, digits), "balance": float_round(-dyn_bal, 2),
                    "debit": max(float_round(-dyn_bal, 2), 0.0), "credit": max(float_round(dyn_bal, 2), 0.0),
                    "quantity": 1.0, "price_unit": 0.0}
            if terms:
                lines._table[terms[0]].update(vals)
                lines.browse(terms[1:])._unlink()
            else:
                lines._create_one({**vals, "move_id": rid})
        else:
            lines.browse(terms)._unlink()
        self.env.store.touch()

    # -- business methods
    def _next_name(self, journal_id: int, prefix: str, year: int) -> str:
        code = self.env["account.journal"]._row(journal_id)["code"]
        stem = f"{prefix}{code}/{year}/"
        numbers = [int(m.group(1)) for row in self._table.values()
                   if (m := re.fullmatch(re.escape(stem) + r"(\d+)", str(row.get("name") or "")))]
        return f"{stem}{max(numbers, default=0) + 1:05d}"

    def _rows_or_missing(self) -> list[int]:
        for rid in self._ids:
            self._row(rid)
        return list(self._ids)

    @rpc()
    def action_post(self):
        self._check_access("write")
        partners = self.env["res.partner"]
        for rid in self._rows_or_missing():
            move = self._row(rid)
            if move["state"] == "posted":
                raise UserError(f"The entry {move['name']} (id {rid}) is already posted.")
            lines = [lid for lid in self._get(rid, "line_ids") if self.env["account.move.line"]._row(lid)
                     .get("display_type") not in ("line_section", "line_note")]
            if not lines:
                raise UserError("You need to add a line before posting.")
            if not move.get("partner_id"):
                if move["move_type"] in SALE:
                    raise UserError("The field 'Customer' is required, please complete it to validate the "
                                    "Customer Invoice.")
                if move["move_type"] in PURCHASE:
                    raise UserError("The field 'Vendor' is required, please complete it to validate the Vendor "
                                    "Bill.")
            if move["move_type"] in INVOICE and self._amount(rid, "amount_total") < 0:
                raise UserError("You cannot validate an invoice with a negative total amount. You should create a "
                                "credit note instead. Use the action menu to transform it into a credit note or "
                                "refund.")
            if move["move_type"] in INVOICE and not move.get("invoice_date"):
                if move["move_type"] in SALE:
                    move["invoice_date"] = self.env.today
                else:
                    raise UserError("The Bill/Refund date is required to validate this document.")
            if move["move_type"] in INVOICE:
                move["date"] = move["invoice_date"]
            else:
                debit = sum(self.env["account.move.line"]._row(lid).get("debit", 0.0) for lid in lines)
                credit = sum(self.env["account.move.line"]._row(lid).get("credit", 0.0) for lid in lines)
                if float_round(debit - credit, 2) != 0:
                    journal = self.env["account.journal"]._row(move["journal_id"])["name"]
                    raise UserError(f"The move ({move['name']}) is not balanced.\nThe total of debits equals "
                                    f"{debit} and the total of credits equals {credit}.\nYou might want to "
                                    f"specify a default account on journal \"{journal}\" to automatically balance "
                                    "each move.")
            self._sync(rid)
            if not move.get("name") or move["name"] == "/":
                journal = self.env["account.journal"]._row(move["journal_id"])
                refund = move["move_type"] in ("out_refund", "in_refund") and journal.get("refund_sequence")
                move["name"] = self._next_name(move["journal_id"], "R" if refund else "", int(move["date"][:4]))
            move["state"], move["posted_before"] = "posted", True
            if move.get("partner_id") and move["move_type"] in INVOICE:
                rank = "customer_rank" if move["move_type"] in SALE else "supplier_rank"
                commercial = self._get(rid, "commercial_partner_id")
                partners._table[commercial][rank] = partners._table[commercial].get(rank, 0) + 1
            self.env.store.touch()
        return False

    @rpc()
    def button_draft(self):
        self._check_access("write")
        partials = self.env["account.partial.reconcile"]
        for rid in self._rows_or_missing():
            if self._row(rid)["state"] not in ("cancel", "posted"):
                raise UserError("Only posted/cancelled journal entries can be reset to draft.")
        for rid in self._ids:
            mine = set(self._get(rid, "line_ids"))
            partials.browse([p for p, row in partials._table.items()
                             if row["debit_move_id"] in mine or row["credit_move_id"] in mine])._unlink()
            self._row(rid)["state"] = "draft"
            self._sync(rid)
        self.env.store.touch()
        return True

    @rpc()
    def button_cancel(self):
        self._check_access("write")
        posted = [rid for rid in self._rows_or_missing() if self._row(rid)["state"] == "posted"]
        if posted:
            self.browse(posted).button_draft()
        for rid in self._ids:
            if self._row(rid)["state"] != "draft":
                raise UserError("Only draft journal entries can be cancelled.")
        for rid in self._ids:
            self._row(rid)["state"] = "cancel"
        self.env.store.touch()
        return True


class AccountPayment(BaseModel):
    _name, _description, _order = "account.payment", "Payments", "date desc, name desc"
    _sql_constraints = [("check_amount_not_negative", lambda r: (r.get("amount") or 0.0) >= 0.0,
                         "The payment amount cannot be negative.")]
    _fields = fields(
        name=F("char", "Number", default="/"),
        date=F("date", "Date", required=True),
        amount=F("monetary", "Amount"),
        currency_id=F("many2one", "Currency", comodel="res.currency", required=True),
        payment_type=F("selection", "Payment Type", required=True, default="inbound",
                       selection=[("outbound", "Send"), ("inbound", "Receive")]),
        partner_type=F("selection", "Partner Type", default="customer",
                       selection=[("customer", "Customer"), ("supplier", "Vendor")]),
        partner_id=F("many2one", "Customer/Vendor", comodel="res.partner", ondelete="restrict"),
        journal_id=F("many2one", "Journal", comodel="account.journal", required=True),
        company_id=F("many2one", "Company", comodel="res.company", default=1),
        state=F("selection", "Status", required=True, default="draft", selection={
            17: [("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled")],
            18: [("draft", "Draft"), ("in_process", "In Process"), ("paid", "Paid"), ("canceled", "Canceled"),
                 ("rejected", "Rejected")]}),
        move_id=F("many2one", "Journal Entry", comodel="account.move", readonly=True),
        ref=F("char", "Memo", until=17),
        memo=F("char", "Memo", since=18),
        is_reconciled=F("boolean", "Is Reconciled", compute="_compute_is_reconciled", store=False),
        is_matched=F("boolean", "Is Matched With a Bank Statement"),
        reconciled_invoice_ids=F("many2many", "Reconciled Invoices", comodel="account.move", store=False,
                                 compute="_compute_reconciled_invoices"),
        reconciled_bill_ids=F("many2many", "Reconciled Bills", comodel="account.move", store=False,
                              compute="_compute_reconciled_bills"),
        amount_company_currency_signed=F("monetary", "Amount Signed", compute="_compute_amount_signed"),
    )

    def _counterpart_line(self, rid) -> int | bool:
        move = self._row(rid).get("move_id")
        if not move:
            return False
        lines = self.env["account.move.line"]
        for lid in self.env["account.move"]._get(move, "line_ids"):
            if lines._get(lid, "account_type") in ("asset_receivable", "liability_payable"):
                return lid
        return False

    def _compute_is_reconciled(self, rid):
        line = self._counterpart_line(rid)
        return bool(line) and self.env["account.move.line"]._get(line, "reconciled")

    def _reconciled_moves(self, rid, types) -> list[int]:
        move = self._row(rid).get("move_id")
        if not move:
            return []
        moves = self.env["account.move"]
        return [m for m in moves._counterpart_moves(move) if moves._row(m)["move_type"] in types]

    def _compute_reconciled_invoices(self, rid):
        return self._reconciled_moves(rid, SALE)

    def _compute_reconciled_bills(self, rid):
        return self._reconciled_moves(rid, PURCHASE)

    def _compute_amount_signed(self, rid):
        row = self._row(rid)
        amount = to_company(self.env, row.get("amount") or 0.0, row["currency_id"])
        return amount if row["payment_type"] == "inbound" else -amount

    def _prepare_create(self, vals):
        journals = self.env["account.journal"]
        if not vals.get("journal_id"):
            vals["journal_id"] = next(j for j in journals._sorted(list(journals._table))
                                      if journals._row(j)["type"] in ("bank", "cash"))
        journal = journals._row(int(vals["journal_id"]))
        vals.setdefault("currency_id", journal.get("currency_id") or _company_currency(self.env))
        vals.setdefault("date", self.env.today)
        return vals

    @rpc()
    def action_post(self):
        """draft -> posted (17) / in_process (18+). Returns None, as Odoo's does (XML-RPC cannot marshal it)."""
        self._check_access("write")
        moves = self.env["account.move"]
        for rid in self._rows_or_missing():
            pay = self._row(rid)
            if pay["state"] != "draft":
                raise UserError("Only a draft payment can be posted.")
            journal = self.env["account.journal"]._row(pay["journal_id"])
            inbound = pay["payment_type"] == "inbound"
            counterpart = _account(self.env, "121000" if pay.get("partner_type", "customer") == "customer"
                                   else "211000")
            liquidity = _account(self.env, "101402" if inbound else "101403")
            amount_cur = pay.get("amount") or 0.0
            amount = to_company(self.env, amount_cur, pay["currency_id"])
            sign = 1 if inbound else -1
            name = moves._next_name(pay["journal_id"], "P" if journal.get("payment_sequence") else "",
                                    int(pay["date"][:4]))
            memo = pay.get("memo") or pay.get("ref") or False
            mid = moves.with_context(dynamic_write=True)._create_one({
                "move_type": "entry", "journal_id": pay["journal_id"], "date": pay["date"], "ref": memo,
                "partner_id": pay.get("partner_id"), "currency_id": pay["currency_id"], "payment_id": rid,
                "line_ids": [
                    (0, 0, {"name": memo or "", "account_id": liquidity, "balance": sign * amount,
                            "amount_currency": sign * amount_cur, "partner_id": pay.get("partner_id")}),
                    (0, 0, {"name": memo or "", "account_id": counterpart, "balance": -sign * amount,
                            "amount_currency": -sign * amount_cur, "partner_id": pay.get("partner_id")}),
                ]})
            moves._row(mid).update(name=name, state="posted", posted_before=True)
            pay.update(move_id=mid, name=name, state="posted" if self._major < 18 else
                       ("paid" if pay.get("is_matched") else "in_process"))
            self.env.store.touch()
        return None

    @rpc()
    def action_cancel(self):
        self._check_access("write")
        for rid in self._rows_or_missing():
            pay = self._row(rid)
            if pay.get("move_id"):
                self.env["account.move"].browse(pay["move_id"]).button_cancel()
            pay["state"] = "cancel" if self._major < 18 else "canceled"
        self.env.store.touch()
        return True

    def _rows_or_missing(self) -> list[int]:
        for rid in self._ids:
            self._row(rid)
        return list(self._ids)


def reconcile(env, debit_line: int, credit_line: int) -> None:
    """Create the account.partial.reconcile matching as much of both lines as their residuals allow."""
    lines = env["account.move.line"]
    amount = min(lines._get(debit_line, "amount_residual"), -lines._get(credit_line, "amount_residual"))
    debit_cur = min(lines._get(debit_line, "amount_residual_currency"),
                    -lines._get(credit_line, "amount_residual_currency"))
    if amount <= 0 and debit_cur <= 0:
        return
    same = lines._row(debit_line)["currency_id"] == lines._row(credit_line)["currency_id"]
    credit_cur = debit_cur if same else to_company(env, debit_cur, lines._row(debit_line)["currency_id"])
    env["account.partial.reconcile"]._create_one({
        "debit_move_id": debit_line, "credit_move_id": credit_line, "amount": float_round(amount, 2),
        "debit_amount_currency": float_round(debit_cur, 2), "credit_amount_currency": float_round(credit_cur, 2),
        "max_date": max(lines._row(debit_line)["date"], lines._row(credit_line)["date"])})


class AccountPaymentRegister(BaseModel):
    _name, _description, _transient = "account.payment.register", "Register Payment", True
    _rec_name = "communication"
    _fields = fields(
        payment_date=F("date", "Payment Date", required=True),
        amount=F("monetary", "Amount"),
        communication=F("char", "Memo"),
        group_payment=F("boolean", "Group Payments", default=False),
        currency_id=F("many2one", "Currency", comodel="res.currency"),
        journal_id=F("many2one", "Journal", comodel="account.journal"),
        partner_id=F("many2one", "Customer/Vendor", comodel="res.partner"),
        payment_type=F("selection", "Payment Type", selection=[("outbound", "Send"), ("inbound", "Receive")]),
        partner_type=F("selection", "Partner Type", selection=[("customer", "Customer"), ("supplier", "Vendor")]),
        source_amount=F("monetary", "Amount to Pay (company currency)"),
        source_amount_currency=F("monetary", "Amount to Pay (foreign currency)"),
        source_currency_id=F("many2one", "Source Currency", comodel="res.currency"),
        line_ids=F("many2many", "Journal items", comodel="account.move.line"),
        payment_difference=F("monetary", "Payment Difference", compute="_compute_difference"),
        payment_difference_handling=F("selection", "Payment Difference Handling", default="open",
                                      selection=[("open", "Keep open"), ("reconcile", "Mark as fully paid")]),
        can_edit_wizard=F("boolean", "Can Edit Wizard"),
        company_id=F("many2one", "Company", comodel="res.company", default=1),
    )

    def _compute_difference(self, rid):
        row = self._row(rid)
        return float_round((row.get("source_amount_currency") or 0.0) - (row.get("amount") or 0.0), 2)

    def _prepare_create(self, vals):
        """default_get of wizard/account_payment_register.py: which lines to pay, from the context."""
        ctx = self.env.context
        lines = self.env["account.move.line"]
        moves = self.env["account.move"]
        if ctx.get("active_model") == "account.move":
            ids = [m for m in ctx.get("active_ids") or [] if m in moves._table]
            line_ids = [lid for m in ids for lid in moves._get(m, "line_ids")]
        elif ctx.get("active_model") == "account.move.line":
            line_ids = [lid for lid in ctx.get("active_ids") or [] if lid in lines._table]
        else:
            raise UserError("The register payment wizard should only be called on account.move or "
                            "account.move.line records.")
        available = []
        for lid in line_ids:
            if moves._row(lines._row(lid)["move_id"])["state"] != "posted":
                raise UserError("You can only register payment for posted journal entries.")
            if lines._get(lid, "account_type") not in ("asset_receivable", "liability_payable"):
                continue
            if _is_zero(self.env, lines._get(lid, "amount_residual_currency"), lines._row(lid)["currency_id"]):
                continue
            available.append(lid)
        if not available:
            raise UserError("You can't register a payment because there is nothing left to pay on the selected "
                            "journal items.")
        if len({lines._get(lid, "account_type") for lid in available}) > 1:
            raise UserError("You can't register payments for journal items being either all inbound, either all "
                            "outbound.")
        first = lines._row(available[0])
        first_move = moves._row(first["move_id"])
        currencies = {lines._row(lid)["currency_id"] for lid in available}
        source_cur = first["currency_id"] if len(currencies) == 1 else _company_currency(self.env)
        residual_cur = sum(abs(lines._get(lid, "amount_residual_currency")) for lid in available)
        residual = sum(abs(lines._get(lid, "amount_residual")) for lid in available)
        journals = self.env["account.journal"]
        vals.setdefault("journal_id", next(j for j in journals._sorted(list(journals._table))
                                           if journals._row(j)["type"] in ("bank", "cash")))
        vals.setdefault("payment_date", self.env.today)
        vals.setdefault("currency_id", source_cur)
        vals.setdefault("amount", float_round(residual_cur if len(currencies) == 1 else residual, 2))
        vals.setdefault("communication", first_move.get("payment_reference") or first_move.get("ref")
                        or first_move["name"])
        vals.update(
            line_ids=[(6, 0, available)], partner_id=first.get("partner_id"),
            payment_type="inbound" if lines._get(available[0], "amount_residual") > 0 else "outbound",
            partner_type="customer" if lines._get(available[0], "account_type") == "asset_receivable"
            else "supplier",
            source_amount=float_round(residual, 2), source_amount_currency=float_round(residual_cur, 2),
            source_currency_id=source_cur, can_edit_wizard=len({lines._row(l)["move_id"] for l in available}) == 1
            or bool(vals.get("group_payment")))
        return vals

    @rpc()
    def action_create_payments(self):
        self._check_access("create")
        payments = self.env["account.payment"]
        lines = self.env["account.move.line"]
        created = []
        for rid in self._rows_or_missing():
            wiz = self._row(rid)
            batches = [wiz["line_ids"]] if wiz.get("can_edit_wizard") else [[lid] for lid in wiz["line_ids"]]
            for batch in batches:
                if wiz.get("can_edit_wizard"):
                    amount, currency = wiz.get("amount") or 0.0, wiz["currency_id"]
                else:
                    amount = sum(abs(lines._get(lid, "amount_residual_currency")) for lid in batch)
                    currency = lines._row(batch[0])["currency_id"]
                memo_field = "memo" if self._major >= 18 else "ref"
                pid = payments._create_one({
                    "date": wiz["payment_date"], "amount": amount, "currency_id": currency,
                    "payment_type": wiz["payment_type"], "partner_type": wiz["partner_type"],
                    "partner_id": wiz.get("partner_id"), "journal_id": wiz["journal_id"],
                    memo_field: wiz.get("communication") or False})
                payments.browse(pid).action_post()
                counterpart = payments._counterpart_line(pid)
                for lid in sorted(batch, key=lambda l: (lines._row(l).get("date_maturity") or "", l)):
                    if wiz["payment_type"] == "inbound":
                        reconcile(self.env, lid, counterpart)
                    else:
                        reconcile(self.env, counterpart, lid)
                created.append(pid)
        self.env.store.touch()
        if self.env.context.get("dont_redirect_to_payments"):
            return True
        action = {"name": "Payments", "type": "ir.actions.act_window", "res_model": "account.payment",
                  "context": {"create": False}}
        if len(created) == 1:
            action.update(view_mode="form", res_id=created[0])
        else:
            action.update(view_mode="tree,form" if self._major < 18 else "list,form",
                          domain=[("id", "in", created)])
        return action

    def _rows_or_missing(self) -> list[int]:
        for rid in self._ids:
            self._row(rid)
        return list(self._ids)


def seed_base(env, company_currency: str) -> None:
    """Base data of a fresh database with the generic chart of accounts (ids as Odoo assigns them)."""
    cur = env["res.currency"]
    for name, full, symbol, position, active in (
            ("EUR", "Euro", "€", "after", True), ("USD", "United States dollar", "$", "before", True),
            ("GBP", "Pound sterling", "£", "before", False), ("CHF", "Swiss franc", "CHF", "after", False)):
        cur._create_one({"name": name, "full_name": full, "symbol": symbol, "position": position,
                         "active": active or name == company_currency})
    company_cur = next(rid for rid, row in cur._table.items() if row["name"] == company_currency)
    partners = env["res.partner"]
    partners._create_one({"name": "My Company", "is_company": True, "email": "info@yourcompany.com"})
    partners._create_one({"name": "OdooBot", "active": False, "email": "odoobot@example.com"})
    partners._create_one({"name": "Mitchell Admin", "email": "admin@yourcompany.example.com", "parent_id": 1})
    env["res.company"]._create_one({"name": "My Company", "currency_id": company_cur, "partner_id": 1,
                                    "email": "info@yourcompany.com"})
    users = env["res.users"]
    users._create_one({"name": "OdooBot", "login": "__system__", "partner_id": 2, "company_id": 1,
                       "active": False})
    users._create_one({"name": "Mitchell Admin", "login": "admin", "partner_id": 3, "company_id": 1,
                       "tz": "Europe/Brussels"})
    accounts = env["account.account"]
    for code, name, kind, rec in (
            ("101401", "Bank", "asset_cash", False), ("101402", "Outstanding Receipts", "asset_current", True),
            ("101403", "Outstanding Payments", "asset_current", True), ("101501", "Cash", "asset_cash", False),
            ("121000", "Account Receivable", "asset_receivable", True), ("131000", "Tax Paid", "asset_current", False),
            ("211000", "Account Payable", "liability_payable", True),
            ("251000", "Tax Received", "liability_current", False), ("400000", "Product Sales", "income", False),
            ("600000", "Expenses", "expense", False), ("999999", "Undistributed Profits/Losses", "equity", False)):
        accounts._create_one({"code": code, "name": name, "account_type": kind, "reconcile": rec})
    journals = env["account.journal"]
    for name, code, kind, seq, account, refund, payment in (
            ("Customer Invoices", "INV", "sale", 5, "400000", True, False),
            ("Vendor Bills", "BILL", "purchase", 6, "600000", True, False),
            ("Miscellaneous Operations", "MISC", "general", 9, False, False, False),
            ("Exchange Difference", "EXCH", "general", 9, False, False, False),
            ("Cash Basis Taxes", "CABA", "general", 10, False, False, False),
            ("Bank", "BNK1", "bank", 10, "101401", False, True),
            ("Cash", "CSH1", "cash", 10, "101501", False, True)):
        journals._create_one({"name": name, "code": code, "type": kind, "sequence": seq,
                              "default_account_id": _account(env, account) if account else False,
                              "refund_sequence": refund, "payment_sequence": payment})
    taxes = env["account.tax"]
    taxes._create_one({"name": "15%", "amount": 15.0, "type_tax_use": "sale"})
    taxes._create_one({"name": "15%", "amount": 15.0, "type_tax_use": "purchase"})
