"""The Odoo MCP server against the protocol-faithful fake Odoo: figures an accountant would sign on a
seeded ledger (hand-computed), on Odoo 17 over JSON-RPC and 19 over JSON-2; writes behind the approval
gate, exactly once; Odoo down then back (stale reads, queued writes); wrong credentials; the official
`mcp` client."""
from __future__ import annotations

import asyncio
import json
from datetime import date
from types import SimpleNamespace

import pytest
import requests
from mcp.client import Client

from core.approval.approvals import Approvals
from core.config import Settings
from core.state import StateStore
from core.vault import Vault
from odoo_integration.config import OdooConfig
from odoo_integration.connector import OdooConnector
from odoo_integration.mcp_server import TOOLS, build_app
from tests.conftest import ROOT, md_files, wait_until
from tests.demo_service import ServerThread
from tests.fakes.fake_odoo import FakeOdoo

pytestmark = pytest.mark.timeout(90)
TODAY = date(2026, 11, 20)


def seed(fake: FakeOdoo) -> None:
    """A ledger whose figures are worked out by hand in the tests below (company currency USD; EUR at 0.5)."""
    fake.add_currency("EUR", 0.5)
    blue = fake.add_partner("Blue Sky Ltd", email="billing@bluesky.example", is_company=True, customer_rank=1)
    acme = fake.add_partner("Acme Corp", email="ap@acme.example", is_company=True, customer_rank=1)
    zeta = fake.add_partner("Zeta GmbH", is_company=True, customer_rank=1)
    tax = fake.add_tax(10.0)
    add = fake.add_invoice
    add(blue, [("Consulting", 10, 100)], invoice_date="2026-11-05", invoice_date_due="2026-11-19")   # A: 1 day late
    add(blue, [("Design", 1, 600)], invoice_date="2026-09-01", invoice_date_due="2026-09-15",
        payment_state="partial", amount_paid=200)                                                      # B: 66 days
    add(acme, [("Project", 1, 2000, [tax])], invoice_date="2026-10-10", invoice_date_due="2026-12-10")  # C: current
    add(acme, [("Support", 1, 500)], invoice_date="2026-10-01", invoice_date_due="2026-10-15",
        payment_state="in_payment")                                                                    # D
    add(acme, [("Training", 1, 300)], invoice_date="2026-11-10", payment_state="paid")                 # E: paid
    add(blue, [("Draft work", 1, 700)], state="draft")                                                 # F: draft
    add(acme, [("Cancelled", 1, 400)], invoice_date="2026-11-02", state="cancel")                     # G
    add(blue, [("Refund", 1, 100)], move_type="out_refund", invoice_date="2026-11-12",
        invoice_date_due="2026-11-12")                                                                 # H: credit note
    add(zeta, [("Licence", 1, 1000)], currency="EUR", invoice_date="2026-07-15",
        invoice_date_due="2026-07-31")                                                                 # I: 1000 EUR
    add(acme, [("Month end", 1, 250)], invoice_date="2026-10-31", payment_state="paid")               # J1
    add(acme, [("Month start", 1, 150)], invoice_date="2026-11-01", invoice_date_due="2026-12-01")    # J2
    add(acme, [("Vendor", 1, 999)], move_type="in_invoice", invoice_date="2026-11-03")                # a bill


@pytest.fixture(params=[(17, False), (19, True)], ids=["odoo17-jsonrpc", "odoo19-json2"])
def books(request, tmp_path):
    version, key = request.param
    fake = FakeOdoo(version, today=TODAY).start()
    seed(fake)
    env = {"VAULT_PATH": str(tmp_path / "vault"), "DRY_RUN": "false", "ODOO_MCP_PORT": "0",
           "ODOO_URL": fake.url, "ODOO_DB": fake.db, "ODOO_USERNAME": "admin",
           **({"ODOO_API_KEY": fake.api_key} if key else {"ODOO_PASSWORD": "admin"})}
    settings = Settings.from_env(env)
    odoo = OdooConnector(OdooConfig.from_env(env), sleep=lambda s: None)
    with ServerThread(build_app(settings, odoo=odoo, today=lambda: TODAY)) as server:
        vault, state = Vault(settings.vault_path), StateStore(settings.state_db)
        # The start-up work (probe, the Dashboard's figures) is done before a test counts Odoo calls.
        wait_until(lambda: state.cache_get("dashboard:accounting"), timeout=20, message="the first refresh")
        yield SimpleNamespace(url=server.url, fake=fake, vault=vault, state=state, settings=settings,
                              approvals=Approvals(vault, state), server=server, version=version)
    fake.stop()


