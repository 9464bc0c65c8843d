"""CEO briefing benchmark (issue 11): the whole Monday briefing over 100,000 bank transactions and 10,000
completed tasks.

    .venv/bin/python bench/briefing.py [--transactions 100000] [--tasks 10000] [--runs 3] [--odoo stub|cached]

Builds, before any clock runs, a temporary vault and state store: --transactions bank transactions over two
years (card spending at a few hundred merchants, a dozen subscriptions weekly, monthly and yearly, some with a
price rise, incoming payments), --tasks task files in Completed/ over the last ten weeks (email, file_drop,
invoice, whatsapp, social_post; created → finished as the workflow writes them), a few hundred open and failed
tasks, 2,000 approvals, a month of audit logs and the social summaries' cache. The Odoo figures come from
``--odoo stub``: a stub of the Odoo MCP server's three routes on 127.0.0.1 (the standard envelope, 600 invoices
over the 12 weeks, through the product's McpClient over HTTP), or ``--odoo cached``: the server is down and the
briefing uses its own copy of the last figures (the stale path).

Then times ``briefing.generate`` (gather, every section, the chart with matplotlib, the note, both written to the
vault) --runs times, and reports each run, the best and the median; the first run also pays for importing
matplotlib (once per process), reported apart. The phases of one warm run are reported too. Budget (DESIGN §10):
under 2 s (the median). Exits 1 when over budget.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from briefing import generate, week_of  # noqa: E402
from briefing import chart as charts  # noqa: E402
from briefing import sources, subscriptions  # noqa: E402
from briefing.odoo import OdooFigures  # noqa: E402
from core.documents import Document  # noqa: E402
from core.engine.mcp_client import McpClient  # noqa: E402
from core.retry import Backoff  # noqa: E402
from core.state import StateStore  # noqa: E402
from core.vault import Vault  # noqa: E402
from odoo_integration.bank_files import BankTransaction  # noqa: E402
from odoo_integration.bank_store import store_transactions  # noqa: E402

BUDGET_S = 2.0
UTC = dt.timezone.utc
WEEK = week_of(dt.date(2026, 11, 23), UTC)
NOW = dt.datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
SUBSCRIPTIONS = [  # (payee text, amount, period days, price rise)
    ("CANVA* 10443 SYDNEY AU", "12.99", 30, None), ("FIGMA.COM SAN FRANCISCO US", "15.00", 30, None),
    ("ZOOM.US 888-799-9666 CA", "14.99", 30, "19.99"), ("SLACK TECHNOLOGIES", "96.00", 364, None),
    ("ADOBE SYSTEMS , DIRECT DEBIT", "56.98", 30, None), ("GOOGLE *WORKSPACE , DIRECT DEBIT", "42.00", 30, "50.40"),
    ("DROPBOX", "9.99", 30, None), ("BEANBOX COFFEE , DIRECT DEBIT", "25.00", 7, None),
    ("XERO UK , DIRECT DEBIT", "30.00", 30, None), ("QUICKBOOKS ONLINE", "25.00", 30, None),
    ("MICROSOFT*TEAMS", "4.20", 30, None), ("NOTION LABS", "8.00", 30, None),
]
MERCHANTS = ["PRET A MANGER", "TESCO STORES", "AMAZON MKTPLACE", "SHELL", "TFL TRAVEL CH", "UBER TRIP",
             "COSTA COFFEE", "STAPLES", "BT GROUP PLC", "SAINSBURYS", "WAITROSE", "JOHN LEWIS", "ARGOS", "BOOTS"]
KINDS = [("email", 0.45), ("file_drop", 0.25), ("invoice", 0.1), ("whatsapp", 0.15), ("social_post", 0.05)]
GOALS = """# Business Goals
```yaml
goals:
  monthly_revenue_target: 60000
  max_days_to_invoice: 3
  max_hours_to_reply: 24
  social_posts_per_week: 3
  expected_hours: {file_drop: 48, social_post: 48}
  subscription_categories:
    design: [canva, figma, adobe]
    video calls: [zoom, teams, meet]
    accounting: [xero, quickbooks]
```
"""


# -- the data, made before any clock runs ---------------------------------------------------------------
def bank(rnd: random.Random, count: int) -> list[BankTransaction]:
    end, start = WEEK.end, WEEK.end - dt.timedelta(days=730)
    out: list[BankTransaction] = []
    for text, amount, every, risen in SUBSCRIPTIONS:
        day, n = start + dt.timedelta(days=rnd.randint(0, every - 1)), 0
        while day <= end:
            price = risen if risen and day > end - dt.timedelta(days=40) else amount
            out.append(BankTransaction(day, -Decimal(price), "GBP", text, "", source="natwest.csv", row=0))
            day += dt.timedelta(days=every + rnd.choice((-1, 0, 0, 1)) if every > 7 else every)
            n += 1
    while len(out) < count:
        day = start + dt.timedelta(days=rnd.randint(0, 730))
        if rnd.random() < 0.3:
            out.append(BankTransaction(day, Decimal(rnd.randint(5_000, 2_500_000)) / 100, "GBP",
                                       f"CUSTOMER {rnd.randint(1, 900)} , INV 2026 {rnd.randint(1, 99999):05d} , FP",
                                       "", source="natwest.csv", row=0))
        else:
            merchant = rnd.choice(MERCHANTS)
            out.append(BankTransaction(day, -Decimal(rnd.randint(150, 25_000)) / 100, "GBP",
                                       f"4521 {day:%d%b%y} , {merchant} {rnd.randint(1, 400)} , LONDON GB".upper(),
                                       "", source="natwest.csv", row=0))
    out.sort(key=lambda t: t.date)
    return [BankTransaction(t.date, t.amount, t.currency, t.description, t.counterparty, source=t.source, row=i + 2)
            for i, t in enumerate(out)]


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_task(folder: Path, task_id: str, meta: dict, body: str) -> None:
    (folder / f"{task_id}.md").write_text(Document({"id": task_id, **meta}, body).render(), "utf-8")


def vault_files(rnd: random.Random, vault: Vault, tasks: int) -> None:
    (vault.root / "Business_Goals.md").write_text(GOALS, "utf-8")
    kinds, weights = zip(*KINDS)
    completed, needs, failed = vault.folder("Completed"), vault.folder("Needs_Action"), vault.folder("Failed")
    first = WEEK.ends - dt.timedelta(weeks=10)
    for n in range(tasks):
        kind = rnd.choices(kinds, weights)[0]
        created = first + dt.timedelta(seconds=rnd.randint(0, 10 * 7 * 86400))
        finished = created + dt.timedelta(minutes=rnd.randint(5, 6 * 24 * 60))
        who = rnd.choice(["Jane Doe <jane@example.com>", "Acme AP <ap@acme.example>", "Zoom <no-reply@zoom.us>",
                          "Blue Sky <billing@bluesky.example>", "+44 7700 900123"])
        subject = rnd.choice(["Invoice request", "Re: Quote for the new site", "Figma comments on the logo",
                              "Meeting notes", "Receipts for November", "Question: delivery dates?"])
        task_id = f"{created:%Y%m%dT%H%M%SZ}-{kind}-{n:06x}"
        write_task(completed, task_id, {
            "type": kind, "source": "bench", "source_id": str(n), "created": stamp(created), "status": "completed",
            "priority": "normal", "from": who, "subject": subject, "outcome": "done", "finished": stamp(finished)},
            f"# {subject}\n\nHello, a few lines of the message as the watcher wrote them, number {n}.\n"
            "Thanks for the help last week; see the attachment.\n")
    for n in range(300):
        created = WEEK.ends - dt.timedelta(hours=rnd.randint(1, 600))
        meta = {"type": "email", "source": "bench", "source_id": f"o{n}", "created": stamp(created),
                "status": "needs_action", "priority": "normal", "subject": "Open question"}
        if n % 10 == 0:
            meta["due"] = (WEEK.briefing_date + dt.timedelta(days=n % 20)).isoformat()
        write_task(needs, f"open-{n:04d}", meta, "# Open question\n\nPlease reply.\n")
    for n in range(100):
        created = WEEK.ends - dt.timedelta(hours=rnd.randint(1, 400))
        write_task(failed, f"failed-{n:04d}", {
            "type": "email", "source": "bench", "source_id": f"f{n}", "created": stamp(created), "status": "failed",
            "priority": "normal", "outcome": "failed", "finished": stamp(created + dt.timedelta(hours=2)),
            "reason": "step 1: the Gmail server could not be reached after 8 attempts over two days, so the reply "
                      "to the customer was not sent; check the Sent folder, then retry"}, "# Reply\n")
    logs = vault.folder("Logs")
    for back in range(31):
        day = WEEK.end - dt.timedelta(days=back)
        lines = [json.dumps({"timestamp": f"{day}T10:00:00Z", "action_type": rnd.choice(["task.finished", "gmail_skill."
                             "send_email", "browser_skill.browse_web"]), "actor": "agent",
                             "target": rnd.choice(["Completed", "jane@example.com", "https://app.slack.com/client",
                                                   "https://www.figma.com/file/x"]), "result": {"success": True}})
                 for _ in range(300)]
        (logs / f"{day.isoformat()}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")


def state_rows(rnd: random.Random, state: StateStore) -> None:
    with state.transaction() as db:
        for n in range(2000):
            created = WEEK.ends.timestamp() - rnd.randint(0, 60 * 86400)
            decided = created + rnd.randint(60, 4 * 86400) if rnd.random() < 0.95 else None
            db.execute("INSERT INTO approvals(id, task_id, step_no, skill, action, params, file_name, status, created, "
                       "decided, approved_by) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                       (f"apr-{n}", f"t-{n}", 1, "gmail_skill", "send_email", "{}", f"SEND_EMAIL_x_apr-{n}.md",
                        "executed" if decided else "pending", created, decided, "owner" if decided else None))
    for platform in ("twitter", "facebook", "instagram"):
        state.cache_put(f"summary:{platform}", {
            "platform": platform, "period": {"start": WEEK.start.isoformat(), "end": WEEK.briefing_date.isoformat(),
                                             "days": 7},
            "posts": 5, "reach": 12000, "engagement": 340, "engagement_rate": 0.028, "previous": {},
            "change_percent": {"reach": 4.0}, "best_post": None})


# -- the Odoo MCP server's three routes, as a stub ---------------------------------------------------------
def odoo_answers(rnd: random.Random) -> dict[str, object]:
    first = WEEK.start - dt.timedelta(weeks=11)
    records = []
    for n in range(600):
        day = first + dt.timedelta(days=rnd.randint(0, 83))
        amount = round(rnd.uniform(200, 5000), 2)
        refund = rnd.random() < 0.05
        records.append({"name": f"{'RINV' if refund else 'INV'}/2026/{n:05d}", "move_type": "out_refund" if refund
                        else "out_invoice", "state": "posted", "partner": f"Customer {n % 90}",
                        "invoice_date": day.isoformat(), "amount_untaxed_signed": -amount if refund else amount,
                        "amount_total_signed": (-amount if refund else amount) * 1.2})
    records.sort(key=lambda r: r["invoice_date"], reverse=True)
    invoices = [{"number": f"INV/2026/{n:05d}", "partner": f"Customer {n % 90}", "invoice_date": "2026-10-01",
                 "due_date": (WEEK.briefing_date + dt.timedelta(days=rnd.randint(-120, 30))).isoformat(),
                 "amount_total": 1200.0, "amount_residual": round(rnd.uniform(100, 4000), 2), "currency": "GBP"}
                for n in range(250)]
    for inv in invoices:
        late = (WEEK.briefing_date - dt.date.fromisoformat(inv["due_date"])).days
        inv["days_overdue"] = max(0, late)
        inv["bucket"] = ("current" if late <= 0 else "1-30" if late <= 30 else "31-60" if late <= 60 else
                         "61-90" if late <= 90 else "90+")
    buckets = {b: round(sum(i["amount_residual"] for i in invoices if i["bucket"] == b), 2)
               for b in ("current", "1-30", "31-60", "61-90", "90+")}
    total = round(sum(buckets.values()), 2)
    return {"records": records, "outstanding": {
        "invoices": invoices, "total_residual": total, "overdue_residual": round(total - buckets["current"], 2),
        "by_bucket": buckets, "currency": "GBP", "as_of": stamp(NOW)},
        "months": {"months": [{"month": "2026-10", "untaxed": 51234.5, "total": 61481.4, "invoices": 210,
                               "credit_notes": 9}, {"month": "2026-11", "untaxed": 47001.0, "total": 56401.2,
                                                    "invoices": 190, "credit_notes": 7}], "currency": "GBP"}}


class Stub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        super().__init__(("127.0.0.1", 0), StubHandler)


class StubHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        answers = self.server.answers  # type: ignore[attr-defined]
        if url.path == "/financial/records":
            kind = "out_refund" if query.get("kind") == "credit_notes" else "out_invoice"
            rows = [r for r in answers["records"] if r["move_type"] == kind
                    and query.get("date_from", "") <= r["invoice_date"] <= query.get("date_to", "9999")]
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
            data = {"records": rows[offset:offset + limit], "total": len(rows), "scope": {"currency": "GBP"},
                    "as_of": stamp(NOW)}
        elif url.path == "/financial/outstanding":
            data = answers["outstanding"]
        elif url.path == "/financial/monthly-revenue":
            data = answers["months"]
        else:
            self.send_error(404)
            return
        body = json.dumps({"success": True, "data": data, "timestamp": stamp(NOW)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# -- the runs ----------------------------------------------------------------------------------------------
def timed(fn):  # noqa: ANN001, ANN201 - (seconds, value)
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--odoo", choices=["stub", "cached"], default="stub")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-briefing-") as tmp:
        vault = Vault(Path(tmp) / "vault")
        vault.ensure_layout()
        state = StateStore(vault.root / ".state" / "state.db")
        setup, _ = timed(lambda: (store_transactions(state, bank(rnd, args.transactions)),
                                  vault_files(rnd, vault, args.tasks), state_rows(rnd, state)))
        stub = Stub(odoo_answers(rnd))
        threading.Thread(target=stub.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{stub.server_address[1]}"
        figures = OdooFigures(McpClient(url, backoff=Backoff(attempts=1)), state)
        if args.odoo == "cached":
            generate(vault, state, figures, WEEK, now=NOW)  # fills the briefing's copy of the figures
            figures = OdooFigures(McpClient("http://127.0.0.1:9", backoff=Backoff(attempts=1)), state)  # nobody there
        print(f"data: {args.transactions:,} bank transactions, {args.tasks:,} completed tasks, 400 open/failed, "
              f"2,000 approvals, 31 days of audit logs; Odoo figures: {args.odoo} (set up in {setup:.1f} s, untimed)")
        times, result = [], None
        for n in range(args.runs):
            cold = "matplotlib" not in sys.modules
            seconds, result = timed(lambda: generate(vault, state, figures, WEEK, now=NOW))
            times.append(seconds)
            print(f"run {n + 1}: {seconds:.3f} s" + ("  (includes importing matplotlib)" if cold else ""))
        assert result is not None
        # One warm run, phase by phase (the same calls generate makes).
        gather_s, src = timed(lambda: sources.gather(vault, state, figures, WEEK, now=NOW))
        audit_s, subs = timed(lambda: subscriptions.audit(src, vault))
        series = result.sections["revenue"].get("series", {}).get("value") or []
        chart_s, _ = timed(lambda: charts.revenue_png(series, currency="GBP", weekly_target=13846.15)) if series \
            else (0.0, None)
        print(f"phases (warm): gather {gather_s:.3f} s (of which {len(src.tasks):,} task files, "
              f"{src.bank.count:,} charges), subscription audit {audit_s:.3f} s "
              f"({len(subs['subscriptions'])} recurring, {len(subs['findings'])} findings), chart {chart_s:.3f} s")
        print(f"stale sections: {', '.join(result.stale) or 'none'}")
        best, median = min(times), statistics.median(times)
        print(f"briefing: best {best:.3f} s, median {median:.3f} s of {args.runs} (budget {BUDGET_S:.1f} s)")
        stub.shutdown()
        if median > BUDGET_S:
            print(f"OVER BUDGET: median {median:.3f} s > {BUDGET_S:.1f} s")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
