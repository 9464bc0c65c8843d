"""The fake Odoo (tests/fakes/fake_odoo) behaves like Odoo 17/18/19 on the wire.

It is driven by three independent clients: raw JSON-RPC over ``requests``, the standard library's
``xmlrpc.client``, and JSON-2 over ``requests``. Expected values are computed by hand from the seeded data and
from Odoo's sources (see the fake's module docstrings for the files read).
"""
from __future__ import annotations

import json
import socket
import threading
import xmlrpc.client
from datetime import date

import pytest
import requests

from tests.fakes.fake_odoo import FakeOdoo

TODAY = date(2026, 11, 20)
DB = "odoo"
ERROR_KEYS = {"name", "debug", "message", "arguments", "context"}


class RpcError(Exception):
    def __init__(self, error: dict) -> None:
        super().__init__(error["data"]["message"])
        self.error = error
        self.data = error["data"]


class JsonRpc:
    """A bare JSON-RPC client, as a connector would write it with requests."""

    def __init__(self, fake: FakeOdoo) -> None:
        self.url, self.http = fake.jsonrpc_url, requests.Session()
        self.next_id = 0

    def raw(self, service: str, method: str, *args) -> requests.Response:
        self.next_id += 1
        return self.http.post(self.url, json={"jsonrpc": "2.0", "method": "call", "id": self.next_id,
                                              "params": {"service": service, "method": method, "args": list(args)}})

    def call(self, service: str, method: str, *args):
        body = self.raw(service, method, *args).json()
        if "error" in body:
            raise RpcError(body["error"])
        return body.get("result")

    def execute_kw(self, model: str, method: str, args: list, kwargs: dict | None = None, *, uid: int = 2,
                   password: str = "admin"):
        return self.call("object", "execute_kw", DB, uid, password, model, method, args, kwargs or {})


class Json2:
    def __init__(self, fake: FakeOdoo, key: str | None = None) -> None:
        self.fake, self.key = fake, key or fake.api_key

    def post(self, model: str, method: str, body: dict | None = None, *, headers: dict | None = None):
        hdrs = {"Authorization": f"bearer {self.key}", "X-Odoo-Database": DB, "User-Agent": "fake-odoo-tests"}
        hdrs.update(headers or {})
        return requests.post(self.fake.json2_url(model, method), json=body if body is not None else {},
                             headers=hdrs)

    def __call__(self, model: str, method: str, **body):
        resp = self.post(model, method, body)
        assert resp.status_code == 200, resp.text
        return resp.json()


def xml(fake: FakeOdoo, service: str = "object", *, legacy: bool = False) -> xmlrpc.client.ServerProxy:
    url = f"{fake.url}/xmlrpc/{service}" if legacy else fake.xmlrpc_url(service)
    return xmlrpc.client.ServerProxy(url)


@pytest.fixture(params=[17, 18, 19])
def odoo(request):
    with FakeOdoo(request.param, today=TODAY) as fake:
        yield fake


@pytest.fixture
def odoo17():
    with FakeOdoo(17, today=TODAY) as fake:
        yield fake


@pytest.fixture
def odoo18():
    with FakeOdoo(18, today=TODAY) as fake:
        yield fake


@pytest.fixture
def odoo19():
    with FakeOdoo(19, today=TODAY) as fake:
        yield fake


def seed_ledger(fake: FakeOdoo) -> dict[str, int]:
    """Posted customer invoices whose figures the read_group tests compute by hand."""
    ids = {"azure": fake.add_partner("Azure Interior", is_company=True, email="azure@example.com"),
           "deco": fake.add_partner("Deco Addict", is_company=True, email="deco@example.com")}
    ids["inv1"] = fake.add_invoice(ids["azure"], [("Consulting", 2, 500.0, [1])], invoice_date="2026-11-03")
    ids["inv2"] = fake.add_invoice(ids["azure"], [("Support", 1, 200.0)], invoice_date="2026-11-20")
    ids["inv3"] = fake.add_invoice(ids["deco"], [("Desk", 3, 100.0, [1])], invoice_date="2026-11-10",
                                   payment_state="paid")
    ids["inv4"] = fake.add_invoice(ids["deco"], [("Chair", 4, 50.0)], invoice_date="2026-12-02",
                                   payment_state="partial", amount_paid=50.0)
    ids["draft"] = fake.add_invoice(ids["azure"], [("Draft work", 1, 999.0)], invoice_date="2026-12-15",
                                    state="draft")
    ids["refund"] = fake.add_invoice(ids["azure"], [("Refund", 1, 100.0)], invoice_date="2026-12-20",
                                     move_type="out_refund")
    return ids


POSTED_INVOICES = [("move_type", "=", "out_invoice"), ("state", "=", "posted")]


# --- common service --------------------------------------------------------------------------------------


def test_version_and_authentication_on_both_rpc_transports(odoo):
    rpc, common = JsonRpc(odoo), xml(odoo, "common")
    expected = {"server_version": f"{odoo.version}.0", "server_version_info": [odoo.version, 0, 0, "final", 0, ""],
                "server_serie": f"{odoo.version}.0", "protocol_version": 1}
    assert rpc.call("common", "version") == expected
    assert common.version() == expected
    assert rpc.call("common", "authenticate", DB, "admin", "admin", {}) == 2
    assert common.authenticate(DB, "admin", "admin", {}) == 2
    assert rpc.call("common", "login", DB, "admin", "admin") == 2
    assert rpc.call("common", "authenticate", DB, "admin", odoo.api_key, {}) == 2  # API key as password
    assert rpc.call("common", "authenticate", DB, "admin", "wrong", {}) is False  # not an error
    assert common.authenticate(DB, "nobody", "admin", {}) is False
    with pytest.raises(RpcError) as err:
        rpc.call("common", "authenticate", "nodb", "admin", "admin", {})
    assert err.value.data["name"] == "psycopg2.OperationalError"
    assert 'database "nodb" does not exist' in err.value.data["message"]
    with pytest.raises(RpcError) as err:
        rpc.call("common", "nosuch")
    assert err.value.data["name"] == "builtins.Exception" and err.value.data["message"] == "Method not found: nosuch"
    assert rpc.call("db", "list") == [DB] and xml(odoo, "db").server_version() == f"{odoo.version}.0"


def test_version_discovery_routes(odoo):
    resp = requests.post(f"{odoo.url}/web/webclient/version_info", json={"jsonrpc": "2.0", "params": {}, "id": 9})
    assert resp.json() == {"jsonrpc": "2.0", "id": 9, "result": JsonRpc(odoo).call("common", "version")}
    web_version = requests.get(f"{odoo.url}/web/version")
    if odoo.version >= 19:
        assert web_version.json() == {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}
    else:
        assert web_version.status_code == 404 and web_version.headers["Content-Type"].startswith("text/html")


def test_password_change_and_revoked_key(odoo19):
    rpc = JsonRpc(odoo19)
    key = odoo19.new_api_key()
    odoo19.set_password("n3w")
    assert rpc.call("common", "authenticate", DB, "admin", "admin", {}) is False
    # a fresh database has two active contacts: the company and the admin (OdooBot is archived)
    assert rpc.execute_kw("res.partner", "search_count", [[]], password="n3w") == 2
    assert Json2(odoo19, key)("res.partner", "search_count", domain=[]) == 2
    odoo19.revoke_api_key(key)
    assert Json2(odoo19, key).post("res.partner", "search_count", {"domain": []}).status_code == 401
    assert Json2(odoo19)("res.users", "context_get") == {"lang": "en_US", "tz": "Europe/Brussels", "uid": 2}