def get(s, path: str, **params) -> requests.Response:
    return requests.get(f"{s.url}{path}", params=params, timeout=30)


def post(s, path: str, body: dict) -> requests.Response:
    return requests.post(f"{s.url}{path}", json=body, timeout=30)


def test_outstanding_and_ageing_match_the_hand_computed_ledger(books):
    books.fake.reset_calls()
    data = get(books, "/financial/outstanding").json()["data"]
    by_number = {i["partner"] + ":" + str(i["amount_residual"]): i for i in data["invoices"]}
    # A 1000 (1-30) + B 400 (61-90) + C 2200 incl. tax (current) - H 100 (1-30) + I 2000 USD (90+) + J2 150
    assert data["total_residual"] == 5650.0 and data["overdue_residual"] == 3300.0
    assert data["by_bucket"] == {"current": 2350.0, "1-30": 900.0, "31-60": 0.0, "61-90": 400.0, "90+": 2000.0}
    assert data["currency"] == "USD" and data["scope"]["companies"]
    assert data["in_payment"] == {"invoices": 1, "amount": 500.0}   # D: shown apart, not owed
    assert by_number["Blue Sky Ltd:400.0"]["days_overdue"] == 66 and by_number["Zeta GmbH:2000.0"]["bucket"] == "90+"
    assert len(data["invoices"]) == 6 and "as_of" in data and "stale" not in data
    # Computed in Odoo: one search, in-payment moves included (the scope is fetched once), never one call per invoice.
    assert sum(books.fake.call_counts().values()) <= 1
    only_blue = get(books, "/financial/outstanding", partner="Blue Sky").json()["data"]
    assert only_blue["total_residual"] == 1300.0


def test_monthly_revenue_by_accounting_month_untaxed_and_taxed(books):
    books.fake.reset_calls()
    months = {m["month"]: m for m in get(books, "/financial/monthly-revenue", months=6).json()["data"]["months"]}
    assert list(months) == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
    assert months["2026-07"] == {"month": "2026-07", "untaxed": 2000.0, "total": 2000.0, "invoices": 1,
                                 "credit_notes": 0}
    assert months["2026-10"] == {"month": "2026-10", "untaxed": 2750.0, "total": 2950.0, "invoices": 3,
                                 "credit_notes": 0}   # C (taxed 10%), D, J1 on the 31st; G cancelled
    assert months["2026-11"] == {"month": "2026-11", "untaxed": 1350.0, "total": 1350.0, "invoices": 3,
                                 "credit_notes": 1}   # A, E, J2 on the 1st, minus H; F draft; the bill is no revenue
    assert months["2026-08"]["untaxed"] == 0.0
    assert sum(books.fake.call_counts().values()) <= 5


def test_financial_records_page_through_each_kind(books):
    page = get(books, "/financial/records", kind="invoices", state="posted", limit=3).json()["data"]
    assert page["total"] == 8 and len(page["records"]) == 3  # A-E, I, J1, J2 (F draft, G cancelled)
    assert page["records"][0]["invoice_date"] >= page["records"][1]["invoice_date"]
    assert get(books, "/financial/records", kind="bills").json()["data"]["total"] == 1
    assert get(books, "/financial/records", kind="credit_notes").json()["data"]["total"] == 1
    payments = get(books, "/financial/records", kind="payments").json()["data"]
    assert payments["total"] >= 3  # B's partial, D, E, J1
    bad = get(books, "/financial/records", kind="everything")
    assert bad.status_code == 400 and bad.json()["field"] == "kind"


