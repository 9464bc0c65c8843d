"""The CEO briefing against a hand-computed fixture week (Monday 2026-11-23 to Sunday 2026-11-29, read
on Monday 2026-11-30): the real Odoo MCP server over the protocol-faithful fake Odoo, a temporary vault
with tasks in Completed/, Failed/ and Needs_Action/, approvals and bank transactions in the state
store, an audit log, the social summaries' cache. Then Odoo down: the briefing is still written and
says what is stale or missing. Hermetic: loopback only, no sleeps."""
from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from briefing import generate, last_full_week, week_of
from briefing import cancellations, frontmatter
from briefing.odoo import OdooFigures
from briefing.merchants import merchant_key
from briefing.subscriptions import detect
from briefing.sources import Charge, group_charges
from core.approval.policy import Policy
from core.config import Settings
from core.documents import Document
from core.engine.mcp_client import McpClient
from core.engine.skills import ActionContext, SkillRegistry
from core.retry import Backoff
from core.state import StateStore
from core.vault import Vault
from odoo_integration.bank_files import BankTransaction
from odoo_integration.bank_store import store_transactions
from odoo_integration.config import OdooConfig
from odoo_integration.connector import OdooConnector
from odoo_integration.mcp_server import build_app
from tests.conftest import ROOT, free_port, wait_until
from tests.demo_service import ServerThread
from tests.fakes.fake_odoo import FakeOdoo

pytestmark = pytest.mark.timeout(120)
UTC = dt.timezone.utc
TODAY = dt.date(2026, 11, 30)
NOW = dt.datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
WEEK = week_of(dt.date(2026, 11, 23), UTC)
GOALS = """# Goals
```yaml
goals:
  monthly_revenue_target: 10000
  max_days_to_invoice: 3
  max_hours_to_reply: 24
  social_posts_per_week: 3
  expected_hours:
    file_drop: 48
  subscription_categories:
    design: [canva, figma]
    video calls: [zoom, teams]
```
"""


# -- the fixture week ---------------------------------------------------------------------------------
def seed_odoo(fake: FakeOdoo) -> None:
    """Revenue (untaxed, by invoice date), worked out by hand:
    week 23-29 Nov: 1000 (I1) + 500 (I2, taxed 10%: 550 owed) - 200 (credit note) = 1300;
    November to date: 1300 + 2000 (I3, 5 Nov) = 3300, 33% of 10,000; the 30 Nov invoice is after the week;
    12 weeks from 7 Sep: 300 (8 Sep), 800 (28 Oct), 2000 (week of 2 Nov), 1300 (this week)."""
    blue = fake.add_partner("Blue Sky Ltd", email="billing@bluesky.example", is_company=True, customer_rank=1)
    acme = fake.add_partner("Acme Corp", email="ap@acme.example", is_company=True, customer_rank=1)
    tax = fake.add_tax(10.0)
    add = fake.add_invoice
    add(blue, [("Consulting", 10, 100)], invoice_date="2026-11-24", invoice_date_due="2026-12-08")          # I1
    add(acme, [("Project", 1, 500, [tax])], invoice_date="2026-11-27", invoice_date_due="2026-12-27")       # I2
    add(acme, [("Refund", 1, 200)], move_type="out_refund", invoice_date="2026-11-25",
        invoice_date_due="2026-11-25")                                                                     # CN
    add(blue, [("Draft work", 1, 700)], state="draft", invoice_date="2026-11-26")                          # draft
    add(acme, [("Cancelled", 1, 400)], state="cancel", invoice_date="2026-11-26")                          # cancel
    add(acme, [("Vendor", 1, 999)], move_type="in_invoice", invoice_date="2026-11-24")                     # a bill
    add(blue, [("Design", 1, 2000)], invoice_date="2026-11-05", invoice_date_due="2026-11-19")             # I3
    add(acme, [("Support", 1, 800)], invoice_date="2026-10-28", invoice_date_due="2026-10-28")             # I4
    add(blue, [("Audit", 1, 300)], invoice_date="2026-09-08", payment_state="paid")                        # I5
    add(blue, [("Old", 1, 250)], invoice_date="2026-09-01", payment_state="paid")                          # before
    add(acme, [("Monday", 1, 50)], invoice_date="2026-11-30", invoice_date_due="2026-12-10")               # after


def task(vault: Vault, folder: str, task_id: str, kind: str, created: str, *, finished: str | None = None,
         title: str = "A task", body: str = "", **extra: object) -> Path:
    meta = {"id": task_id, "type": kind, "source": "test", "source_id": task_id, "created": created,
            "status": "completed" if folder == "Completed" else folder.lower(), "priority": "normal", **extra}
    if finished:
        meta["finished"] = finished
    path = vault.root / folder / f"{task_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(Document(meta, f"# {title}\n\n{body}\n").render(), "utf-8")
    return path