# --- searching ---------------------------------------------------------------------------------------------


def seed_contacts(fake: FakeOdoo) -> dict[str, int]:
    ids = {"azure": fake.add_partner("Azure Interior", is_company=True, email="azure@example.com",
                                     customer_rank=2, city="Fremont"),
           "deco": fake.add_partner("Deco Addict", is_company=True, email="deco@example.com", customer_rank=1,
                                    city="Pleasant Hill"),
           "gemini": fake.add_partner("Gemini Furniture", is_company=True, supplier_rank=3)}
    ids["brandon"] = fake.add_partner("Brandon Freeman", email="brandon.freeman@example.com",
                                      parent_id=ids["azure"], city="Fremont")
    ids["colleen"] = fake.add_partner("Colleen Diaz", email="colleen@EXAMPLE.com", parent_id=ids["azure"])
    ids["douglas"] = fake.add_partner("Douglas Fletcher", parent_id=ids["deco"])
    ids["archived"] = fake.add_partner("Old Supplier", is_company=True, active=False, supplier_rank=1)
    return ids


def test_search_read_with_complex_domains_agrees_across_transports(odoo):
    ids = seed_contacts(odoo)
    rpc, obj = JsonRpc(odoo), xml(odoo)

    def via_all(domain, **kw):
        a = rpc.execute_kw("res.partner", "search", [domain], kw)
        b = obj.execute_kw(DB, 2, "admin", "res.partner", "search", [domain], kw)
        assert a == b
        if odoo.version >= 19:
            assert Json2(odoo)("res.partner", "search", domain=domain, **kw) == a
        return a

    # implicit AND, '|' and '!'
    assert via_all([("is_company", "=", True), "|", ("customer_rank", ">", 0), ("supplier_rank", ">=", 3)]) \
        == [ids["azure"], ids["deco"], ids["gemini"]]
    assert sorted(via_all(["!", ("is_company", "=", True), ("email", "!=", False)])) == \
        sorted([ids["brandon"], ids["colleen"], 3])  # 3 is the admin's partner (admin@yourcompany.example.com)
    # the like family
    assert via_all([("email", "ilike", "@EXAMPLE.COM"), ("is_company", "=", False)]) == \
        [ids["brandon"], ids["colleen"]]
    assert via_all([("email", "like", "@example.com"), ("is_company", "=", False)]) == [ids["brandon"]]
    assert via_all([("name", "=like", "D%")]) == [ids["deco"], ids["douglas"]]
    assert via_all([("name", "=ilike", "deco addict")]) == [ids["deco"]]
    # != and not ilike match empty values too (Odoo adds "OR col IS NULL")
    assert ids["douglas"] in via_all([("city", "!=", "Fremont")])
    assert ids["douglas"] in via_all([("email", "not ilike", "example")])
    assert ids["douglas"] not in via_all([("email", "ilike", "example")])
    # in / not in, with False standing for "no value"
    assert via_all([("city", "in", ["Pleasant Hill", False]), ("parent_id", "=", ids["deco"])]) == [ids["douglas"]]
    assert ids["brandon"] not in via_all([("city", "not in", ["Fremont"])])
    # many2one by id, by name, through a dotted path, and x2many
    assert via_all([("parent_id", "=", ids["azure"])]) == [ids["brandon"], ids["colleen"]]
    assert via_all([("parent_id", "ilike", "azure")]) == [ids["brandon"], ids["colleen"]]
    assert via_all([("parent_id.city", "=", "Pleasant Hill")]) == [ids["douglas"]]
    assert via_all([("child_ids.email", "ilike", "freeman")]) == [ids["azure"]]
    assert via_all([("child_ids", "=", False), ("is_company", "=", True)]) == [ids["gemini"]]  # 1 has the admin
    # archived records only when asked for
    assert ids["archived"] not in via_all([("supplier_rank", ">", 0)])
    assert via_all([("supplier_rank", ">", 0), ("active", "=", False)]) == [ids["archived"]]
    # order, offset, limit; search_count
    assert via_all([("is_company", "=", True)], order="customer_rank desc, name", limit=2, offset=1) == \
        [ids["deco"], ids["gemini"]]
    assert rpc.execute_kw("res.partner", "search_count", [[("parent_id", "!=", False)]]) == 4  # + admin's
    rows = rpc.execute_kw("res.partner", "search_read", [[("parent_id", "=", ids["azure"])]],
                          {"fields": ["name", "parent_id", "email", "child_ids", "is_company"], "order": "name desc"})
    assert rows == [
        {"id": ids["colleen"], "name": "Colleen Diaz", "parent_id": [ids["azure"], "Azure Interior"],
         "email": "colleen@EXAMPLE.com", "child_ids": [], "is_company": False},
        {"id": ids["brandon"], "name": "Brandon Freeman", "parent_id": [ids["azure"], "Azure Interior"],
         "email": "brandon.freeman@example.com", "child_ids": [], "is_company": False}]
    assert obj.execute_kw(DB, 2, "admin", "res.partner", "read", [[ids["brandon"]]], {"fields": ["display_name"]}) \
        == [{"id": ids["brandon"], "display_name": "Azure Interior, Brandon Freeman"}]


def test_domain_and_order_errors_are_valueerrors(odoo17, odoo19):
    for fake, where in ((odoo17, "leaf"), (odoo19, "condition")):
        rpc = JsonRpc(fake)
        with pytest.raises(RpcError) as err:
            rpc.execute_kw("res.partner", "search", [[("nope", "=", 1)]])
        assert err.value.data["name"] == "builtins.ValueError"
        assert err.value.data["message"] == f"Invalid field res.partner.nope in {where} ('nope', '=', 1)"
        with pytest.raises(RpcError) as err:
            rpc.execute_kw("res.partner", "search", [["|", ("name", "=", "x")]])
        assert "is syntactically not correct" in err.value.data["message"]
        with pytest.raises(RpcError) as err:
            rpc.execute_kw("res.partner", "search", [[]], {"order": "bogus desc"})
        assert err.value.data["message"].startswith('Invalid "order" specified (bogus desc).')
        with pytest.raises(RpcError) as err:
            rpc.execute_kw("res.partner", "search", [[]], {"count": True})  # removed in 17
        assert err.value.data["name"] == "builtins.TypeError"


