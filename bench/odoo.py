"""Odoo figures benchmark (issue 8): monthly revenue and outstanding over a fake ledger of 50,000 invoices.

    .venv/bin/python bench/odoo.py [--invoices 50000] [--partners 300] [--versions 17,19] [--repeat 5]
                                   [--verify 200] [--spot-check 20] [--no-mcp] [--profile] [--fake-cache prefill]

Starts the protocol-faithful fake Odoo (tests/fakes/fake_odoo) once per version and seeds it, before any clock
runs, with a ledger of customer invoices spread over 24 months and --partners partners: posted, draft and
cancelled moves; paid, partial, not_paid and in_payment; credit notes; 15 % and 20 % taxes; a second currency
(EUR). Then, through the product's code (OdooConnector + odoo_integration.accounting), Odoo 17 over JSON-RPC and
Odoo 19 over JSON-2 (API key): for ``monthly_revenue(months=12)`` and ``outstanding()`` the cold first call (a
fresh connector: discovery, login, scope), then --repeat warm calls (best and median), and the round trips per
answer (HTTP requests that reached the fake). The same answers through the Odoo MCP server over HTTP
(``GET /financial/monthly-revenue``, ``GET /financial/outstanding``) unless --no-mcp.
Budget (issue 8): under 1 s and at most 5 round trips per (warm) answer. Exits 1 when over budget.

Seeding. Through the fake's own ORM (``FakeOdoo.add_invoice``), invoice by invoice, exactly as a test seeds it;
but the fake keeps its tables as plain dicts and scans whole tables (one2many fields, sequence numbers,
reconciliations) and snapshots the whole store on every call, so seeding 50,000 that way is quadratic (13, 30,
60 ms per invoice at 200, 400, 600 invoices: more than a day for 50,000).
Here each invoice is made by the same ORM code on small working tables: the base data and partners as they
are, the invoice tables empty but for the last numbered move of each sequence; the new rows are then merged into
the store. Ids come from the store's shared counters, so the rows are those the ORM makes on the full store
(--verify N seeds N invoices both ways and compares every table). Seeding time is reported apart.

The fake's computed fields (payment_state, amount_*) are memoised in its store until the next write; computed
cold on 50,000 invoices they cost O(moves x lines) (hours: every one2many read scans the whole line table).
With --fake-cache prefill (the default) the values the fake's own code computes on each invoice's working
tables are put into that memo, as a warm fake would have them: they stand for Odoo's stored columns
(payment_state and the amounts are stored in Odoo's database). --spot-check N recomputes N of them on the full
store with the fake's code. --fake-cache cold leaves the memo empty (only for small --invoices).

Time split: the fake's own work per request (its handler under its lock: domain evaluation, grouping, reading,
JSON encoding of the answer) is timed by wrapping ``FakeOdoo._serve`` on the instance; the rest of the wall time
is the product's (connector, HTTP client, JSON decoding, accounting.py) plus the HTTP hop on loopback. Fake and
client run in one process and share the GIL; the seeded store is kept out of the cyclic GC (gc.freeze), which
would otherwise walk its ~500,000 rows now and then, on whichever side allocated. --profile splits one warm call
of each answer under cProfile: the fake's phases (domain evaluation, sorting, read, aggregates, encoding) and the
client's (waiting on the socket, JSON decoding, the rest).
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from odoo_integration import accounting  # noqa: E402
from odoo_integration.config import OdooConfig  # noqa: E402
from odoo_integration.connector import OdooConnector  # noqa: E402
from tests.fakes.fake_odoo import FakeOdoo  # noqa: E402

BUDGET_SECONDS = 1.0
BUDGET_ROUND_TRIPS = 5
TODAY = date(2026, 11, 20)
EUR_RATE = 0.92  # EUR per USD (the company currency)
INVOICE_TABLES = ("account.move", "account.move.line", "account.payment", "account.payment.register",
                  "account.partial.reconcile")
WORDS = ["North", "Blue", "Sky", "Harbour", "Orion", "Green", "Leaf", "Atlas", "Nordic", "Bright", "Cedar", "Delta",
         "Summit", "River", "Stone", "Maple", "Silver", "Oak", "Pioneer", "Union", "Azure", "Coral", "Falcon"]
KINDS = ["Consulting", "Trading", "Studio", "Logistics", "Foods", "Systems", "Interiors", "Labs", "Media"]
FORMS = ["Ltd", "Inc", "LLC", "GmbH", "SARL", "& Co", "BV"]
PRODUCTS = [("Consulting (hours)", 80, 180), ("Support plan", 150, 900), ("Design", 300, 2500),
            ("Licence", 200, 1500), ("Training day", 600, 1400), ("Hosting", 20, 300), ("Hardware", 50, 4000)]


# --- the ledger ------------------------------------------------------------------------------------------------

def partner_specs(rnd: random.Random, count: int) -> list[dict]:
    names: set[str] = set()
    while len(names) < count:
        names.add(f"{' '.join(rnd.sample(WORDS, 2))} {rnd.choice(KINDS)} {rnd.choice(FORMS)}")
    return [{"name": name, "email": f"billing{i}@{name.split()[0].lower()}{i}.example", "is_company": True,
             "customer_rank": 1} for i, name in enumerate(sorted(names))]


def invoice_specs(rnd: random.Random, count: int, partners: list[int], eur_partners: set[int], tax15: int,
                  tax20: int, today: date) -> list[dict]:
    """add_invoice keyword arguments, oldest first (the order Odoo would number them in)."""
    first = today - timedelta(days=730)
    weights = [1 / (k + 1) ** 0.8 for k in range(len(partners))]  # a few big customers, a long tail
    days = sorted(rnd.randrange(0, 731) for _ in range(count))
    specs = []
    for offset in days:
        day = first + timedelta(days=offset)
        partner = rnd.choices(partners, weights)[0]
        refund = rnd.random() < 0.04
        taxes = rnd.choices([[tax15], [tax20], []], [55, 25, 20])[0]
        lines = []
        for _ in range(rnd.choices([1, 2, 3], [60, 30, 10])[0] if not refund else 1):
            label, low, high = rnd.choice(PRODUCTS)
            qty = rnd.randint(1, 12) if not refund else 1
            price = round(rnd.uniform(low, high) / (4 if refund else 1), 2)
            lines.append((label, qty, price, taxes))
        due = day + timedelta(days=rnd.choice([14, 30, 30, 30, 45, 60]))
        spec: dict[str, Any] = {"partner": partner, "lines": lines, "invoice_date": day.isoformat(),
                                "invoice_date_due": due.isoformat()}
        if refund:
            spec["move_type"] = "out_refund"
        if partner in eur_partners:
            spec["currency"] = "EUR"
        recent = (today - day).days <= 20
        roll = rnd.random()
        if (recent and roll < 0.15) or roll < 0.004:
            spec["state"] = "draft"
        elif roll > 0.975:
            spec["state"] = "cancel"
        else:
            late = (today - due).days
            if refund:
                states, odds = ["paid", "not_paid"], [80, 20]
            elif late > 90:
                states, odds = ["paid", "partial", "not_paid"], [97.5, 1.0, 1.5]
            elif late > 0:
                states, odds = ["paid", "partial", "not_paid", "in_payment"], [82, 5, 11, 2]
            else:
                states, odds = ["paid", "partial", "not_paid", "in_payment"], [30, 6, 60, 4]
            state = rnd.choices(states, odds)[0]
            if state != "not_paid":
                spec["payment_state"] = state
                latest = min(today, due + timedelta(days=20))
                paid_on = day + timedelta(days=rnd.randint(0, max(0, (latest - day).days)))
                if state == "in_payment":
                    paid_on = max(day, today - timedelta(days=rnd.randint(0, 5)))
                spec["payment_date"] = paid_on.isoformat()
            if state == "partial":
                untaxed = sum(q * p for _, q, p, _ in lines)
                spec["amount_paid"] = round(untaxed * rnd.uniform(0.2, 0.8), 2)
        specs.append(spec)
    return specs


def seed_base(fake: FakeOdoo, rnd: random.Random, partners: int, invoices: int) -> list[dict]:
    """Currency, tax, partners through the fake's API; the invoice specs (not yet seeded)."""
    fake.add_currency("EUR", EUR_RATE)
    tax20 = fake.add_tax(20.0)
    tax15 = next(rid for rid, row in fake.store.tables["account.tax"].items()
                 if row["amount"] == 15.0 and row["type_tax_use"] == "sale")
    ids = [fake.add_partner(**p) for p in partner_specs(rnd, partners)]
    eur = {pid for i, pid in enumerate(ids) if i % 7 == 3}
    return invoice_specs(rnd, invoices, ids, eur, tax15, tax20, fake.today)