def seed_vault(vault: Vault) -> None:
    (vault.root / "Business_Goals.md").write_text(GOALS, "utf-8")
    done = lambda tid, kind, created, finished, **kw: task(vault, "Completed", tid, kind, created,  # noqa: E731
                                                           finished=finished, **kw)
    done("t-e1", "email", "2026-11-23T09:00:00Z", "2026-11-23T13:00:00Z", title="Quote for Jane")         # 4 h
    done("t-e2", "email", "2026-11-24T08:00:00Z", "2026-11-26T08:00:00Z", title="Re: Invoice: November",
         subject="Re: Invoice: November")                                                                 # 48 h
    done("t-e3", "email", "2026-11-20T10:00:00Z", "2026-11-22T10:00:00Z")                                # last week
    done("t-f1", "file_drop", "2026-11-25T00:00:00Z", "2026-11-27T12:00:00Z", title="Scan of receipts")  # 60 h
    done("t-f2", "file_drop", "2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z")                            # 1 h
    done("t-i1", "invoice", "2026-11-23T10:00:00Z", "2026-11-28T10:00:00Z", title="Invoice Blue Sky")    # 120 h
    done("t-w1", "whatsapp", "2026-11-29T22:00:00Z", "2026-11-29T23:30:00Z")                             # Sunday night
    done("t-late", "email", "2026-11-29T20:00:00Z", "2026-11-30T00:30:00Z")                              # next week
    done("t-fig", "email", "2026-11-12T09:00:00Z", "2026-11-13T09:00:00Z", subject="Figma comments on the logo")
    # An approval request in Completed/ is not a task, and its mention of Canva is not use of Canva.
    done("CANCEL_SUBSCRIPTION_canva_apr-1", "approval_request", "2026-11-24T09:00:00Z", "2026-11-25T09:00:00Z",
         body="Cancel Canva?")
    long_reason = ("step 1: the Gmail server could not be reached after 8 attempts over two days, so the reply to "
                   "the customer was not sent; check the Sent folder, then retry")
    task(vault, "Failed", "t-x1", "email", "2026-11-26T09:00:00Z", finished="2026-11-27T09:00:00Z",
         title="Reply to Acme", reason=long_reason)
    task(vault, "Failed", "t-x2", "email", "2026-11-09T09:00:00Z", finished="2026-11-10T09:00:00Z", reason="old")
    task(vault, "Needs_Action", "t-zoom", "email", "2026-11-20T08:00:00Z", title="Your meeting summary",
         **{"from": "Zoom <no-reply@zoom.us>"})
    task(vault, "Needs_Action", "t-beans", "file_drop", "2026-11-21T08:00:00Z", title="Delivery note",
         body="The Beanbox delivery arrived damaged.")
    task(vault, "Needs_Action", "t-due1", "email", "2026-11-27T08:00:00Z", title="Send the proposal", due="2026-12-02")
    task(vault, "Needs_Action", "t-due0", "email", "2026-11-20T08:00:00Z", title="Renew the lease", due="2026-11-25")
    task(vault, "Needs_Action", "t-due9", "email", "2026-11-20T08:00:00Z", title="Later", due="2027-01-15")
    logs = vault.root / "Logs"
    logs.mkdir(exist_ok=True)
    (logs / "2026-11-20.jsonl").write_text(json.dumps(
        {"timestamp": "2026-11-20T10:00:00Z", "action_type": "browser_skill.browse_web", "actor": "agent",
         "target": "https://app.slack.com/client", "result": {"success": True}}) + "\n", "utf-8")
    (logs / "2026-11-21.jsonl").write_text(json.dumps(  # Canva named in parameters only: not a login
        {"timestamp": "2026-11-21T10:00:00Z", "action_type": "gmail_skill.send_email", "actor": "agent",
         "target": "jane@example.com", "parameters": {"subject": "canva ideas"}}) + "\n", "utf-8")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def seed_state(state: StateStore) -> None:
    rows = [  # (id, status, created, decided, approved_by)
        ("a1", "executed", "2026-11-23T09:00", "2026-11-23T10:00", "owner"),      # 1 h
        ("a2", "rejected", "2026-11-24T08:00", "2026-11-26T20:00", None),         # 60 h
        ("a3", "pending", "2026-11-28T00:00", None, None),                        # 48 h, still waiting
        ("a4", "executed", "2026-11-25T00:00", "2026-11-25T00:00", "policy:files"),  # nobody waited
        ("a5", "executed", "2026-11-10T00:00", "2026-11-20T00:00", "owner"),      # before the week
        ("a6", "executed", "2026-11-20T00:00", "2026-12-01T00:00", "owner"),      # waiting all week: 240 h
    ]
    with state.transaction() as db:
        for n, (aid, status, created, decided, by) in enumerate(rows):
            db.execute("INSERT INTO approvals(id, task_id, step_no, skill, action, params, file_name, status, created, "
                       "decided, approved_by) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                       (aid, f"t-{aid}", 1, "gmail_skill", "send_email", "{}", f"SEND_EMAIL_x_{aid}.md", status,
                        at(created), at(decided) if decided else None, by))
    txs = []

    def charge(day: str, text: str, amount: str) -> None:
        txs.append(BankTransaction(dt.date.fromisoformat(day), Decimal(amount), "GBP", text, "", source="natwest.csv",
                                   row=len(txs) + 2))
    for day in ("2026-08-03", "2026-09-03", "2026-10-03", "2026-11-03"):
        charge(day, "CANVA* 10443 SYDNEY AU", "-12.99")          # monthly; unused; design twin of Figma
    for day in ("2026-08-10", "2026-09-09", "2026-10-11", "2026-11-10"):
        charge(day, "FIGMA.COM SAN FRANCISCO US", "-15.00")      # monthly with jitter; a task mentions it
    for day, amount in (("2026-08-15", "-14.99"), ("2026-09-15", "-14.99"), ("2026-10-15", "-14.99"),
                        ("2026-11-15", "-19.99")):
        charge(day, "ZOOM.US 888-799-9666 CA", amount)           # +33%: the price rose
    for day in ("2024-11-28", "2025-11-27", "2026-11-26"):
        charge(day, "SLACK TECHNOLOGIES", "-96.00")              # yearly; logged into (audit target)
    day = dt.date(2026, 10, 4)
    while day <= dt.date(2026, 11, 29):
        charge(day.isoformat(), "BEANBOX COFFEE , DIRECT DEBIT", "-25.00")  # weekly; a task's body mentions it
        day += dt.timedelta(days=7)
    # Look recurring, are not: irregular amounts; only two charges; irregular intervals; ended in July.
    for day, amount in (("2026-08-05", "-23.50"), ("2026-09-05", "-87.10"), ("2026-10-05", "-12.00"),
                        ("2026-11-05", "-45.00")):
        charge(day, "AMAZON MKTPLACE PMTS", amount)
    for day in ("2026-10-05", "2026-11-05"):
        charge(day, "NOTION LABS", "-10.00")
    for day in ("2026-09-20", "2026-10-01", "2026-10-04", "2026-10-21", "2026-11-28"):
        charge(day, "4521 01OCT26 , SHELL 1234 , LONDON GB", "-60.00")
    for month in range(3, 8):
        charge(f"2026-{month:02d}-01", "DROPBOX", "-9.99")
    charge("2026-11-27", "BLUE SKY LTD , INV 2026 00003", "1000.00")  # money in: never a subscription
    store_transactions(state, txs)
    state.cache_put("summary:twitter", {
        "platform": "twitter", "period": {"start": "2026-11-23", "end": "2026-11-30", "days": 7}, "posts": 4,
        "reach": 12000, "engagement": 340, "engagement_rate": 0.0283, "previous": {},
        "change_percent": {"posts": 33.3, "reach": 12.0, "engagement": -5.0},
        "best_post": {"id": "1", "text": "Our new logo", "url": None, "reach": 5000, "engagement": 200}})
    state.cache_put("summary:facebook", {
        "platform": "facebook", "period": {"start": "2026-11-16", "end": "2026-11-23", "days": 7}, "posts": 2,
        "reach": 800, "engagement": 40, "engagement_rate": 0.05, "previous": {}, "change_percent": {},
        "best_post": None})