def test_name_search_signature_and_fields_get(odoo17, odoo18):
    for fake in (odoo17, odoo18):
        seed_contacts(fake)
    assert JsonRpc(odoo17).execute_kw("res.partner", "name_search", ["fre"], {"args": [("is_company", "=", False)]}) \
        == [[7, "Azure Interior, Brandon Freeman"]]
    with pytest.raises(RpcError):  # 18 renamed ``args`` to ``domain``
        JsonRpc(odoo18).execute_kw("res.partner", "name_search", ["fre"], {"args": []})
    assert JsonRpc(odoo18).execute_kw("res.partner", "name_search", ["fre"], {"domain": [], "limit": 5}) \
        == [[7, "Azure Interior, Brandon Freeman"]]
    desc = xml(odoo17).execute_kw(DB, 2, "admin", "account.move", "fields_get", [],
                                  {"attributes": ["type", "string", "selection", "relation"]})
    assert desc["partner_id"] == {"type": "many2one", "string": "Partner", "relation": "res.partner"}
    assert ["in_payment", "In Payment"] in desc["payment_state"]["selection"]
    assert desc["amount_residual"]["type"] == "monetary"
    assert "mobile" in JsonRpc(odoo17).execute_kw("res.partner", "fields_get", [], {"attributes": ["type"]})
    assert "mobile" not in JsonRpc(odoo18).execute_kw("res.partner", "fields_get", [], {"attributes": ["type"]})


# --- invoices ----------------------------------------------------------------------------------------------


def test_create_invoice_with_line_commands_computes_totals(odoo):
    rpc = JsonRpc(odoo)
    partner = odoo.add_partner("Azure Interior", is_company=True)
    move_id = rpc.execute_kw("account.move", "create", [{
        "move_type": "out_invoice", "partner_id": partner, "invoice_date": "2026-11-05", "ref": "PO-7781",
        "invoice_line_ids": [
            (0, 0, {"name": "Consulting", "quantity": 3, "price_unit": 333.33, "tax_ids": [(6, 0, [1])]}),
            (0, 0, {"name": "Travel", "quantity": 1, "price_unit": 120.5, "discount": 10}),
        ]}])
    assert isinstance(move_id, int)  # a dict in, an id out; a list in gives a list
    [move] = rpc.execute_kw("account.move", "read", [[move_id]], {"fields": [
        "name", "state", "payment_state", "move_type", "amount_untaxed", "amount_tax", "amount_total",
        "amount_residual", "amount_total_signed", "amount_residual_signed", "amount_untaxed_signed",
        "invoice_date", "invoice_date_due", "date", "currency_id", "company_id", "journal_id", "partner_id",
        "display_name", "invoice_line_ids", "line_ids"]})
    # 3 x 333.33 = 999.99, tax 15% = 150.00 (rounded per line); 120.5 - 10% = 108.45
    assert move["amount_untaxed"] == 1108.44 and move["amount_tax"] == 150.0 and move["amount_total"] == 1258.44
    assert move["amount_residual"] == 1258.44  # a draft is due in full
    assert move["amount_total_signed"] == move["amount_residual_signed"] == 1258.44
    assert move["amount_untaxed_signed"] == 1108.44
    assert (move["name"], move["state"], move["payment_state"]) == ("/", "draft", "not_paid")
    assert move["display_name"] == f"Draft Invoice (* {move_id}) (PO-7781)"
    assert move["date"] == move["invoice_date"] == move["invoice_date_due"] == "2026-11-05"
    assert move["currency_id"] == [2, "USD"] and move["company_id"] == [1, "My Company"]
    assert move["journal_id"] == [1, "Customer Invoices"] and move["partner_id"] == [partner, "Azure Interior"]
    assert len(move["invoice_line_ids"]) == 2 and len(move["line_ids"]) == 4  # + tax line + receivable line
    lines = rpc.execute_kw("account.move.line", "search_read", [[("move_id", "=", move_id)]], {
        "fields": ["name", "display_type", "price_subtotal", "price_total", "debit", "credit", "account_id"],
        "order": "id"})
    assert [(l["display_type"], l["price_subtotal"], l["price_total"], l["debit"], l["credit"]) for l in lines] == [
        ("product", 999.99, 1149.99, 0.0, 999.99), ("product", 108.45, 108.45, 0.0, 108.45),
        ("tax", 0.0, 0.0, 0.0, 150.0), ("payment_term", 0.0, 0.0, 1258.44, 0.0)]
    assert lines[3]["account_id"] == [5, "121000 Account Receivable"]
    # editing lines with (1, id, vals) and (2, id) commands recomputes the totals of the draft
    rpc.execute_kw("account.move", "write", [[move_id], {"invoice_line_ids": [
        (1, lines[0]["id"], {"quantity": 1}), (2, lines[1]["id"], 0)]}])
    [move] = rpc.execute_kw("account.move", "read", [[move_id], ["amount_untaxed", "amount_tax", "amount_total"]])
    assert (move["amount_untaxed"], move["amount_tax"], move["amount_total"]) == (333.33, 50.0, 383.33)
    # a list of dicts gives a list of ids; the vendor bill and the credit note sign their amounts
    bill, refund = rpc.execute_kw("account.move", "create", [[
        {"move_type": "in_invoice", "partner_id": partner, "invoice_date": "2026-11-06",
         "invoice_line_ids": [(0, 0, {"name": "Desk", "price_unit": 200.0, "tax_ids": [(6, 0, [2])]})]},
        {"move_type": "out_refund", "partner_id": partner,
         "invoice_line_ids": [(0, 0, {"name": "Discount", "price_unit": 40.0})]}]])
    signed = rpc.execute_kw("account.move", "read", [[bill, refund], ["amount_total", "amount_total_signed",
                                                                      "amount_residual_signed"]])
    assert [(s["amount_total"], s["amount_total_signed"], s["amount_residual_signed"]) for s in signed] == \
        [(230.0, -230.0, -230.0), (40.0, -40.0, -40.0)]
    # taxes are rounded per line (the company default, round_per_line): 2 x round(0.015) = 0.04, not 0.03
    tiny = odoo.add_invoice(partner, [("A", 1, 0.10, [1]), ("B", 1, 0.10, [1])], state="draft")
    [tiny_move] = rpc.execute_kw("account.move", "read", [[tiny], ["amount_tax", "amount_total"]])
    assert (tiny_move["amount_tax"], tiny_move["amount_total"]) == (0.04, 0.24)


def test_invoice_in_a_foreign_currency_signs_in_company_currency(odoo):
    odoo.add_currency("EUR", 0.9)  # 1 USD = 0.90 EUR
    inv = odoo.add_invoice("Azure Interior", amount=90.0, currency="EUR", payment_state="partial",
                           amount_paid=45.0)
    [move] = odoo.read("account.move", inv, ["currency_id", "amount_total", "amount_total_signed",
                                             "amount_residual", "amount_residual_signed", "payment_state"])
    assert move == {"id": inv, "currency_id": [1, "EUR"], "amount_total": 90.0, "amount_total_signed": 100.0,
                    "amount_residual": 45.0, "amount_residual_signed": 50.0, "payment_state": "partial"}


