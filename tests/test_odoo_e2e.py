"""The books end to end, as real processes on a temporary vault against the fake Odoo, with the
shipped handbook: a note asking for an invoice becomes one draft invoice in Odoo once the owner
approves (also across kill -9 of the agent interface between Odoo's answer and its record, and while
Odoo is down); bank exports are kept once each and their payments proposed against open invoices."""
from __future__ import annotations

import contextlib
import shutil
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from core.documents import Document
from core.state import StateStore
from tests.conftest import ROOT, Suite, free_port, make_env, md_files, wait_until
from tests.fakes.fake_odoo import FakeOdoo

pytestmark = pytest.mark.timeout(180)
FIXTURES = Path(__file__).parent / "fixtures" / "bank"
NOTE = "Hi,\n\nPlease invoice Blue Sky Ltd for 8 hours of consulting at 150.\n\nThanks, Sam\n"


@pytest.fixture
def books(tmp_path: Path):
    with contextlib.ExitStack() as stack:
        fake = FakeOdoo(19, today=date(2026, 2, 5), currency="GBP").start()  # a UK business, like its bank
        stack.callback(fake.stop)
        fake.add_partner("Blue Sky Ltd", email="billing@bluesky.example", is_company=True, customer_rank=1)
        port = free_port()
        env = make_env(tmp_path, handbook=(ROOT / "core" / "defaults" / "Company_Handbook.md").read_text("utf-8"),
                       ODOO_MCP_PORT=str(port), ODOO_URL=fake.url, ODOO_DB=fake.db, ODOO_API_KEY=fake.api_key,
                       DRY_RUN="false")
        shutil.copytree(ROOT / ".qwen" / "skills" / "odoo_skill", tmp_path / "skills" / "odoo_skill")
        suite = Suite(tmp_path, env)
        stack.callback(suite.stop_all)
        yield SimpleNamespace(suite=suite, fake=fake, url=f"http://127.0.0.1:{port}")


def start(b, *names: str) -> None:
    for name in names:
        b.suite.start(name)
        if name == "odoo":
            wait_until(lambda: _health(b.url), timeout=20, message="the Odoo server to answer")


def _health(url: str) -> dict | None:
    with contextlib.suppress(requests.ConnectionError):
        return requests.get(f"{url}/health", timeout=2).json()
    return None


def front(path: Path) -> dict:
    return Document.parse(path.read_text("utf-8")).meta


def invoices(b, ref_prefix: str = "AIE-") -> list[dict]:
    return [m for m in b.fake.search_read("account.move", [("move_type", "=", "out_invoice")],
                                          ["ref", "state", "amount_untaxed", "partner_id"])
            if str(m.get("ref") or "").startswith(ref_prefix)]


def the_request(b) -> Path:
    files = wait_until(lambda: md_files(b.suite.folder("Pending_Approval")), timeout=60, message="the request")
    assert len(files) == 1, files
    return files[0]


def test_a_note_asking_for_an_invoice_becomes_one_draft_invoice_once_approved(books):
    start(books, "odoo", "watcher", "loop", "agent")
    books.suite.drop("note to self.txt", NOTE)
    request = the_request(books)
    meta = front(request)
    assert (meta["skill"], meta["action"]) == ("odoo_skill", "create_invoice")
    assert meta["params"]["partner"] == "billing@bluesky.example"  # the customer Odoo knows
    assert meta["params"]["lines"] == [{"description": "Consulting", "quantity": 8, "unit_price": 150}]
    assert meta["params"]["reference"] == f"AIE-{meta['task_id']}" and invoices(books) == []
    assert "Blue Sky Ltd: 8 × Consulting at 150.00 = 1,200.00 before tax" in request.read_text("utf-8")
    books.suite.cli("approve", meta["id"])
    wait_until(lambda: (books.suite.folder("Completed") / f"{meta['task_id']}.md").exists(), timeout=60,
               message="the task done")
    [made] = invoices(books)
    assert made["state"] == "draft" and made["amount_untaxed"] == 1200.0


def test_an_agent_killed_after_odoo_made_the_invoice_still_makes_one(books):
    start(books, "odoo", "watcher", "loop", "agent")
    books.suite.drop("note.txt", NOTE)
    meta = front(the_request(books))
    held = books.fake.hold("account.move", "create", phase="after")  # Odoo makes it; the answer waits
    books.suite.cli("approve", meta["id"])
    assert held.arrived.wait(60), "the create never reached Odoo"
    books.suite.kill9("agent")
    held.release()
    wait_until(lambda: len(invoices(books)) == 1, timeout=20, message="the server to record Odoo's answer")
    start(books, "agent")
    wait_until(lambda: (books.suite.folder("Completed") / f"{meta['task_id']}.md").exists(), timeout=60,
               message="the task done after the restart")
    assert len(invoices(books)) == 1


def test_an_invoice_approved_while_odoo_is_down_is_made_once_when_it_is_back(books):
    start(books, "odoo", "watcher", "loop", "agent")
    books.suite.drop("note.txt", NOTE)
    meta = front(the_request(books))
    books.fake.down("503")
    books.suite.cli("approve", meta["id"])
    task = books.suite.folder("In_Progress") / "reasoning_loop" / f"{meta['task_id']}.md"
    wait_until(lambda: task.exists() and front(task)["status"] == "waiting_for_retry", timeout=60,
               message="the approved invoice to wait for Odoo")
    books.fake.up()
    state = StateStore(books.suite.vault / ".state" / "state.db")
    with state.transaction() as db:  # its turn now, not in a minute
        db.execute("UPDATE outbox SET next_attempt=0")
        db.execute("UPDATE steps SET due=0 WHERE status='queued'")
    wait_until(lambda: (books.suite.folder("Completed") / f"{meta['task_id']}.md").exists(), timeout=60,
               message="the task done once Odoo is back")
    assert len(invoices(books)) == 1