@pytest.fixture
def books(tmp_path):
    fake = FakeOdoo(17, today=TODAY).start()
    seed_odoo(fake)
    env = {"VAULT_PATH": str(tmp_path / "vault"), "DRY_RUN": "false", "ODOO_MCP_PORT": "0", "ODOO_URL": fake.url,
           "ODOO_DB": fake.db, "ODOO_USERNAME": "admin", "ODOO_PASSWORD": "admin"}
    settings = Settings.from_env(env)
    odoo = OdooConnector(OdooConfig.from_env(env), sleep=lambda s: None)
    with ServerThread(build_app(settings, odoo=odoo, today=lambda: TODAY)) as server:
        vault, state = Vault(settings.vault_path), StateStore(settings.state_db)
        wait_until(lambda: state.cache_get("dashboard:accounting"), timeout=20, message="the server's first refresh")
        seed_vault(vault)
        seed_state(state)
        yield SimpleNamespace(fake=fake, vault=vault, state=state, server=server,
                              settings=Settings.from_env({**env, "ODOO_MCP_PORT": str(server.port)}))
    fake.stop()


def figures(url: str, state: StateStore) -> OdooFigures:
    return OdooFigures(McpClient(url, backoff=Backoff(attempts=2), sleep=lambda s: None), state)