def test_action_post_numbering_and_checks(odoo):
    rpc, obj = JsonRpc(odoo), xml(odoo)
    partner = odoo.add_partner("Deco Addict", is_company=True)
    line = [(0, 0, {"name": "Chair", "quantity": 2, "price_unit": 55.0})]
    first = rpc.execute_kw("account.move", "create", [{"move_type": "out_invoice", "partner_id": partner,
                                                        "invoice_line_ids": line}])
    second = rpc.execute_kw("account.move", "create", [{"move_type": "out_invoice", "partner_id": partner,
                                                         "invoice_line_ids": line}], {"context": {"lang": "en_US"}})
    assert rpc.execute_kw("account.move", "action_post", [[second]]) is False  # Odoo's action_post returns False
    assert obj.execute_kw(DB, 2, "admin", "account.move", "action_post", [[first]]) is False
    rows = rpc.execute_kw("account.move", "read", [[first, second], ["name", "state", "invoice_date", "date"]])
    assert [(r["name"], r["state"], r["invoice_date"]) for r in rows] == [
        ("INV/2026/00002", "posted", "2026-11-20"), ("INV/2026/00001", "posted", "2026-11-20")]
    assert rpc.execute_kw("res.partner", "read", [[partner], ["customer_rank"]])[0]["customer_rank"] == 2
    refund = rpc.execute_kw("account.move", "create", [{"move_type": "out_refund", "partner_id": partner,
                                                         "invoice_line_ids": line}])
    rpc.execute_kw("account.move", "action_post", [[refund]])
    assert rpc.execute_kw("account.move", "read", [[refund], ["name"]])[0]["name"] == "RINV/2026/00001"
    bill = rpc.execute_kw("account.move", "create", [{"move_type": "in_invoice", "partner_id": partner,
                                                       "invoice_line_ids": line}])
    with pytest.raises(RpcError) as err:
        rpc.execute_kw("account.move", "action_post", [[bill]])
    assert err.value.data["name"] == "odoo.exceptions.UserError"
    assert err.value.data["message"] == "The Bill/Refund date is required to validate this document."
    rpc.execute_kw("account.move", "write", [[bill], {"invoice_date": "2026-10-31"}])
    rpc.execute_kw("account.move", "action_post", [[bill]])
    assert rpc.execute_kw("account.move", "read", [[bill], ["name", "date"]])[0] == \
        {"id": bill, "name": "BILL/2026/00001", "date": "2026-10-31"}
    empty = rpc.execute_kw("account.move", "create", [{"move_type": "out_invoice", "partner_id": partner}])
    with pytest.raises(RpcError) as err:
        rpc.execute_kw("account.move", "action_post", [[empty]])
    assert err.value.data["message"] == "You need to add a line before posting."
    nobody = rpc.execute_kw("account.move", "create", [{"move_type": "out_invoice", "invoice_line_ids": line}])
    with pytest.raises(RpcError) as err:
        rpc.execute_kw("account.move", "action_post", [[nobody]])
    assert err.value.data["message"] == ("The field 'Customer' is required, please complete it to validate the "
                                         "Customer Invoice.")
    # a failed call leaves nothing behind (each call is one transaction): the next number is unchanged
    third = rpc.execute_kw("account.move", "create", [{"move_type": "out_invoice", "partner_id": partner,
                                                        "invoice_line_ids": line}])
    rpc.execute_kw("account.move", "action_post", [[third]])
    assert rpc.execute_kw("account.move", "read", [[third], ["name"]])[0]["name"] == "INV/2026/00003"
    with pytest.raises(RpcError) as err:
        rpc.execute_kw("account.move", "unlink", [[third]])
    assert err.value.data["message"] == "You cannot delete an item linked to a posted entry."
    assert rpc.execute_kw("account.move", "unlink", [[empty]]) is True
    assert rpc.execute_kw("account.move", "read", [[empty], ["name"]]) == []  # read skips deleted records
    assert rpc.execute_kw("account.move", "search_count", [[("move_type", "=", "out_invoice")]]) == 4


# --- payments ----------------------------------------------------------------------------------------------


def register(rpc: JsonRpc, move_ids: list[int], vals: dict) -> dict:
    ctx = {"active_model": "account.move", "active_ids": move_ids}
    wizard = rpc.execute_kw("account.payment.register", "create", [vals], {"context": ctx})
    return rpc.execute_kw("account.payment.register", "action_create_payments", [[wizard]], {"context": ctx})


def test_payment_register_wizard_updates_residual_and_payment_state(odoo):
    rpc = JsonRpc(odoo)
    inv = odoo.add_invoice("Azure Interior", [("Consulting", 2, 500.0, [1])])  # 1150.00
    action = register(rpc, [inv], {"amount": 400.0, "payment_date": "2026-11-21"})
    assert action == {"name": "Payments", "type": "ir.actions.act_window", "res_model": "account.payment",
                      "context": {"create": False}, "view_mode": "form", "res_id": action["res_id"]}
    memo = "ref" if odoo.version < 18 else "memo"
    [pay] = rpc.execute_kw("account.payment", "read", [[action["res_id"]], [
        "name", "amount", "state", "payment_type", "partner_type", "partner_id", "date", memo,
        "reconciled_invoice_ids", "is_reconciled", "journal_id"]])
    assert pay["name"] == "PBNK1/2026/00001" and pay["amount"] == 400.0 and pay["date"] == "2026-11-21"
    assert pay["state"] == ("posted" if odoo.version < 18 else "in_process")
    assert (pay["payment_type"], pay["partner_type"], pay[memo]) == ("inbound", "customer", "INV/2026/00001")
    assert pay["reconciled_invoice_ids"] == [inv] and pay["is_reconciled"] is True
    [move] = rpc.execute_kw("account.move", "read", [[inv], ["amount_residual", "amount_residual_signed",
                                                             "payment_state"]])
    assert move == {"id": inv, "amount_residual": 750.0, "amount_residual_signed": 750.0, "payment_state": "partial"}
    # the default amount of the wizard is what is left to pay; community Odoo then says 'paid'
    register(rpc, [inv], {})
    [move] = rpc.execute_kw("account.move", "read", [[inv], ["amount_residual", "payment_state"]])
    assert move == {"id": inv, "amount_residual": 0.0, "payment_state": "paid"}
    assert rpc.execute_kw("account.payment", "search_count", [[("partner_id.name", "=", "Azure Interior")]]) == 2
    with pytest.raises(RpcError) as err:
        register(rpc, [inv], {"amount": 1.0})
    assert err.value.data["message"] == ("You can't register a payment because there is nothing left to pay on "
                                         "the selected journal items.")
    draft = odoo.add_invoice("Azure Interior", amount=10.0, state="draft")
    with pytest.raises(RpcError) as err:
        register(rpc, [draft], {})
    assert err.value.data == {**err.value.data, "name": "odoo.exceptions.UserError",
                              "message": "You can only register payment for posted journal entries."}
    with pytest.raises(RpcError) as err:
        rpc.execute_kw("account.payment.register", "create", [{}], {"context": {"active_model": "res.partner"}})
    assert "should only be called on account.move or account.move.line records" in err.value.data["message"]