INVOICE = {"reference": "AIE-T1", "partner": "billing@bluesky.example",
           "lines": [{"description": "Consulting", "quantity": 8, "unit_price": 150}]}


_grants = iter(range(1, 10_000))


def owner_grant(s, action: str, params: dict) -> str:
    row = s.approvals.request(task_id=f"t-odoo-{next(_grants)}", step_no=1, skill="odoo_skill", action=action,
                              params=params,
                              text_param=None, risk="medium", reason="test", subject=action)
    approved = s.vault.move(s.vault.root / "Pending_Approval" / row["file_name"], s.vault.folder("Approved"))
    return s.approvals.accept(approved).id


def moves_with_ref(s, ref: str) -> list[dict]:
    return s.fake.search_read("account.move", [("ref", "=", ref)], ["name", "state", "amount_untaxed"])


def test_a_write_without_a_grant_files_a_request_and_creates_nothing(books):
    r = post(books, "/invoices/create", INVOICE)
    assert r.status_code == 403 and r.json()["error_code"] == "APPROVAL_REQUIRED"
    [request] = md_files(books.vault.root / "Pending_Approval")
    assert "AIE-T1" in request.read_text("utf-8") and moves_with_ref(books, "AIE-T1") == []


def test_an_approved_invoice_is_created_once_whatever_is_repeated(books):
    grant = owner_grant(books, "create_invoice", INVOICE)
    first = post(books, "/invoices/create", {**INVOICE, "grant_id": grant}).json()
    assert first["success"] and first["data"]["state"] == "draft" and first["data"]["partner"] == "Blue Sky Ltd"
    assert first["data"]["amount_untaxed"] == 1200.0
    again = post(books, "/invoices/create", {**INVOICE, "grant_id": grant}).json()
    assert again["data"]["id"] == first["data"]["id"]
    assert len(moves_with_ref(books, "AIE-T1")) == 1
    # Posting is a separate approval; then it has its number.
    posted = post(books, "/invoices/post", {"invoice": first["data"]["id"],
                                            "grant_id": owner_grant(books, "post_invoice",
                                                                    {"invoice": first["data"]["id"]})}).json()
    assert posted["data"]["state"] == "posted" and posted["data"]["number"].startswith("INV/")


def test_a_create_interrupted_after_odoo_did_it_is_found_by_its_reference(books):
    """What a server killed mid-call leaves: the ledger says "sending", and Odoo has the invoice (or not)."""
    grant = owner_grant(books, "create_invoice", INVOICE)
    books.state.ledger_begin(f"odoo:{grant}", "mcp-odoo", "create_invoice")
    odoo_did_it = books.fake.add_invoice("Blue Sky Ltd", [("Consulting", 8, 150)], state="draft", ref="AIE-T1")
    again = post(books, "/invoices/create", {**INVOICE, "grant_id": grant}).json()
    assert again["success"] and again["data"]["id"] == odoo_did_it and len(moves_with_ref(books, "AIE-T1")) == 1
    # ...and when Odoo never got it, the reconcile finds nothing and it is created, once.
    other = {**INVOICE, "reference": "AIE-T3"}
    grant = owner_grant(books, "create_invoice", other)
    books.state.ledger_begin(f"odoo:{grant}", "mcp-odoo", "create_invoice")
    assert post(books, "/invoices/create", {**other, "grant_id": grant}).json()["data"]["created"] is True
    assert len(moves_with_ref(books, "AIE-T3")) == 1


def test_a_payment_is_registered_once_and_found_again_by_its_memo(books):
    [inv] = books.fake.search_read("account.move", [("invoice_date", "=", "2026-11-05"),
                                                    ("move_type", "=", "out_invoice")], ["name"])  # A
    params = {"invoice": inv["name"], "amount": 1000}
    grant = owner_grant(books, "register_payment", params)
    paid = post(books, "/payments/register", {**params, "grant_id": grant}).json()
    assert paid["success"] and paid["data"]["payment_state"] in ("paid", "in_payment")
    # As a server killed after Odoo took the payment leaves it: the ledger in doubt, the grant not spent.
    books.state.ledger_finish(f"odoo:{grant}", "sending")
    books.approvals.set_status(grant, "approved")
    again = post(books, "/payments/register", {**params, "grant_id": grant}).json()
    assert again["data"]["payment_id"] == paid["data"]["payment_id"] and again["data"].get("reconciled")
    memos = [p for p in books.fake.search_read("account.payment", [], ["amount"]) if p["amount"] == 1000.0]
    assert len(memos) == 1