def run(b: SimpleNamespace, url: str | None = None):  # noqa: ANN201 - a Briefing
    return generate(b.vault, b.state, figures(url or b.server.url, b.state), WEEK, now=NOW)


# -- the numbers ------------------------------------------------------------------------------------------
def test_revenue_this_week_month_to_date_target_and_the_12_week_series(books):
    rev = run(books).sections["revenue"]
    assert rev["state"] == "ok" and rev["currency"] == "USD"
    assert rev["week"]["value"] == 1300.0
    assert rev["month_to_date"]["value"] == 3300.0 and rev["month"] == "November 2026"
    assert rev["target"]["value"] == 10000 and rev["target_share"]["value"] == 33.0
    assert rev["pace"]["value"] == round(10000 * 29 / 30, 2)
    assert rev["last_month"]["value"] == 800.0  # October, from GET /financial/monthly-revenue
    series = {p["week_start"]: p["value"] for p in rev["series"]["value"]}
    assert list(series)[0] == "2026-09-07" and list(series)[-1] == "2026-11-23" and len(series) == 12
    assert series == {**dict.fromkeys(series, 0.0), "2026-09-07": 300.0, "2026-10-26": 800.0, "2026-11-02": 2000.0,
                      "2026-11-23": 1300.0}
    # Every figure names its source: the Odoo model, the route, the range and when it was read.
    src = rev["week"]["source"]
    assert "account.move" in src and "GET /financial/records" in src and "2026-11-23..2026-11-29" in src
    assert "2 posted customer invoice(s) and 1 credit note(s)" in src and "as of" in src
    assert "goals.monthly_revenue_target" in rev["target"]["source"]


def test_receivables_by_bucket_and_the_customers_to_chase(books):
    b = run(books)
    rec = b.sections["receivables"]
    # I1 1000 + I2 550 (taxed) + the 30 Nov invoice 50 current; I3 2000 11 days and the credit note -200
    # 5 days late (1-30); I4 800 33 days (31-60).
    assert rec["total"]["value"] == 4200.0 and rec["overdue"]["value"] == 2600.0
    assert {k: v["value"] for k, v in rec["buckets"].items()} == {"current": 1600.0, "1-30": 1800.0, "31-60": 800.0,
                                                                  "61-90": 0.0, "90+": 0.0}
    assert [(c["partner"], c["amount"]["value"], c["oldest_days"]) for c in rec["chase"]] == [
        ("Blue Sky Ltd", 2000.0, 11), ("Acme Corp", 800.0, 33)]
    assert "GET /financial/outstanding" in rec["total"]["source"]
    due = b.sections["deadlines"]
    assert [(i["due"], i["amount"]["value"]) for i in due["invoices"]] == [("2026-12-08", 1000.0), ("2026-12-10", 50.0)]
    assert [(t["id"], t["due"], t["overdue"]) for t in due["tasks"]] == [("t-due0", "2026-11-25", True),
                                                                         ("t-due1", "2026-12-02", False)]


def test_completed_tasks_and_bottlenecks_expected_against_actual(books):
    b = run(books)
    work = b.sections["work"]
    assert work["total"]["value"] == 6  # e1, e2, f1, f2, i1, w1 (not last week's, not Monday's, not a request)
    kinds = {k["type"]: k for k in work["by_type"]}
    assert set(kinds) == {"email", "file_drop", "invoice", "whatsapp"}
    assert (kinds["email"]["done"]["value"], kinds["email"]["median_hours"]["value"],
            kinds["email"]["expected_hours"]["value"], kinds["email"]["over"]["value"]) == (2, 26.0, 24.0, 1)
    assert (kinds["file_drop"]["median_hours"]["value"], kinds["file_drop"]["expected_hours"]["value"],
            kinds["file_drop"]["over"]["value"]) == (30.5, 48.0, 1)
    assert kinds["invoice"]["expected_hours"]["value"] == 72.0  # max_days_to_invoice 3 × 24 h
    assert "max_days_to_invoice" in kinds["invoice"]["expected_hours"]["source"]
    assert "expected_hours.file_drop" in kinds["file_drop"]["expected_hours"]["source"]
    assert kinds["whatsapp"]["over"]["value"] == 0 and kinds["whatsapp"]["expected_hours"]["value"] == 24.0
    assert [(t["id"], t["actual_hours"], t["expected_hours"]) for t in work["bottlenecks"]] == [
        ("t-i1", 120.0, 72.0), ("t-e2", 48.0, 24.0), ("t-f1", 60.0, 48.0)]   # by how far over
    assert work["bottlenecks"][1]["title"] == "Re: Invoice: November"
    approvals = b.sections["approvals"]
    assert [(a["id"], a["waited_hours"], a["status"]) for a in approvals["longest"]] == [
        ("a6", 240.0, "waiting"), ("a2", 60.0, "rejected"), ("a3", 48.0, "waiting"), ("a1", 1.0, "executed")]
    assert approvals["decided"]["value"] == 2 and approvals["median_hours"]["value"] == 30.5
    assert approvals["waiting"]["value"] == 2
    failed = b.sections["failures"]
    assert failed["total"]["value"] == 1 and failed["items"][0]["id"] == "t-x1"
    assert failed["items"][0]["reason"].startswith("step 1: the Gmail server") and \
        failed["items"][0]["reason"].endswith("then retry")  # folded by YAML over two lines, read whole