def test_payments_over_xmlrpc_and_the_none_result(odoo17):
    obj = xml(odoo17)
    bill = odoo17.add_bill("Wood Corner", [("Desk", 1, 200.0)])
    ctx = {"active_model": "account.move", "active_ids": [bill]}
    wizard = obj.execute_kw(DB, 2, "admin", "account.payment.register", "create", [{"amount": 200.0}],
                            {"context": ctx})
    action = obj.execute_kw(DB, 2, "admin", "account.payment.register", "action_create_payments", [[wizard]],
                            {"context": ctx})
    [pay] = obj.execute_kw(DB, 2, "admin", "account.payment", "read", [[action["res_id"]]],
                           {"fields": ["payment_type", "partner_type", "reconciled_bill_ids"]})
    assert (pay["payment_type"], pay["partner_type"], pay["reconciled_bill_ids"]) == ("outbound", "supplier", [bill])
    [move] = obj.execute_kw(DB, 2, "admin", "account.move", "read", [[bill]],
                            {"fields": ["payment_state", "amount_residual_signed"]})
    assert (move["payment_state"], move["amount_residual_signed"]) == ("paid", 0.0)
    # account.payment.action_post returns None: it runs, but XML-RPC (allow_none=False) cannot answer it
    pid = obj.execute_kw(DB, 2, "admin", "account.payment", "create", [{"amount": 25.0, "partner_id": 1}])
    with pytest.raises(xmlrpc.client.Fault) as fault:
        obj.execute_kw(DB, 2, "admin", "account.payment", "action_post", [[pid]])
    assert fault.value.faultCode == 1 and "cannot marshal None" in fault.value.faultString
    assert obj.execute_kw(DB, 2, "admin", "account.payment", "read", [[pid]], {"fields": ["state"]})[0]["state"] \
        == "posted"
    rpc = JsonRpc(odoo17)
    body = rpc.raw("object", "execute_kw", DB, 2, "admin", "account.payment", "action_cancel", [[pid]], {}).json()
    assert body["result"] is True
    other = obj.execute_kw(DB, 2, "admin", "account.payment", "create", [{"amount": 5.0}])
    body = rpc.raw("object", "execute_kw", DB, 2, "admin", "account.payment", "action_post",
                               [[other]], {}).json()
    assert body == {"jsonrpc": "2.0", "id": 2}  # JSON-RPC leaves "result" out when the method returns None
    # execute: positional arguments after the method name
    assert obj.execute(DB, 2, "admin", "account.payment", "search_count", [("state", "=", "posted")]) == 2


def test_accountant_mode_in_payment_until_bank_matching(odoo18):
    with FakeOdoo(18, today=TODAY, accountant=True) as fake:
        rpc = JsonRpc(fake)
        inv = fake.add_invoice("Azure Interior", amount=80.0)
        action = register(rpc, [inv], {})
        assert rpc.execute_kw("account.move", "read", [[inv], ["payment_state"]])[0]["payment_state"] == "in_payment"
        fake.match_payment(action["res_id"])
        assert rpc.execute_kw("account.move", "read", [[inv], ["payment_state"]])[0]["payment_state"] == "paid"
        assert rpc.execute_kw("account.payment", "read", [[action["res_id"]], ["state"]])[0]["state"] == "paid"
    seeded = {state: odoo18.add_invoice("Deco Addict", amount=60.0, payment_state=state)
              for state in ("not_paid", "partial", "paid", "in_payment", "reversed")}
    got = {row["id"]: row["payment_state"] for row in odoo18.read("account.move", list(seeded.values()),
                                                                   ["payment_state"])}
    assert got == {mid: state for state, mid in seeded.items()}
    groups = JsonRpc(odoo18).execute_kw("account.move", "read_group", [
        [("move_type", "=", "out_invoice")], ["amount_residual:sum"], ["payment_state"]])
    assert [(g["payment_state"], g["payment_state_count"], g["amount_residual"]) for g in groups] == [
        ("in_payment", 1, 0.0), ("not_paid", 1, 60.0), ("paid", 1, 0.0), ("partial", 1, 30.0),
        ("reversed", 1, 0.0)]


# --- grouping ----------------------------------------------------------------------------------------------


def test_read_group_shapes(odoo):
    ids = seed_ledger(odoo)
    rpc, obj = JsonRpc(odoo), xml(odoo)
    monthly = rpc.execute_kw("account.move", "read_group", [
        POSTED_INVOICES, ["amount_untaxed:sum", "amount_total:sum", "amount_residual:sum"], ["invoice_date:month"]])
    assert monthly == [
        {"invoice_date:month": "November 2026", "invoice_date_count": 3, "amount_untaxed": 1500.0,
         "amount_total": 1695.0, "amount_residual": 1350.0,
         "__domain": ["&", "&", ["move_type", "=", "out_invoice"], ["state", "=", "posted"],
                      "&", ["invoice_date", ">=", "2026-11-01"], ["invoice_date", "<", "2026-12-01"]],
         "__range": {"invoice_date:month": {"from": "2026-11-01", "to": "2026-12-01"}}},
        {"invoice_date:month": "December 2026", "invoice_date_count": 1, "amount_untaxed": 200.0,
         "amount_total": 200.0, "amount_residual": 150.0,
         "__domain": ["&", "&", ["move_type", "=", "out_invoice"], ["state", "=", "posted"],
                      "&", ["invoice_date", ">=", "2026-12-01"], ["invoice_date", "<", "2027-01-01"]],
         "__range": {"invoice_date:month": {"from": "2026-12-01", "to": "2027-01-01"}}}]
    assert obj.execute_kw(DB, 2, "admin", "account.move", "read_group",
                          [POSTED_INVOICES, ["amount_untaxed:sum", "amount_total:sum", "amount_residual:sum"],
                           ["invoice_date:month"]]) == monthly
    # the group's __domain finds exactly the group's records
    assert rpc.execute_kw("account.move", "search_count", [monthly[0]["__domain"]]) == 3
    # a plain date groupby means month; the label key is the spec as given
    plain = rpc.execute_kw("account.move", "read_group", [POSTED_INVOICES, ["amount_total"], ["invoice_date"]])
    assert [(g["invoice_date"], g["invoice_date_count"], g["amount_total"]) for g in plain] == \
        [("November 2026", 3, 1695.0), ("December 2026", 1, 200.0)]
    assert plain[0]["__range"] == {"invoice_date": {"from": "2026-11-01", "to": "2026-12-01"}}
    # lazy grouping on two fields: first level only, the rest in __context
    lazy = rpc.execute_kw("account.move", "read_group", [POSTED_INVOICES, ["amount_total:sum"],
                                                         ["partner_id", "invoice_date:month"]])
    assert [(g["partner_id"], g["partner_id_count"], g["amount_total"], g["__context"]) for g in lazy] == [
        ([ids["azure"], "Azure Interior"], 2, 1350.0, {"group_by": ["invoice_date:month"]}),
        ([ids["deco"], "Deco Addict"], 2, 545.0, {"group_by": ["invoice_date:month"]})]
    assert lazy[0]["__domain"] == ["&", "&", ["move_type", "=", "out_invoice"], ["state", "=", "posted"],
                                   ["partner_id", "=", ids["azure"]]]
    eager = rpc.execute_kw("account.move", "read_group", [POSTED_INVOICES, ["amount_total:sum"],
                                                          ["partner_id", "invoice_date:month"]], {"lazy": False})
    assert [(g["partner_id"][1], g["invoice_date:month"], g["__count"], g["amount_total"]) for g in eager] == [
        ("Azure Interior", "November 2026", 2, 1350.0), ("Deco Addict", "November 2026", 1, 345.0),
        ("Deco Addict", "December 2026", 1, 200.0)]
    assert "__context" not in eager[0]
    by_total = rpc.execute_kw("account.move", "read_group", [POSTED_INVOICES, ["total:sum(amount_total)"],
                                                             ["partner_id"]], {"orderby": "total desc", "limit": 1})
    assert [(g["partner_id"][1], g["total"]) for g in by_total] == [("Azure Interior", 1350.0)]
    labels = {gran: rpc.execute_kw("account.move", "read_group", [[("id", "=", ids["inv1"])], [],
                                                                   [f"invoice_date:{gran}"]])[0]
              [f"invoice_date:{gran}"] for gran in ("day", "week", "quarter", "year")}
    assert labels == {"day": "03 Nov 2026", "week": "W45 2026", "quarter": "Q4 2026", "year": "2026"}