def seed_invoices(fake: FakeOdoo, specs: list[dict], *, memo: bool) -> dict[tuple, Any]:
    """Each spec through ``fake.add_invoice`` on small working tables, merged into the store (see the module's
    docstring). Returns, when ``memo``, the computed values the fake's code gives each new move there."""
    store = fake.store
    full = store.tables
    for model in INVOICE_TABLES:
        full.setdefault(model, {})
    last_numbered: dict[str, dict] = {}  # sequence stem -> the move with the highest number (_next_name's scan)
    computed: dict[tuple, Any] = {}
    # add_invoice runs its work through _admin, which deep-copies the whole store first (to roll back on an
    # error). Seeding raises nothing, so the work runs directly; the instance attribute is removed afterwards.
    fake._admin = lambda work: work(fake.env())  # type: ignore[method-assign]
    try:
        with fake.lock:
            for spec in specs:
                work = {model: table for model, table in full.items() if model not in INVOICE_TABLES}
                work["account.move"] = {row["id"]: row for row in last_numbered.values()}
                for model in INVOICE_TABLES[1:]:
                    work[model] = {}
                store.tables = work
                try:
                    fake.add_invoice(**spec)
                    new_moves = [rid for rid in work["account.move"] if rid not in full["account.move"]]
                    if memo:
                        moves = fake.env()["account.move"]
                        for rid in new_moves:
                            computed[("account.move", "__amounts__", rid)] = moves._amount(rid)
                            computed[("account.move", "payment_state", rid)] = moves._get(rid, "payment_state")
                finally:
                    store.tables = full
                for model, table in work.items():
                    if model not in full:
                        full[model] = table
                    elif table is not full[model]:
                        full[model].update(table)
                for rid in new_moves:
                    name = full["account.move"][rid].get("name") or "/"
                    if name != "/":
                        last_numbered[name.rsplit("/", 1)[0]] = full["account.move"][rid]
    finally:
        del fake._admin
        store.touch()
    return computed