def test_bank_exports_are_kept_once_and_their_payments_proposed_against_open_invoices(books):
    fake = books.fake
    orion = fake.add_partner("Orion Trading Limited", is_company=True, customer_rank=1)
    for n in range(1, 18):  # INV/2026/00001 .. 00017, posted in order
        amount = {12: 1200.0, 17: 2400.0}.get(n, 111.0 + n)
        fake.add_invoice(orion if n == 17 else "Blue Sky Ltd", [("Work", 1, amount)], invoice_date="2026-01-02",
                         invoice_date_due="2026-01-31")
    start(books, "odoo", "watcher", "loop", "agent")
    for name in ("natwest_2026-01-01_2026-01-20.csv", "natwest_2026-01-14_2026-02-03.csv",
                 "chase_checking_2026-01.ofx"):
        books.suite.drop(name, (FIXTURES / name).read_bytes())
    wait_until(lambda: len([p for p in md_files(books.suite.folder("Pending_Approval"))
                            if front(p)["action"] == "register_payment"]) >= 2, timeout=90,
               message="the payment proposals")
    proposals = sorted((front(p)["params"]["invoice"], front(p)["params"]["amount"])
                       for p in md_files(books.suite.folder("Pending_Approval")) if front(p)["action"] == "register_payment")
    assert proposals == [("INV/2026/00012", 1200), ("INV/2026/00017", 2400)]  # each once, across the overlap
    state = StateStore(books.suite.vault / ".state" / "state.db")

    def stored() -> dict[str, int]:
        rows = state.query("SELECT source, COUNT(*) AS n FROM bank_transactions GROUP BY source")
        return {r["source"]: r["n"] for r in rows}
    counts = wait_until(lambda: len(stored()) == 3 and stored(), timeout=60, message="all three exports read")
    # 10 and 9 rows, 5 of them in both exports: 14 transactions, whichever was read first.
    assert counts["natwest_2026-01-01_2026-01-20.csv"] + counts["natwest_2026-01-14_2026-02-03.csv"] == 14
    assert counts["chase_checking_2026-01.ofx"] > 0


OWN_BANK = """```yaml
policy:
  auto_approve: []
bank_formats:
  - name: credit_union
    date: Posted
    date_formats: ["%m/%d/%Y"]
    amount: Amount
    description: Memo
    counterparty: Payee
    default_currency: USD
```
"""


def test_a_bank_the_owner_describes_in_the_handbook_is_read(tmp_path):
    from core.config import Settings
    from core.engine.skills import ActionContext, SkillRegistry
    from core.vault import Vault
    settings = Settings.from_env(make_env(tmp_path, handbook=OWN_BANK), load_dotenv_file=False)
    vault = Vault(settings.vault_path)
    vault.ensure_layout()
    export = "Posted,Payee,Memo,Amount\n11/03/2026,Coffee Shop,Card 4521,-3.50\n11/04/2026,Landlord,Rent Nov,-900.00\n"
    (vault.root / "Attachments" / "t__credit_union.csv").write_text(export, "utf-8")
    registry = SkillRegistry().discover(ROOT / ".qwen" / "skills")
    outcome = registry.invoke("odoo_skill", "import_bank_file", {"file": "Attachments/t__credit_union.csv"},
                              ActionContext("k", "t", None, True, settings))
    assert outcome.success, outcome.error
    assert (outcome.data["preset"], outcome.data["new"], outcome.data["matches"]) == ("credit_union", 2, [])


def test_two_overlapping_exports_imported_at_once_propose_their_shared_payment_once(books, monkeypatch):
    """Both imports read the store before either writes (a barrier at the write holds the first until the
    second arrives): the payment in both exports is still matched by one of them only."""
    import threading
    from core.config import Settings
    from core.engine.skills import ActionContext, SkillRegistry
    orion = books.fake.add_partner("Orion Trading Limited", is_company=True, customer_rank=1)
    books.fake.add_invoice(orion, [("Work", 1, 2400.0)], invoice_date="2026-01-02", invoice_date_due="2026-01-31")
    start(books, "odoo")
    settings = Settings.from_env(books.suite.env, load_dotenv_file=False)
    names = ("natwest_2026-01-01_2026-01-20.csv", "natwest_2026-01-14_2026-02-03.csv")
    (settings.vault_path / "Attachments").mkdir(parents=True, exist_ok=True)
    for name in names:
        (settings.vault_path / "Attachments" / f"t__{name}").write_bytes((FIXTURES / name).read_bytes())
    both_in, met = threading.Barrier(len(names), timeout=10), threading.Event()
    transaction = StateStore.transaction

    @contextlib.contextmanager
    def meet_first(self, *args, **kwargs):
        if not met.is_set():  # the first write of each import only
            with contextlib.suppress(threading.BrokenBarrierError):
                both_in.wait()
            met.set()
        with transaction(self, *args, **kwargs) as db:
            yield db
    monkeypatch.setattr(StateStore, "transaction", meet_first)
    registry = SkillRegistry().discover(ROOT / ".qwen" / "skills")
    results: dict[str, dict] = {}

    def import_(name: str) -> None:
        outcome = registry.invoke("odoo_skill", "import_bank_file", {"file": f"Attachments/t__{name}"},
                                  ActionContext(f"k-{name}", "t", None, False, settings))
        assert outcome.success, outcome.error
        results[name] = outcome.data
    threads = [threading.Thread(target=import_, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert set(results) == set(names)
    matched = [m["invoice"] for r in results.values() for m in r["matches"]]
    assert matched == ["INV/2026/00001"], results
    assert sum(r["new"] for r in results.values()) == 14