def test_formatted_read_group_only_in_19(odoo17, odoo18, odoo19):
    for fake in (odoo17, odoo18):
        with pytest.raises(RpcError) as err:
            JsonRpc(fake).execute_kw("account.move", "formatted_read_group", [[]], {"groupby": ["state"]})
        assert err.value.data["name"] == "builtins.AttributeError"
    ids = seed_ledger(odoo19)
    j2 = Json2(odoo19)
    groups = j2("account.move", "formatted_read_group", domain=POSTED_INVOICES,
                groupby=["partner_id", "invoice_date:month"], aggregates=["amount_total:sum", "__count"])
    azure, deco = [ids["azure"], "Azure Interior"], [ids["deco"], "Deco Addict"]
    assert groups == [
        {"partner_id": azure, "invoice_date:month": ["2026-11-01", "November 2026"],
         "__extra_domain": ["&", ["partner_id", "=", ids["azure"]],
                            "&", ["invoice_date", ">=", "2026-11-01"], ["invoice_date", "<", "2026-12-01"]],
         "amount_total:sum": 1350.0, "__count": 2},
        {"partner_id": deco, "invoice_date:month": ["2026-11-01", "November 2026"],
         "__extra_domain": ["&", ["partner_id", "=", ids["deco"]],
                            "&", ["invoice_date", ">=", "2026-11-01"], ["invoice_date", "<", "2026-12-01"]],
         "amount_total:sum": 345.0, "__count": 1},
        {"partner_id": deco, "invoice_date:month": ["2026-12-01", "December 2026"],
         "__extra_domain": ["&", ["partner_id", "=", ids["deco"]],
                            "&", ["invoice_date", ">=", "2026-12-01"], ["invoice_date", "<", "2027-01-01"]],
         "amount_total:sum": 200.0, "__count": 1}]
    assert JsonRpc(odoo19).execute_kw("account.move", "formatted_read_group", [POSTED_INVOICES], {
        "groupby": ["partner_id", "invoice_date:month"], "aggregates": ["amount_total:sum", "__count"]}) == groups
    for group in groups:  # domain & __extra_domain finds the group
        assert j2("account.move", "search_count", domain=["&", *POSTED_INVOICES, *group["__extra_domain"]]) \
            == group["__count"]
    top = j2("account.move", "formatted_read_group", domain=POSTED_INVOICES, groupby=["partner_id"],
             aggregates=["amount_residual:sum"], having=[["amount_residual:sum", ">", 200]],
             order="amount_residual:sum desc")
    assert top == [{"partner_id": azure, "__extra_domain": [["partner_id", "=", ids["azure"]]],
                    "amount_residual:sum": 1350.0}]  # Deco owes 150: filtered out by having
    bad = j2.post("account.move", "formatted_read_group", {"domain": [], "groupby": ["state"],
                                                          "aggregates": ["amount_total"]})
    assert bad.status_code == 500 and bad.json()["name"] == "builtins.ValueError"
    assert bad.json()["message"] == "Aggregate method is mandatory for 'amount_total'"
    still = j2("account.move", "read_group", domain=POSTED_INVOICES, fields=["amount_total:sum"], groupby=["state"])
    assert [(g["state"], g["state_count"], g["amount_total"]) for g in still] == [("posted", 4, 1895.0)]


# --- error shapes per transport ----------------------------------------------------------------------------


def error_scenarios(fake: FakeOdoo) -> dict[str, tuple]:
    """family -> (model, method, ids, args, kwargs, expected message) on a seeded fake."""
    inv = fake.add_invoice("Azure Interior", amount=10.0)
    name = fake.read("account.move", inv, ["name"])[0]["name"]
    partner = fake.add_partner("Loop Corp", is_company=True)
    missing_method = ("The method 'res.partner.nosuch' does not exist" if fake.version >= 18 else
                      "The method 'nosuch' does not exist on the model 'res.partner'")
    where = "condition" if fake.version >= 19 else "leaf"
    return {
        "UserError": ("account.move", "action_post", [inv], [], {}, f"The entry {name} (id {inv}) is already posted."),
        "ValidationError": ("res.partner", "write", [partner], [{"parent_id": partner}], {},
                            "You cannot create recursive Partner hierarchies."),
        "MissingError": ("account.move", "action_post", [999], [], {},
                         "Record does not exist or has been deleted.\n(Record: account.move(999,), User: 2)"),
        "ValueError": ("res.partner", "search_count", None, [[["bogus", "=", 1]]], {},
                       f"Invalid field res.partner.bogus in {where} ('bogus', '=', 1)"),
        "AttributeError": ("res.partner", "nosuch", [1], [], {}, missing_method),
    }


NAMES = {"UserError": "odoo.exceptions.UserError", "ValidationError": "odoo.exceptions.ValidationError",
         "MissingError": "odoo.exceptions.MissingError", "ValueError": "builtins.ValueError",
         "AttributeError": "builtins.AttributeError", "AccessError": "odoo.exceptions.AccessError",
         "AccessDenied": "odoo.exceptions.AccessDenied"}


def test_jsonrpc_error_shapes(odoo):
    rpc = JsonRpc(odoo)
    code = 0 if odoo.version >= 19 else 200
    for family, (model, method, ids, args, kwargs, message) in error_scenarios(odoo).items():
        resp = rpc.raw("object", "execute_kw", DB, 2, "admin", model, method, ([ids] if ids else []) + args, kwargs)
        body = resp.json()
        assert resp.status_code == 200 and set(body) == {"jsonrpc", "id", "error"} and body["id"] == rpc.next_id
        error = body["error"]
        assert (error["code"], error["message"]) == (code, "Odoo Server Error")
        assert set(error["data"]) == ERROR_KEYS, family
        assert (error["data"]["name"], error["data"]["message"]) == (NAMES[family], message)
        assert error["data"]["arguments"] == [message] and error["data"]["context"] == {}
        assert error["data"]["debug"].startswith("Traceback (most recent call last):")
    denied = rpc.raw("object", "execute_kw", DB, 2, "wrong", "res.partner", "search", [[]]).json()["error"]
    assert denied["data"]["name"] == NAMES["AccessDenied"] and denied["data"]["message"] == "Access Denied"
    assert denied["data"]["arguments"] == ["Access Denied"]
    assert "Traceback" not in denied["data"]["debug"]  # AccessDenied.suppress_traceback()
    viewer = odoo.add_user("viewer", "viewer", read_only=True)
    refused = rpc.raw("object", "execute_kw", DB, viewer, "viewer", "res.partner", "create", [{"name": "X"}]).json()
    assert refused["error"]["data"]["name"] == NAMES["AccessError"]
    assert refused["error"]["data"]["message"].startswith("You are not allowed to create 'Contact' (res.partner) "
                                                          "records.")
    unknown = rpc.raw("object", "execute_kw", DB, 2, "admin", "x.nope", "search", [[]]).json()["error"]["data"]
    assert (unknown["name"], unknown["message"]) == ("odoo.exceptions.UserError", "Object x.nope doesn't exist")
    private = rpc.raw("object", "execute_kw", DB, 2, "admin", "res.partner", "_search", [[]]).json()["error"]
    expected = ("Private methods (such as _search) cannot be called remotely." if odoo.version < 18 else
                "Private methods (such as 'res.partner._search') cannot be called remotely.")
    assert (private["data"]["name"], private["data"]["message"]) == (NAMES["AccessError"], expected)
    # a JSON-RPC body a connector can get wrong
    assert requests.post(odoo.jsonrpc_url, data=b"{not json", headers={"Content-Type": "application/json"}) \
        .status_code == 400