def prefill(fake: FakeOdoo, computed: dict[tuple, Any]) -> None:
    """The fake's memo of computed fields, as its own code filled it on each invoice (valid until a write)."""
    with fake.lock:
        fake.store.cache = dict(computed)
        fake.store.cache_version = fake.store.version


def comparable(tables: dict) -> dict:
    skip = {"create_date", "write_date"}
    return {model: {rid: {k: v for k, v in row.items() if k not in skip} for rid, row in table.items()}
            for model, table in tables.items() if table}


def verify(version: int, count: int, seed: int) -> str:
    """Seed ``count`` invoices through add_invoice as a test does and through seed_invoices; compare every table,
    the id counters and the computed values."""
    fakes = [FakeOdoo(version, today=TODAY), FakeOdoo(version, today=TODAY)]
    specs = [seed_base(f, random.Random(seed), max(5, count // 40), count) for f in fakes]
    for spec in specs[0]:
        fakes[0].add_invoice(**spec)
    computed = seed_invoices(fakes[1], specs[1], memo=True)
    a, b = comparable(fakes[0].store.tables), comparable(fakes[1].store.tables)
    problems = [m for m in sorted(set(a) | set(b)) if a.get(m) != b.get(m)]
    if fakes[0].store.next_id != fakes[1].store.next_id:
        problems.append("next_id")
    moves = fakes[0].env()["account.move"]
    wrong = [key for key, value in computed.items()
             if (moves._amount(key[2]) if key[1] == "__amounts__" else moves._get(key[2], key[1])) != value]
    if problems or wrong:
        return f"DIFFERENT ({', '.join(problems)}; {len(wrong)} computed values differ)"
    rows = sum(len(t) for m, t in b.items() if m in INVOICE_TABLES)
    return f"identical ({count} invoices, {rows} rows, {len(computed)} computed values)"


def spot_check(fake: FakeOdoo, computed: dict[tuple, Any], count: int, rnd: random.Random) -> str:
    """Recompute ``count`` prefilled moves on the full store with the fake's own code (slow: full scans)."""
    if not computed or not count:
        return "not run"
    moves = fake.env()["account.move"]
    rids = rnd.sample(sorted({key[2] for key in computed}), min(count, len(computed) // 2))
    started = time.perf_counter()
    bad = 0
    with fake.lock:
        for rid in rids:
            bad += moves._compute_amounts(rid) != computed[("account.move", "__amounts__", rid)]
            bad += moves._compute_payment_state(rid) != computed[("account.move", "payment_state", rid)]
    per = (time.perf_counter() - started) / len(rids)
    return (f"{len(rids)} moves recomputed on the full store: {'all equal' if not bad else f'{bad} DIFFER'} "
            f"({per * 1000:.0f} ms per move cold, the fake's own cost)")


# --- measuring -------------------------------------------------------------------------------------------------

class FakeTimer:
    """Times the fake's own work per request (FakeOdoo._serve's ``work``, run under its lock), optionally under
    cProfile, by wrapping ``_serve`` on the instance."""

    def __init__(self, fake: FakeOdoo) -> None:
        self.seconds: list[float] = []
        self.bytes = 0
        self.profile: cProfile.Profile | None = None
        original = fake._serve

        async def serve(call, work):  # noqa: ANN001, ANN202
            def timed():  # noqa: ANN202
                started = time.perf_counter()
                response = self.profile.runcall(work) if self.profile else work()
                self.seconds.append(time.perf_counter() - started)
                self.bytes += len(response.body or b"") if hasattr(response, "body") else 0
                return response
            return await original(call, timed)
        fake._serve = serve  # type: ignore[method-assign]

    def reset(self) -> None:
        self.seconds, self.bytes = [], 0


def measure(fake: FakeOdoo, timer: FakeTimer, fn: Callable[[], Any]) -> dict:
    fake.reset_calls()
    timer.reset()
    started = time.perf_counter()
    value = fn()
    wall = time.perf_counter() - started
    return {"wall": wall, "fake": sum(timer.seconds), "rts": len(fake.requests), "bytes": timer.bytes,
            "calls": dict(fake.call_counts()), "value": value}


def connector(fake: FakeOdoo) -> OdooConnector:
    key = fake.api_key if fake.version >= 19 else None
    return OdooConnector(OdooConfig(url=fake.url, db=fake.db, username="admin", password="admin", api_key=key))


ANSWERS: dict[str, Callable[[OdooConnector], Any]] = {
    "monthly_revenue(12)": lambda odoo: accounting.monthly_revenue(odoo, months=12, today=TODAY),
    "outstanding()": lambda odoo: accounting.outstanding(odoo, as_of=TODAY),
}


def bench_answer(fake: FakeOdoo, timer: FakeTimer, answer: Callable, repeat: int) -> dict:
    odoo = connector(fake)
    try:
        cold = measure(fake, timer, lambda: answer(odoo))  # also the warm-up: fills the connector's caches
        warm = [measure(fake, timer, lambda: answer(odoo)) for _ in range(repeat)]
    finally:
        odoo.close()
    return {"cold": cold, "warm": warm, "value": warm[-1]["value"]}


def _cumulative(prof: cProfile.Profile) -> tuple[float, dict[tuple[str, str], tuple[float, float]]]:
    stats = pstats.Stats(prof)
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for (filename, _line, name), (_cc, _nc, tottime, cumtime, _callers) in \
            stats.stats.items():  # type: ignore[attr-defined]
        key = (Path(filename).name if filename != "~" else "~", name)
        tt, ct = out.get(key, (0.0, 0.0))
        out[key] = (tt + tottime, ct + cumtime)
    return stats.total_tt, out  # type: ignore[attr-defined]


def profile_answer(fake: FakeOdoo, timer: FakeTimer, answer: Callable, top: int) -> str:
    """One warm call under cProfile on both sides (times inflated by the profiler; the shares are what count)."""
    odoo = connector(fake)
    try:
        answer(odoo)
        client, server = cProfile.Profile(), cProfile.Profile()
        timer.profile = server
        try:
            client.runcall(answer, odoo)
        finally:
            timer.profile = None
    finally:
        odoo.close()
    total, c = _cumulative(client)
    waiting = c.get(("~", "<method 'recv_into' of '_socket.socket' objects>"), (0.0, 0.0))[0]
    decoding = c.get(("decoder.py", "raw_decode"), (0.0, 0.0))[0]
    lines = [f"  client (the product's side) {total:.3f} s: waiting on the socket {waiting:.3f} s "
             f"({100 * waiting / total:.0f}%), JSON decoding {decoding:.3f} s, the rest (connector, requests, "
             f"accounting.py) {total - waiting - decoding:.3f} s"]
    total, f = _cumulative(server)

    def cum(name: str, filename: str = "orm.py") -> float:
        return f.get((filename, name), (0.0, 0.0))[1]
    search, sort, read = cum("_search"), cum("_sorted"), cum("read")
    groups = cum("_aggregate") + cum("_order_groups")
    encode = cum("encode", "encoder.py")
    share = lambda x: f"{x:.3f} s ({100 * x / total:.0f}%)"  # noqa: E731
    lines.append(f"  fake's work {total:.3f} s: domain evaluation {share(search - sort)}, sorting the matches "
                 f"{share(sort)}, read() of the rows {share(read)}, aggregates {share(groups)}, JSON encoding "
                 f"{share(encode)}, other {share(total - search - read - groups - encode)}")
    buf = io.StringIO()
    pstats.Stats(server, stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    body = text[text.find("   ncalls"):] if "   ncalls" in text else text
    lines.append("  fake's top functions (own time):")
    lines += ["    " + line for line in body.rstrip().splitlines()]
    return "\n".join(lines)


def bench_mcp(fake: FakeOdoo, timer: FakeTimer, repeat: int) -> dict:
    """The same answers through the Odoo MCP server (its REST routes) on a free port."""
    from core.config import Settings
    from core.state import StateStore
    from odoo_integration.mcp_server import build_app
    from tests.demo_service import ServerThread

    logging.getLogger("core.daemon").setLevel(logging.ERROR)  # "mcp-odoo is stopped" at the end
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-odoo-") as tmp:
        env = {"VAULT_PATH": str(Path(tmp) / "vault"), "DRY_RUN": "false", "ODOO_MCP_PORT": "0",
               "LOG_LEVEL": "WARNING", "ODOO_URL": fake.url, "ODOO_DB": fake.db, "ODOO_USERNAME": "admin",
               **({"ODOO_API_KEY": fake.api_key} if fake.version >= 19 else {"ODOO_PASSWORD": "admin"})}
        settings = Settings.from_env(env)
        odoo = OdooConnector(OdooConfig.from_env(env))
        started = time.perf_counter()
        with ServerThread(build_app(settings, odoo=odoo, today=lambda: TODAY)) as server:
            state = StateStore(settings.state_db)
            deadline = time.monotonic() + 600
            while not state.cache_get("dashboard:accounting"):  # the start-up probe and Dashboard figures
                if time.monotonic() > deadline:
                    raise RuntimeError("the MCP server's first refresh did not finish in 600 s")
                time.sleep(0.05)
            results["_startup"] = {"wall": time.perf_counter() - started}
            session = requests.Session()
            for route, params in (("/financial/monthly-revenue", {"months": 12}), ("/financial/outstanding", {})):
                def get(route=route, params=params) -> int:  # noqa: ANN001
                    resp = session.get(f"{server.url}{route}", params=params, timeout=120)
                    resp.raise_for_status()
                    return len(resp.content)
                cold = measure(fake, timer, get)
                warm = [measure(fake, timer, get) for _ in range(repeat)]
                results[route] = {"cold": cold, "warm": warm}
            session.close()
            state.close()
        odoo.close()
    return results


# --- output ----------------------------------------------------------------------------------------------------

def fmt_calls(calls: dict) -> str:
    return ", ".join(f"{k} {v}" if v > 1 else k for k, v in calls.items())


def summary(value: dict, kind: str) -> str:
    if kind.startswith("monthly"):
        months = value["months"]
        return (f"{len(months)} months, untaxed {sum(m['untaxed'] for m in months):,.2f} {value['currency']}, "
                f"{sum(m['invoices'] for m in months):,} invoices, {sum(m['credit_notes'] for m in months):,} "
                f"credit notes")
    return (f"{len(value['invoices']):,} open moves, {value['total_residual']:,.2f} {value['currency']} owed "
            f"({value['overdue_residual']:,.2f} overdue), {value['in_payment']['invoices']:,} in payment")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=50_000, help="customer invoices and credit notes")
    parser.add_argument("--partners", type=int, default=300)
    parser.add_argument("--versions", default="17,19", help="comma-separated: 17 (JSON-RPC), 19 (JSON-2)")
    parser.add_argument("--repeat", type=int, default=5, help="warm calls per answer; best and median reported")
    parser.add_argument("--verify", type=int, default=200, metavar="N",
                        help="first seed N invoices through add_invoice and the bulk path and compare (0: skip)")
    parser.add_argument("--spot-check", type=int, default=20, metavar="N",
                        help="recompute N prefilled moves on the full store with the fake's code (0: skip)")
    parser.add_argument("--fake-cache", choices=["prefill", "cold"], default="prefill",
                        help="the fake's memo of computed fields: as its code computed them while seeding "
                             "(default), or empty (its first read then computes them: quadratic, small ledgers only)")
    parser.add_argument("--no-mcp", action="store_true", help="skip the MCP server over HTTP")
    parser.add_argument("--profile", action="store_true", help="cProfile one warm call of each answer, both sides")
    parser.add_argument("--top", type=int, default=8, help="functions shown per profile")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    versions = [int(v) for v in args.versions.split(",") if v.strip()]

    print(f"Odoo figures: {args.invoices:,} customer invoices and credit notes over 24 months, {args.partners} "
          f"partners, today {TODAY}; {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"cold call + best/median of {args.repeat} warm; fake's computed fields: {args.fake_cache}")
    if args.verify:
        for version in versions:
            started = time.perf_counter()
            verdict = verify(version, args.verify, args.seed)
            print(f"Bulk seeding vs add_invoice on Odoo {version}: {verdict} [{time.perf_counter() - started:.1f} s]")

    rows, mcp_rows, profiles, checks, figures, over, cold_rts = [], [], [], [], {}, [], {}
    for version in versions:
        fake = FakeOdoo(version, today=TODAY)
        started = time.perf_counter()
        specs = seed_base(fake, random.Random(args.seed), args.partners, args.invoices)
        computed = seed_invoices(fake, specs, memo=args.fake_cache == "prefill")
        seeded = time.perf_counter() - started
        tables = fake.store.tables
        counts = {m: len(tables.get(m, {})) for m in ("account.move", "account.move.line", "account.payment",
                                                     "account.partial.reconcile")}
        mix: dict[str, int] = {}
        for spec in specs:
            key = spec.get("state", "posted") + ("/" + spec.get("payment_state", "not_paid")
                                                 if spec.get("state", "posted") == "posted" else "")
            mix[key] = mix.get(key, 0) + 1
        refunds = sum(1 for s in specs if s.get("move_type") == "out_refund")
        eur = sum(1 for s in specs if s.get("currency") == "EUR")
        print(f"Seeded Odoo {version} in {seeded:.1f} s (not in the figures): "
              + ", ".join(f"{n:,} {m}" for m, n in counts.items())
              + f"; {refunds:,} credit notes, {eur:,} in EUR; "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(mix.items())))
        if computed:
            checks.append(f"Odoo {version}: {spot_check(fake, computed, args.spot_check, random.Random(args.seed))}")
            prefill(fake, computed)
        del specs, computed
        # The fake's ~500,000 rows live in this process (a real Odoo's would not): kept out of the cyclic GC, whose
        # occasional full passes over them would otherwise land on whichever side allocates at the time.
        gc.collect()
        gc.freeze()
        fake.start()
        timer = FakeTimer(fake)
        try:
            version_before = fake.store.version
            transport = "JSON-2" if version >= 19 else "JSON-RPC"
            for name, answer in ANSWERS.items():
                result = bench_answer(fake, timer, answer, args.repeat)
                figures.setdefault(name, {})[version] = result["value"]
                walls = [w["wall"] for w in result["warm"]]
                fakes = [w["fake"] for w in result["warm"]]
                rts = sorted({w["rts"] for w in result["warm"]})
                med = statistics.median(walls)
                med_fake = statistics.median(fakes)
                ok = med < BUDGET_SECONDS and max(rts) <= BUDGET_ROUND_TRIPS
                if not ok:
                    over.append(f"Odoo {version} {name}")
                cold_rts[f"Odoo {version} {name}"] = result["cold"]["rts"]
                rows.append(f"| {version} | {transport} | {name} | {result['cold']['wall']:.3f} | "
                            f"{result['cold']['rts']} | {min(walls):.3f} | {med:.3f} | {'/'.join(map(str, rts))} | "
                            f"{med_fake:.3f} ({100 * med_fake / med:.0f}%) | {med - med_fake:.3f} | "
                            f"{result['warm'][-1]['bytes'] / 1e6:.2f} MB | {'ok' if ok else 'OVER'} |")
                unlogged = result["cold"]["rts"] > sum(result["cold"]["calls"].values())  # GET /web/version
                checks.append(f"Odoo {version} {name}: cold calls: {fmt_calls(result['cold']['calls'])}"
                              f"{' + GET /web/version' if unlogged else ''}"
                              f"; warm: {fmt_calls(result['warm'][-1]['calls'])}; {summary(result['value'], name)}")
                if args.profile:
                    profiles.append(f"Odoo {version} {name}, one warm call:\n"
                                    + profile_answer(fake, timer, answer, args.top))
            if not args.no_mcp:
                mcp = bench_mcp(fake, timer, args.repeat)
                mcp_rows.append(f"| {version} | (start-up: probe + Dashboard figures) | {mcp['_startup']['wall']:.2f} "
                                f"| | | | | | |")
                for route, result in ((r, v) for r, v in mcp.items() if not r.startswith("_")):
                    walls = [w["wall"] for w in result["warm"]]
                    fakes = [w["fake"] for w in result["warm"]]
                    rts = sorted({w["rts"] for w in result["warm"]})
                    med = statistics.median(walls)
                    mcp_rows.append(f"| {version} | GET {route} | {result['cold']['wall']:.3f} | "
                                    f"{result['cold']['rts']} | {min(walls):.3f} | {med:.3f} | "
                                    f"{'/'.join(map(str, rts))} | {statistics.median(fakes):.3f} | "
                                    f"{result['warm'][-1]['value'] / 1e6:.2f} MB |")
            if fake.store.version != version_before:
                checks.append(f"Odoo {version}: WARNING the fake's store changed during the run (memo reset)")
        finally:
            fake.stop()
            gc.unfreeze()

    print("\n| Odoo | transport | answer | cold s | cold RTs | best s | median s | RTs | fake's work s (share) "
          "| rest s | from Odoo | budget |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    if mcp_rows:
        print("\nThrough the Odoo MCP server (REST, one warm-up GET then the timed ones):")
        print("| Odoo | route | cold s | cold RTs | best s | median s | RTs | fake's work s | answer size |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(mcp_rows))
    print("\nRTs: HTTP requests that reached the fake per answer. Cold: a fresh connector (version discovery, "
          "login, the scope's company lookups, cached afterwards). Fake's work: its handler under its lock "
          "(domain evaluation, grouping, reading, encoding the answer); rest: connector, HTTP, JSON decoding, "
          "accounting.py.")
    for line in checks:
        print(f"- {line}")
    if len(versions) > 1:
        same = all(len({json.dumps(v, sort_keys=True) for v in by_version.values()}) == 1
                   for by_version in figures.values())
        print(f"- Figures identical on {', '.join(map(str, versions))}: {'yes' if same else 'NO'}")
    for block in profiles:
        print(f"\n{block}")
    verdict = "ok" if not over else "OVER (" + "; ".join(over) + ")"
    cold_over = [f"{k} {v}" for k, v in cold_rts.items() if v > BUDGET_ROUND_TRIPS]
    if cold_over:
        print(f"\nCold first calls (a fresh connector; discovery, login and the scope are cached after it) over "
              f"{BUDGET_ROUND_TRIPS} round trips: {'; '.join(cold_over)}")
    print(f"\nBudget (issue 8): under {BUDGET_SECONDS:g} s (median) and at most {BUDGET_ROUND_TRIPS} round trips per "
          f"warm answer: {verdict}")
    return 0 if not over else 1


if __name__ == "__main__":
    sys.exit(main())