def test_odoo_down_reads_answer_stale_and_writes_wait_then_go_once(books):
    fresh = get(books, "/financial/outstanding").json()["data"]
    books.fake.down("503")
    stale = get(books, "/financial/outstanding").json()
    assert stale["success"] and stale["data"]["stale"] is True and stale["data"]["as_of"] == fresh["as_of"]
    assert stale["data"]["total_residual"] == fresh["total_residual"]
    never_read = get(books, "/financial/monthly-revenue", months=3)
    assert never_read.status_code == 503 and never_read.json()["error_code"] == "UPSTREAM_UNAVAILABLE"
    grant = owner_grant(books, "create_invoice", INVOICE)
    queued = post(books, "/invoices/create", {**INVOICE, "grant_id": grant}).json()
    assert queued["error_code"] == "UPSTREAM_UNAVAILABLE" and queued["queued"] is True
    books.fake.up()
    with books.state.transaction() as db:  # its turn comes now rather than in a minute
        db.execute("UPDATE outbox SET next_attempt=0 WHERE key=?", (f"odoo:{grant}",))
    wait_until(lambda: books.state.ledger_get(f"odoo:{grant}")["status"] == "succeeded", timeout=20,
               message="the queued invoice")
    assert len(moves_with_ref(books, "AIE-T1")) == 1 and books.approvals.get(grant)["status"] == "executed"


def test_an_unknown_customer_is_asked_about_never_invented(books):
    params = {**INVOICE, "reference": "AIE-T2", "partner": "Nobody Ltd"}
    grant = owner_grant(books, "create_invoice", params)
    r = post(books, "/invoices/create", {**params, "grant_id": grant})
    assert r.status_code == 400 and "Odoo knows no customer named 'Nobody Ltd'" in r.json()["error"]
    assert books.fake.search_read("res.partner", [("name", "=", "Nobody Ltd")], ["name"]) == []


def test_health_says_version_transport_and_credentials(books):
    health = wait_until(lambda: (h := requests.get(f"{books.url}/health", timeout=10).json())["checks"]["odoo"]
                        .get("transport") and h, message="the start-up probe")
    assert health["status"] == "healthy"
    assert health["checks"]["odoo"]["transport"] == ("json2" if books.version == 19 else "jsonrpc")
    assert health["checks"]["odoo"]["version"].startswith(str(books.version))


def test_wrong_credentials_pause_the_channel_without_a_retry_storm(tmp_path):
    fake = FakeOdoo(17, today=TODAY).start()
    try:
        env = {"VAULT_PATH": str(tmp_path / "vault"), "DRY_RUN": "false", "ODOO_MCP_PORT": "0", "ODOO_URL": fake.url,
               "ODOO_DB": fake.db, "ODOO_USERNAME": "admin", "ODOO_PASSWORD": "wrong"}
        settings = Settings.from_env(env)
        with ServerThread(build_app(settings, today=lambda: TODAY)) as server:
            health = wait_until(lambda: (h := requests.get(f"{server.url}/health", timeout=10).json())["checks"]
                                ["odoo"].get("state") == "auth_error" and h, message="the auth error")
            assert health["status"] == "degraded"
            answers = [requests.get(f"{server.url}/financial/outstanding", timeout=10) for _ in range(5)]
            assert {(a.status_code, a.json()["error_code"]) for a in answers} == {(502, "AUTH_ERROR")}
        logins = fake.round_trips("authenticate")
        assert logins == 1  # the probe's: the next one only after the backoff
    finally:
        fake.stop()