def test_xmlrpc_fault_codes(odoo):
    obj, legacy = xml(odoo), xml(odoo, legacy=True)
    expected_codes = {"UserError": 2, "ValidationError": 2, "MissingError": 2, "ValueError": 1,
                      "AttributeError": 1}
    for family, (model, method, ids, args, kwargs, message) in error_scenarios(odoo).items():
        call_args = ([ids] if ids else []) + args
        with pytest.raises(xmlrpc.client.Fault) as fault:
            obj.execute_kw(DB, 2, "admin", model, method, call_args, kwargs)
        assert fault.value.faultCode == expected_codes[family], family
        if expected_codes[family] == 2:
            assert fault.value.faultString == message
            with pytest.raises(xmlrpc.client.Fault) as old:
                legacy.execute_kw(DB, 2, "admin", model, method, call_args, kwargs)
            kind = "MissingError" if family == "MissingError" else "UserError"
            assert old.value.faultCode == f"warning -- {kind}\n\n{message}" and old.value.faultString == ""
        else:  # application errors carry the whole traceback
            assert fault.value.faultString.startswith("Traceback (most recent call last):")
            assert fault.value.faultString.rstrip().endswith(f"{family}: {message}")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        obj.execute_kw(DB, 2, "wrong", "res.partner", "search", [[]])
    assert (fault.value.faultCode, fault.value.faultString) == (3, "Access Denied")
    with pytest.raises(xmlrpc.client.Fault) as old:
        legacy.execute_kw(DB, 2, "wrong", "res.partner", "search", [[]])
    assert (old.value.faultCode, old.value.faultString) == ("AccessDenied", "Access Denied")
    viewer = odoo.add_user("viewer", "viewer", read_only=True)
    with pytest.raises(xmlrpc.client.Fault) as fault:
        obj.execute_kw(DB, viewer, "viewer", "res.partner", "unlink", [[1]])
    assert fault.value.faultCode == 4 and "You are not allowed to delete 'Contact'" in fault.value.faultString


def test_json2_statuses_and_error_bodies(odoo19):
    j2 = Json2(odoo19)
    statuses = {"UserError": 422, "ValidationError": 422, "MissingError": 404, "ValueError": 500,
                "AttributeError": 404}
    for family, (model, method, ids, args, kwargs, message) in error_scenarios(odoo19).items():
        body: dict = {"ids": ids} if ids else {}
        if args:
            body.update({"vals": args[0]} if method == "write" else {"domain": args[0]})
        resp = j2.post(model, method, body)
        assert resp.status_code == statuses[family], (family, resp.text)
        assert resp.headers["Content-Type"].startswith("application/json")
        error = resp.json()
        assert set(error) == ERROR_KEYS
        if family == "AttributeError":  # the dispatcher turns it into a werkzeug NotFound
            assert error["name"] == "werkzeug.exceptions.NotFound"
            assert error["arguments"] == [message, 404]
        else:
            assert error["name"] == NAMES[family] and error["arguments"] == [message]
        assert error["message"] == message
    missing_key = requests.post(odoo19.json2_url("res.partner", "search"), json={"domain": []})
    assert missing_key.status_code == 401 and missing_key.headers["WWW-Authenticate"] == "Bearer"
    assert missing_key.json()["message"] == ("User not authenticated, use an API Key with a Bearer Authorization "
                                             "header.")
    bad_key = Json2(odoo19, "0" * 40).post("res.partner", "search", {"domain": []})
    assert (bad_key.status_code, bad_key.json()["name"], bad_key.json()["message"], bad_key.json()["arguments"]) \
        == (401, "werkzeug.exceptions.Unauthorized", "Invalid apikey", ["Invalid apikey", 401])
    viewer = odoo19.add_user("viewer", "viewer", read_only=True)
    refused = Json2(odoo19, odoo19.new_api_key("viewer")).post("res.partner", "create", {"vals_list": [{"name": "X"}]})
    assert refused.status_code == 403 and refused.json()["name"] == "odoo.exceptions.AccessError"
    assert viewer > 2
    model = j2.post("x.nope", "search", {"domain": []})
    assert (model.status_code, model.json()["message"]) == (404, "the model 'x.nope' does not exist")
    private = j2.post("res.partner", "_search", {"domain": []})
    assert private.status_code == 403 and private.json()["name"] == "odoo.exceptions.AccessError"
    with_ids = j2.post("res.partner", "search", {"ids": [1], "domain": []})
    assert (with_ids.status_code, with_ids.json()["message"]) == (422, "cannot call res.partner.search with ids")
    typo = j2.post("res.partner", "search", {"domian": []})
    assert (typo.status_code, typo.json()["message"]) == (422, "missing a required argument: 'domain'")
    assert j2.post("res.partner", "search", {"domain": []}, headers={"X-Odoo-Database": "other"}).status_code == 404
    garbage = requests.post(odoo19.json2_url("res.partner", "search"), data=b"{oops",
                            headers={"Authorization": f"bearer {odoo19.api_key}", "Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["message"].startswith("could not parse the body as json")
    get = requests.get(odoo19.json2_url("res.partner", "search"), headers={"Authorization": f"bearer {odoo19.api_key}"})
    assert get.status_code == 404 and get.json()["message"] == "Did you mean POST /json/2/<model>/<method>?"


def test_json2_results_are_bare_json_and_absent_before_19(odoo, odoo19):
    resp = requests.post(odoo.json2_url("res.partner", "search"), json={"domain": []},
                         headers={"Authorization": f"bearer {odoo.api_key}"})
    if odoo.version < 19:
        assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("text/html")
        return
    j2 = Json2(odoo19)
    created = j2("res.partner", "create", vals_list=[{"name": "Ready Mat", "is_company": True}])
    assert created == [4]  # the recordset becomes its ids, even for one record
    assert j2("res.partner", "write", ids=created, vals={"email": "mat@example.com"}) is True
    assert j2("res.partner", "read", ids=created, fields=["name", "email", "company_type"]) == [
        {"id": 4, "name": "Ready Mat", "email": "mat@example.com", "company_type": "company"}]
    assert j2("res.partner", "search_read", domain=[["email", "=ilike", "MAT@%"]], fields=["name"],
              context={"lang": "en_US"}) == [{"id": 4, "name": "Ready Mat"}]
    inv = j2("account.move", "create", vals_list=[{"move_type": "out_invoice", "partner_id": 4,
                                                   "invoice_line_ids": [[0, 0, {"name": "Mat", "price_unit": 12.0}]]}])
    assert j2("account.move", "action_post", ids=inv) is False
    ctx = {"active_model": "account.move", "active_ids": inv}
    [wizard] = j2("account.payment.register", "create", vals_list=[{"amount": 12.0}], context=ctx)
    action = j2("account.payment.register", "action_create_payments", ids=[wizard], context=ctx)
    assert action["res_model"] == "account.payment"
    assert j2("account.payment", "action_post", ids=[j2("account.payment", "create", vals_list=[{"amount": 1.0}])[0]]) \
        is None  # JSON null, where XML-RPC fails
    assert j2("account.move", "read", ids=inv, fields=["name", "payment_state"]) == \
        [{"id": inv[0], "name": "INV/2026/00001", "payment_state": "paid"}]
    restricted = j2.post("res.partner", "unlink", {"ids": created})  # the partner has journal entries
    assert restricted.status_code == 422 and restricted.json()["name"] == "odoo.exceptions.ValidationError"
    assert "another model requires the record being deleted" in restricted.json()["message"]
    assert odoo19.round_trips(transport="json2") >= 9


# --- session routes ----------------------------------------------------------------------------------------


def test_session_routes_and_session_expired(odoo):
    payload = {"jsonrpc": "2.0", "method": "call", "id": 5,
               "params": {"model": "res.partner", "method": "search_count", "args": [[]], "kwargs": {}}}
    expired = requests.post(f"{odoo.url}/web/dataset/call_kw/res.partner/search_count", json=payload).json()
    assert (expired["error"]["code"], expired["error"]["message"]) == (100, "Odoo Session Expired")
    assert expired["error"]["data"]["name"] == "odoo.http.SessionExpiredException"
    session = requests.Session()
    denied = session.post(f"{odoo.url}/web/session/authenticate", json={
        "jsonrpc": "2.0", "id": 1, "params": {"db": DB, "login": "admin", "password": "nope"}}).json()
    assert denied["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    info = session.post(f"{odoo.url}/web/session/authenticate", json={
        "jsonrpc": "2.0", "id": 1, "params": {"db": DB, "login": "admin", "password": "admin"}}).json()["result"]
    assert (info["uid"], info["db"], info["server_version_info"][0]) == (2, DB, odoo.version)
    assert session.post(f"{odoo.url}/web/dataset/call_kw", json=payload).json() == \
        {"jsonrpc": "2.0", "id": 5, "result": 2}
    odoo.expire_sessions()
    assert session.post(f"{odoo.url}/web/dataset/call_kw", json=payload).json()["error"]["code"] == 100


# --- test controls -----------------------------------------------------------------------------------------


def raw_http(fake: FakeOdoo, payload: dict) -> socket.socket:
    """Send a JSON-RPC request on a bare socket and return it unread: closing it is a client dying mid-call."""
    body = json.dumps(payload).encode()
    sock = socket.create_connection(("127.0.0.1", fake.port))
    sock.sendall(b"POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return sock


def create_payload(name: str) -> dict:
    return {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": [DB, 2, "admin", "account.move", "create",
                 [{"move_type": "out_invoice", "partner_id": 1, "ref": name,
                   "invoice_line_ids": [[0, 0, {"name": name, "price_unit": 10.0}]]}]]}}