def test_the_subscription_audit_flags_unused_price_rise_and_duplicate(books):
    b = run(books)
    subs = b.sections["subscriptions"]
    detected = {s["merchant"]: s for s in subs["subscriptions"]}
    assert set(detected) == {"Beanbox", "Zoom", "Figma", "Canva", "Slack"}   # not Amazon, Notion, Shell, Dropbox
    assert (detected["Beanbox"]["cadence"], detected["Beanbox"]["monthly"]["value"]) == ("weekly", 108.33)
    assert (detected["Slack"]["cadence"], detected["Slack"]["monthly"]["value"]) == ("yearly", 8.0)
    assert detected["Figma"]["cadence"] == detected["Canva"]["cadence"] == "monthly"
    assert detected["Figma"]["used"].startswith("Completed/t-fig.md (subject)")
    assert detected["Zoom"]["used"] == "Needs_Action/t-zoom.md (from)"          # structured field
    assert detected["Beanbox"]["used"] == "Needs_Action/t-beans.md (body)"
    assert detected["Slack"]["used"].startswith("Logs/2026-11-20.jsonl")       # a login's target
    assert detected["Canva"]["used"] is None
    findings = {f["merchant"]: f for f in b.result(books.vault)["subscriptions"]}
    assert list(findings) == ["Zoom", "Canva"]                                  # the larger saving first
    assert findings["Canva"]["rules"] == ["unused", "duplicate"]
    assert findings["Canva"]["monthly_amount"] == findings["Canva"]["saving"] == 12.99
    assert "same job (design) as Figma" in findings["Canva"]["reason"]
    assert findings["Zoom"]["rules"] == ["price_rise"] and findings["Zoom"]["saving"] == 19.99
    assert "rose 33%, from 14.99 GBP to 19.99 GBP" in findings["Zoom"]["reason"]
    assert "natwest.csv rows" in findings["Zoom"]["source"] and findings["Zoom"]["currency"] == "GBP"
    assert subs["total_saving"]["GBP"]["value"] == 32.98


def charges_on(days: list[str], amounts: list[float], payee: str = "ACME TOOLS"):  # noqa: ANN201 - BankCharges
    return group_charges(Charge(dt.date.fromisoformat(d), a, "GBP", payee, "bank.csv", n)
                         for n, (d, a) in enumerate(zip(days, amounts)))


def test_recurrence_rules_on_their_own():
    monthly = ["2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01"]
    assert [s.period.name for s in detect(charges_on(monthly, [10, 10, 10, 10]), dt.date(2026, 11, 29))] == ["monthly"]
    # Looks recurring, is not: irregular amounts, only two, irregular intervals, ended long ago.
    assert detect(charges_on(monthly, [10, 31, 9, 55]), dt.date(2026, 11, 29)) == []
    assert detect(charges_on(monthly[:2], [10, 10]), dt.date(2026, 11, 29)) == []
    assert detect(charges_on(["2026-10-01", "2026-10-04", "2026-10-21", "2026-11-28"], [10] * 4),
                  dt.date(2026, 11, 29)) == []
    assert detect(charges_on(monthly, [10] * 4), dt.date(2027, 3, 1)) == []
    # One price step up keeps it one subscription; a one-off purchase before the plan is not part of it.
    [sub] = detect(charges_on(monthly, [10, 10, 13, 13]), dt.date(2026, 11, 29))
    assert sub.previous_median == 10 and sub.last_amount == 13
    [sub] = detect(charges_on(["2026-07-01", *monthly], [80, 10, 10, 10, 10]), dt.date(2026, 11, 29))
    assert len(sub.dates) == 4 and sub.where == [("bank.csv", n) for n in range(1, 5)]
    assert merchant_key("4521 12MAR26 , ADOBE SYSTEMS 123 , LONDON GB") == "adobe systems"
    assert merchant_key("PAYPAL *SPOTIFY") == "spotify" and merchant_key("CANVA* 10443 SYDNEY AU") == "canva sydney"
    assert merchant_key("Card payment to ZOOM.US 888-799-9666 CA") == "zoom"