def test_the_official_client_lists_and_calls_the_odoo_tools(books):
    async def scenario():
        async with Client(f"{books.url}/mcp") as client:
            listing = await client.list_tools()
            read = await client.call_tool("get_monthly_revenue", {"months": 2})
            write = await client.call_tool("register_payment", {"invoice": "INV/2026/00001", "amount": 10})
            return listing, read, write
    listing, read, write = asyncio.run(asyncio.wait_for(scenario(), 30))
    names = {t.name for t in listing.tools}
    assert names == {t.name for t in TOOLS}
    assert read.is_error is False and len(read.structured_content["data"]["months"]) == 2
    assert write.is_error is True and write.structured_content["error_code"] == "APPROVAL_REQUIRED"


def test_odoo_skills_checked_in_schemas_are_the_servers(books):
    shipped = json.loads((ROOT / ".qwen" / "skills" / "odoo_skill" / "tools.schema.json").read_text("utf-8"))
    listed = {t["name"]: t["inputSchema"] for t in requests.post(
        f"{books.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10).json()["result"]["tools"]}
    for name, schema in shipped.items():
        assert schema["properties"] == {k: v for k, v in listed[name]["properties"].items()
                                        if k not in ("grant_id", "task_id")}, name
        assert schema.get("required") == listed[name].get("required")


def test_a_revoked_api_key_pauses_the_channel_and_says_so(tmp_path):
    fake = FakeOdoo(19, today=TODAY).start()
    try:
        env = {"VAULT_PATH": str(tmp_path / "vault"), "DRY_RUN": "false", "ODOO_MCP_PORT": "0", "ODOO_URL": fake.url,
               "ODOO_DB": fake.db, "ODOO_API_KEY": fake.api_key}
        with ServerThread(build_app(Settings.from_env(env), today=lambda: TODAY)) as server:
            wait_until(lambda: requests.get(f"{server.url}/health", timeout=10).json()["checks"]["odoo"]
                       .get("state") == "ok", message="the start-up probe")
            fake.revoke_api_key()
            r = requests.get(f"{server.url}/financial/monthly-revenue", timeout=10)
            assert r.status_code == 502 and r.json()["error_code"] == "AUTH_ERROR"
            assert fake.api_key not in r.text
            health = wait_until(lambda: (h := requests.get(f"{server.url}/health", timeout=10).json())["status"]
                                == "degraded" and h, message="health to say so")
            assert health["checks"]["odoo"]["state"] == "auth_error"
            before = fake.round_trips()
            for _ in range(5):  # no storm: the connector waits out its backoff before asking Odoo again
                requests.get(f"{server.url}/financial/monthly-revenue", timeout=10)
            assert fake.round_trips() == before
    finally:
        fake.stop()


def test_a_payment_whose_outcome_is_in_doubt_is_never_tried_again_by_itself(books):
    """Irreversible: when the payment's call fails in a way that may have come after Odoo made it,
    nothing is retried; once Odoo can be asked again the server only looks (by the memo), and if the
    payment is not there it says the outcome is unknown rather than pay again."""
    [inv] = books.fake.search_read("account.move", [("invoice_date", "=", "2026-11-05"),
                                                    ("move_type", "=", "out_invoice")], ["name"])
    params = {"invoice": inv["name"], "amount": 1000}
    grant = owner_grant(books, "register_payment", params)
    key = f"odoo:{grant}"
    books.fake.down("503")
    first = post(books, "/payments/register", {**params, "grant_id": grant}).json()
    assert first["queued"] is True  # only to look again: Odoo could not even be asked
    books.fake.up()
    with books.state.transaction() as db:
        db.execute("UPDATE outbox SET next_attempt=0 WHERE key=?", (key,))
    wait_until(lambda: books.state.ledger_get(key)["status"] == "failed", message="the verdict")
    payments = [p for p in books.fake.search_read("account.payment", [], ["amount"]) if p["amount"] == 1000.0]
    assert payments == [] and books.state.outbox_entry(key) is None
    again = post(books, "/payments/register", {**params, "grant_id": grant})
    assert again.status_code == 502 and again.json()["outcome"] == "unknown"
    assert "not tried again" in again.json()["error"]