def test_hold_before_the_call_runs(odoo17):
    hold = odoo17.hold("account.move", "create")
    answers: list = []
    client = threading.Thread(target=lambda: answers.append(requests.post(odoo17.jsonrpc_url,
                                                                          json=create_payload("HELD")).json()))
    client.start()
    assert hold.arrived.wait(5)
    assert odoo17.search_read("account.move", [("ref", "=", "HELD")]) == []  # not run yet
    assert JsonRpc(odoo17).execute_kw("res.partner", "search_count", [[]]) == 2  # others are served meanwhile
    assert not answers
    hold.release()
    client.join(5)
    assert hold.completed.is_set() and isinstance(answers[0]["result"], int)
    assert odoo17.search_read("account.move", [("ref", "=", "HELD")], ["id"]) == [{"id": answers[0]["result"]}]


def test_hold_survives_a_dead_client(odoo17):
    # phase 'after': the record is committed, then the client dies before it hears about it
    after = odoo17.hold("account.move", "create", phase="after")
    sock = raw_http(odoo17, create_payload("AFTER"))
    assert after.arrived.wait(5)
    assert len(odoo17.search_read("account.move", [("ref", "=", "AFTER")], ["id"])) == 1
    sock.close()  # the equivalent of kill -9 on the client
    after.release()
    assert after.completed.wait(5)
    # phase 'before': the client dies while parked; Odoo still completes the transaction once it runs
    before = odoo17.hold("account.move", "create", phase="before")
    sock = raw_http(odoo17, create_payload("BEFORE"))
    assert before.arrived.wait(5)
    sock.close()
    assert odoo17.search_read("account.move", [("ref", "=", "BEFORE")]) == []
    before.release()
    assert before.completed.wait(5)
    assert len(odoo17.search_read("account.move", [("ref", "=", "BEFORE")], ["id"])) == 1
    assert odoo17.round_trips("create", "account.move") == 2


def test_round_trips_and_call_log(odoo19):
    rpc, obj, j2 = JsonRpc(odoo19), xml(odoo19), Json2(odoo19)
    odoo19.reset_calls()
    rpc.call("common", "authenticate", DB, "admin", "admin", {})
    rpc.execute_kw("res.partner", "search_read", [[]], {"fields": ["name"], "limit": 2})
    obj.execute_kw(DB, 2, "admin", "res.partner", "search_read", [[]], {"limit": 1})
    j2("res.partner", "search_count", domain=[])
    j2.post("res.partner", "search_count", {"domain": []}, headers={"Authorization": "bearer bad"})
    assert odoo19.round_trips() == 5
    assert odoo19.round_trips("search_read") == 2 and odoo19.round_trips("search_read", transport="xmlrpc") == 1
    assert odoo19.round_trips("authenticate", "common") == 1
    assert odoo19.call_counts() == {"common.authenticate": 1, "res.partner.search_read": 2,
                                    "res.partner.search_count": 2}
    logged = odoo19.calls[1]
    assert (logged.transport, logged.model, logged.method, logged.args, logged.kwargs) == \
        ("jsonrpc", "res.partner", "search_read", [[]], {"fields": ["name"], "limit": 2})
    assert odoo19.calls[-1].status == 401 and odoo19.calls[-1].error == "werkzeug.exceptions.Unauthorized"
    assert (odoo19.calls[3].transport, odoo19.calls[3].kwargs) == ("json2", {"domain": []})


def test_down_modes(odoo18):
    rpc = JsonRpc(odoo18)
    odoo18.down("503")
    resp = rpc.raw("common", "version")
    assert resp.status_code == 503 and "503 Service Temporarily Unavailable" in resp.text
    odoo18.down("502")
    with pytest.raises(xmlrpc.client.ProtocolError) as err:
        xml(odoo18, "common").version()
    assert err.value.errcode == 502
    odoo18.down("close")
    with pytest.raises(requests.ConnectionError):
        rpc.raw("common", "version")
    with pytest.raises((ConnectionError, xmlrpc.client.ProtocolError, OSError)):
        xml(odoo18, "common").version()
    odoo18.up()
    assert rpc.call("common", "version")["server_version"] == "18.0"
    assert odoo18.round_trips() == 1  # refused requests never reach Odoo