# -- the note and its chart -----------------------------------------------------------------------------
def test_the_note_is_valid_markdown_with_sources_and_a_chart_that_opens(books):
    b = run(books)
    assert b.path == books.vault.root / "Briefings" / "2026-11-30_Monday_Briefing.md"
    text = b.path.read_text("utf-8")
    doc = Document.parse(text)
    assert doc.meta["type"] == "briefing" and doc.meta["week_start"] == "2026-11-23"
    assert doc.meta["week_end"] == "2026-11-29" and doc.meta["generated"] == "2026-11-30T07:00:00Z"
    assert doc.meta["stale"] == ["social: Facebook", "social: Instagram"]   # the only sources not current
    assert doc.meta["chart"] == "2026-11-30_revenue.png"
    assert "![Revenue by week, last 12 weeks](2026-11-30_revenue.png)" in doc.body
    # Every number is followed by its source: each footnote used is defined, and defined once.
    used = set(re.findall(r"\[\^(\d+)\](?!:)", doc.body))
    defined = re.findall(r"^\[\^(\d+)\]: (.+)$", doc.body, re.MULTILINE)
    assert used == {n for n, _ in defined} and len(defined) == len({n for n, _ in defined})
    sources = dict(defined)
    week_row = re.search(r"\| This week \| \*\*1,300\.00 USD\[\^(\d+)\]\*\* \|", doc.body)
    assert week_row and "GET /financial/records" in sources[week_row.group(1)]
    assert re.search(r"Blue Sky Ltd: 2,000\.00 USD\[\^\d+\]", doc.body)
    assert "| Canva |" in doc.body and "| Zoom |" in doc.body
    assert "There is no API to cancel with" in doc.body
    assert "stale as of" in doc.body and "missing: no weekly summary of Instagram" in doc.body
    summary = b.result(books.vault)["summary"]
    assert summary.count(". ") == 2 and summary.startswith("Revenue this week was 1,300.00 USD, bringing November "
                                                           "2026 to 3,300.00 USD, 33% of the 10,000.00 USD")
    assert "6 tasks were completed, 3 of them slower than expected (the furthest over: the invoice “Invoice Blue " \
           "Sky”, 5.0 days against 3.0 days); 1 task failed, and 2 approvals still waited" in summary
    assert "Customers owe 4,200.00 USD, 2,600.00 USD of it overdue (chase Blue Sky Ltd first" in summary
    assert "found 2 savings worth 32.98 GBP a month" in summary
    png = b.chart.read_bytes()
    assert b.chart.name == "2026-11-30_revenue.png" and png.startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image
    with Image.open(b.chart) as image:
        image.verify()
    with Image.open(b.chart) as image:
        assert image.format == "PNG" and image.size == (800, 340)


def test_odoo_unreachable_the_briefing_is_still_written_and_says_missing(books):
    closed = f"http://127.0.0.1:{free_port()}"  # no server there: the Odoo MCP server is down
    b = run(books, closed)
    assert b.path.exists() and b.chart is None
    assert b.sections["revenue"]["state"].startswith("missing: Odoo unreachable")
    assert b.sections["receivables"]["state"].startswith("missing: Odoo unreachable")
    doc = Document.parse(b.path.read_text("utf-8"))
    assert "revenue" in doc.meta["stale"] and "receivables" in doc.meta["stale"]
    assert "> [!warning] missing: Odoo unreachable" in doc.body
    assert b.sections["work"]["total"]["value"] == 6 and b.sections["subscriptions"]["findings"]  # the rest stands
    assert b.result(books.vault)["summary"].startswith("Revenue figures are missing: Odoo unreachable")


def test_odoo_down_after_a_good_run_the_sections_say_stale_as_of(books):
    first = run(books)
    books.fake.down("503")  # Odoo itself: the server answers from its cache, marked stale
    b = run(books)
    rev = b.sections["revenue"]
    assert rev["state"].startswith("stale as of ") and rev["week"]["value"] == first.sections["revenue"]["week"]["value"]
    assert b.sections["receivables"]["state"].startswith("stale as of ")
    assert b.chart is not None and "stale as of" in b.path.read_text("utf-8")
    assert b.result(books.vault)["summary"].startswith("Revenue this week was 1,300.00 USD (stale as of ")
    # The server down too: the briefing's own copy of the last figures, with their time.
    b = run(books, f"http://127.0.0.1:{free_port()}")
    assert b.sections["revenue"]["state"].startswith("stale as of ") and "Odoo unreachable" in b.sections["revenue"]["state"]
    assert b.sections["revenue"]["month_to_date"]["value"] == 3300.0


# -- the skill ----------------------------------------------------------------------------------------
def context(settings: Settings, key: str = "k-1") -> ActionContext:
    return ActionContext(idempotency_key=key, task_id=None, grant_id=key, dry_run=True, settings=settings)


def test_the_skill_generates_any_week_and_records_approved_cancellations(books):
    registry = SkillRegistry().discover(ROOT / ".qwen" / "skills")
    assert "ceo_briefing_skill" in registry.skills, registry.load_errors
    gen = registry.action("ceo_briefing_skill", "generate_briefing")
    cancel = registry.action("ceo_briefing_skill", "cancel_subscription")
    assert gen.read_only and not cancel.read_only and cancel.channel == "local"
    assert not Policy().decide(cancel.info, {"merchant": "Canva", "monthly_amount": 12.99, "reason": "x"}).auto

    out = registry.invoke("ceo_briefing_skill", "generate_briefing", {"week": "2026-11-26"}, context(books.settings))
    assert out.success, out.error
    assert out.data["path"] == "Briefings/2026-11-30_Monday_Briefing.md"
    assert out.data["chart"] == "Briefings/2026-11-30_revenue.png"
    assert [f["merchant"] for f in out.data["subscriptions"]] == ["Zoom", "Canva"]
    assert {"merchant", "monthly_amount", "reason", "saving"} <= set(out.data["subscriptions"][0])
    assert out.data["stale"] == ["social: Facebook", "social: Instagram"]
    assert registry.invoke("ceo_briefing_skill", "generate_briefing", {"week": "26/11/2026"},
                           context(books.settings)).error_code == "VALIDATION_ERROR"

    params = {"merchant": "Canva", "monthly_amount": 12.99, "reason": "unused | 30 days", "currency": "GBP"}
    for _ in range(2):  # executed again after a crash: recorded once
        done = registry.invoke("ceo_briefing_skill", "cancel_subscription", params, context(books.settings, "apr-9"))
        assert done.success, done.error
    registry.invoke("ceo_briefing_skill", "cancel_subscription", {**params, "merchant": "Zoom"},
                    context(books.settings, "apr-10"))
    path = books.vault.root / "Accounting" / "Subscription_Cancellations.md"
    doc = Document.parse(path.read_text("utf-8"))
    rows = [line for line in doc.body.splitlines() if line.startswith("| 20")]
    assert len(rows) == 2 and "| Canva | 12.99 GBP | unused \\| 30 days | apr-9 |" in rows[0]
    assert cancel.reconcile(params, context(books.settings, "apr-9"))["key"] == "apr-9"
    assert cancel.reconcile(params, context(books.settings, "apr-11")) is None


BRIEFING_HANDBOOK = """```yaml
policy:
  auto_approve: []
planning:
  - rule: weekly-briefing
    when: {type: briefing}
    steps:
      - {skill: ceo_briefing_skill, action: generate_briefing, title: "Write the Monday briefing",
         params: {week: "{week}"}}
      - skill: ceo_briefing_skill
        action: cancel_subscription
        for_each: "{step1.subscriptions}"
        title: "Cancel {item.merchant}: saves {item.saving} {item.currency} a month"
        params: {merchant: "{item.merchant}", monthly_amount: "{item.monthly_amount}", reason: "{item.reason}",
                 currency: "{item.currency}"}
```
"""


def test_each_finding_becomes_a_request_to_cancel_and_an_approved_one_is_recorded(books, tmp_path):
    """The planning rule of SKILL.md, through the real loop and workflow: the briefing is written, each
    finding is a request for the owner; the approved one lands in Accounting/, the other waits."""
    import shutil
    from core.engine.workflow import Workflow
    from core.tasks import build_task, write_new_task
    from reasoning_loop import ReasoningLoop
    skills = tmp_path / "skills"
    shutil.copytree(ROOT / ".qwen" / "skills" / "ceo_briefing_skill", skills / "ceo_briefing_skill")
    settings = Settings.from_env({**books.settings.env, "SKILLS_DIR": str(skills)})
    (books.vault.root / "Company_Handbook.md").write_text(BRIEFING_HANDBOOK, "utf-8")
    loop = ReasoningLoop(settings, wf=Workflow.open(settings, actor="reasoning_loop"))
    loop.mine.mkdir(parents=True, exist_ok=True)
    doc = build_task("20261130T070000Z-briefing-0000000001", "briefing", "scheduler", "2026-11-23",
                     title="Monday briefing", content="The week of 2026-11-23.", extra={"week": "2026-11-23"})
    loop.work_on(loop.wf.vault.claim(write_new_task(loop.wf.vault, doc), loop.mine))
    assert (books.vault.root / "Briefings" / "2026-11-30_Monday_Briefing.md").exists()
    requests = sorted((books.vault.root / "Pending_Approval").glob("CANCEL_SUBSCRIPTION_*.md"))
    metas = {Document.parse(p.read_text("utf-8")).meta["params"]["merchant"]: p for p in requests}
    assert set(metas) == {"Zoom", "Canva"}
    zoom = Document.parse(metas["Zoom"].read_text("utf-8")).meta["params"]
    assert zoom["monthly_amount"] == 19.99 and zoom["currency"] == "GBP" and "rose 33%" in zoom["reason"]
    # What the agent interface does with a request the owner moved to Approved/: accept it, then execute it.
    executor = Workflow.open(settings, actor="agent_interface")
    grant = executor.approvals.accept(books.vault.move(metas["Zoom"], books.vault.folder("Approved")))
    assert executor.execute(grant).outcome.success
    ledger = (books.vault.root / "Accounting" / "Subscription_Cancellations.md").read_text("utf-8")
    assert "| Zoom | 19.99 GBP |" in ledger and "Canva" not in ledger
    assert metas["Canva"].exists()   # the other still waits for the owner


def test_default_week_and_cancellation_file_below_the_owners_notes(tmp_path):
    assert last_full_week(dt.date(2026, 11, 30), UTC).start == dt.date(2026, 11, 23)   # a Monday: the week just ended
    assert last_full_week(dt.date(2026, 12, 2), UTC).start == dt.date(2026, 11, 23)
    assert week_of(dt.date(2026, 11, 29), UTC).briefing_date == dt.date(2026, 11, 30)
    vault = Vault(tmp_path / "vault")
    vault.ensure_layout()
    path = vault.root / "Accounting" / "Subscription_Cancellations.md"
    cancellations.record(vault, tmp_path / "state", merchant="Canva", monthly_amount=12.99, reason="unused", key="a1")
    path.write_text(path.read_text("utf-8") + "\nMy notes: call them on Monday.\n", "utf-8")
    cancellations.record(vault, tmp_path / "state", merchant="Zoom", monthly_amount=19.99, reason="dearer", key="a2")
    lines = path.read_text("utf-8").splitlines()
    assert lines[-3:-1] == cancellations.TABLE_HEAD and lines[-1].endswith("| a2 |")   # a table of its own
    assert "My notes: call them on Monday." in lines


def test_the_fast_frontmatter_reader_agrees_with_yaml():
    metas = [{"id": "t1", "type": "email", "subject": "Re: Invoice: 'November'", "created": "2026-11-23T10:15:00Z",
              "reason": "x" * 150 + " then more words that fold " * 5, "from": "Jane <j@x.example>", "due": None},
             {"id": "t2", "type": "email", "subject": "Line one\nline two", "to": ["a@x", "b@x"]},
             {"id": "t3", "type": "file_drop", "subject": 'He said "hi" # not a comment', "finished": "2026-11-24"}]
    for meta in metas:
        text = Document(meta, "# Title\n\nBody\n").render()
        front = frontmatter.read(text, meta.keys())
        expected = Document.parse(text).meta
        assert {k: str(v) if v is not None else None for k, v in front.fields.items()} == \
            {k: str(v) if v is not None else None for k, v in expected.items()}
        assert text[front.body_at:].startswith("# Title")
    assert frontmatter.read("no frontmatter", ["id"]) is None


def test_ended_tasks_last_written_before_the_window_are_not_read(tmp_path):
    """A task is last written when it finishes: an older file cannot have finished in the week or the
    30 days the audit looks at, so the briefing does not open it (its cost follows recent work)."""
    import os
    from briefing.vault_scan import scan
    vault = Vault(tmp_path / "vault")
    vault.ensure_layout()
    old = task(vault, "Completed", "t-old", "email", "2026-03-01T09:00:00Z", finished="2026-03-02T09:00:00Z",
               subject="Canva export")
    os.utime(old, (at("2026-03-02T09:00"), at("2026-03-02T09:00")))
    task(vault, "Completed", "t-new", "email", "2026-11-24T09:00:00Z", finished="2026-11-24T10:00:00Z")
    task(vault, "Needs_Action", "t-open", "email", "2026-03-01T09:00:00Z")   # open tasks are always read
    since = dt.datetime(2026, 10, 31, tzinfo=UTC)
    assert sorted(r.id for r in scan(vault, since=since)) == ["t-new", "t-open"]
    assert sorted(r.id for r in scan(vault)) == ["t-new", "t-old", "t-open"]


import yaml  # noqa: E402
from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
                     st.text(max_size=300), st.dates().map(str))


@hsettings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), _SCALARS, min_size=1, max_size=8),
       st.text(max_size=200))
def test_whatever_the_product_writes_the_fast_reader_reads_as_yaml_does(meta, body):
    text = Document(meta, body).render()
    front = frontmatter.read(text, meta.keys())
    expected = Document.parse(text)
    assert front is not None and set(front.fields) == set(expected.meta)
    for key, value in expected.meta.items():
        got = front.fields[key]
        if isinstance(value, str) or value is None:
            assert got == value, key
        else:  # a plain non-string scalar is handed back as YAML wrote it: it reads back to the value
            assert yaml.safe_load(got) == value if isinstance(got, str) else got == value, key
    assert text[front.body_at:] == expected.body
