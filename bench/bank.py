"""Bank-file benchmark (issue 8): parse, store and match 100,000 bank transactions.

    .venv/bin/python bench/bank.py [--transactions 100000] [--invoices 5000] [--preset natwest] [--runs 3]

Generates, before any clock runs, one export in a preset's format (two years of a busy business account: card
spending, direct debits, a third of the rows incoming payments, many of them naming an invoice, some paying it
in part) and the open invoices of 1,000 customers. Then times, each on its own:
parse (bytes → transactions), store (into a fresh state store, then the same export again: all duplicates),
read back (what the briefing loads), match (incoming payments against the open invoices). Best of --runs. Budget: parse + match under 2 s, and
parse alone well under 1 s. Exits 1 when over budget.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.state import StateStore  # noqa: E402
from odoo_integration.bank_files import PRESETS, parse_bank_file  # noqa: E402
from odoo_integration.bank_store import store_transactions, transactions_between  # noqa: E402
from odoo_integration.matching import match_payments  # noqa: E402

BUDGET_PARSE_MATCH = 2.0
BUDGET_PARSE = 1.0
MERCHANTS = ["PRET A MANGER", "TESCO STORES", "AMAZON MKTPLACE", "SHELL", "TFL TRAVEL CH", "ADOBE SYSTEMS",
             "SLACK TECHNOLOGIES", "GOOGLE WORKSPACE", "UBER TRIP", "COSTA COFFEE", "STAPLES", "BT GROUP PLC"]
WORDS = ["North", "Blue", "Sky", "Harbour", "Orion", "Green", "Leaf", "Atlas", "Nordic", "Bright", "Cedar", "Delta",
         "Summit", "River", "Stone", "Maple", "Silver", "Oak", "Pioneer", "Union"]
FORMS = ["Ltd", "Limited", "LLP", "PLC", "& Co", ""]


def customers(rnd: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add(" ".join([*rnd.sample(WORDS, 2), rnd.choice(["Consulting", "Trading", "Studio", "Logistics",
                                                               "Foods", "Systems", str(len(names))])]))
    return [f"{n} {rnd.choice(FORMS)}".strip() for n in sorted(names)]


def invoices(rnd: random.Random, count: int, names: list[str], currency: str = "GBP") -> list[dict]:
    return [{"id": i, "number": f"INV/2025/{i:05d}", "partner": rnd.choice(names), "partner_id": i % len(names),
             "amount_residual": float(Decimal(rnd.randint(5_000, 2_500_000)) / 100), "currency": currency,
             "ref": f"PO-{rnd.randint(1000, 99999)}" if rnd.random() < 0.3 else "",
             "invoice_date": "2025-01-01", "due_date": "2025-02-01"} for i in range(1, count + 1)]


def rows(rnd: random.Random, count: int, open_invoices: list[dict]) -> list[tuple[date, str, Decimal]]:
    """(date, description, amount), oldest first. Most incoming payments settled invoices that are closed by
    now; the open ones are paid once each, most of them in full, if at all."""
    start, out = date(2024, 1, 1), []
    unpaid = rnd.sample(open_invoices, len(open_invoices))
    for i in range(count):
        day = start + timedelta(days=i * 730 // count)
        kind = rnd.random()
        if kind < 0.33:   # money in: an invoice named, a customer's name only, or neither
            if unpaid and rnd.random() < 0.2:
                inv = unpaid.pop()
                residual = Decimal(str(inv["amount_residual"]))
            else:
                inv = {**rnd.choice(open_invoices), "number": f"INV/2023/{rnd.randint(1, 99999):05d}"}
                residual = Decimal(rnd.randint(5_000, 2_500_000)) / 100
            amount = residual if rnd.random() < 0.8 else (residual / 2).quantize(Decimal("0.01"))
            how = rnd.random()
            partner = inv["partner"].upper()
            text = (f"{partner} , {inv['number'].replace('/', ' ')} , FP" if how < 0.5 else
                    f"{partner} , PAYMENT" if how < 0.8 else f"BANK GIRO CREDIT REF {rnd.randint(1, 10**9)}")
        elif kind < 0.45:
            amount = -Decimal(rnd.choice(["12.99", "56.98", "8.75", "42.00", "150.00"]))
            text = f"{rnd.choice(MERCHANTS)} , DIRECT DEBIT"
        else:
            amount = -Decimal(rnd.randint(150, 25_000)) / 100
            text = f"4521 {day:%d%b%y} , {rnd.choice(MERCHANTS)} {rnd.randint(1, 400)} , LONDON GB".upper()
        out.append((day, text, amount))
    return out


def export(preset: str, transactions: list[tuple[date, str, Decimal]]) -> bytes:
    """The export as the bank writes it (newest first for NatWest, with its apostrophes and trailing comma)."""
    balance = Decimal("25000.00")
    if preset == "natwest":
        lines = ["Date, Type, Description, Value, Balance, Account Name, Account Number"]
        body = []
        for day, text, amount in transactions:
            balance += amount
            body.append(f"{day:%d/%m/%Y},POS,\"'{text}\",{amount:.2f},{balance:.2f},\"'BLUE PEAK\","
                        f"\"'601234-12345678\",")
        return ("\n".join(lines + body[::-1]) + "\n").encode()
    if preset == "ing_nl":
        lines = ['"Datum";"Naam / Omschrijving";"Rekening";"Tegenrekening";"Code";"Af Bij";"Bedrag (EUR)";'
                 '"Mutatiesoort";"Mededelingen";"Saldo na mutatie";"Tag"']
        for day, text, amount in transactions:
            balance += amount
            way, value, saldo = "Af" if amount < 0 else "Bij", f"{abs(amount):.2f}", f"{balance:.2f}"
            lines.append(f'"{day:%Y%m%d}";"{text[:30]}";"NL69INGB0123456789";"";"OV";"{way}";'
                         f'"{value.replace(".", ",")}";"Overschrijving";"{text}";"{saldo.replace(".", ",")}";""')
        return ("\r\n".join(lines) + "\r\n").encode("cp1252")
    raise ValueError(preset)


def best(runs: int, fn) -> tuple[float, object]:
    times, value = [], None
    for _ in range(runs):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return min(times), value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=5_000)
    parser.add_argument("--preset", default="natwest", choices=["natwest", "ing_nl"], help="the export's format")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; the best is reported")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()

    rnd = random.Random(args.seed)
    currency = next(p.default_currency for p in PRESETS if p.name == args.preset)
    open_invoices = invoices(rnd, args.invoices, customers(rnd, 1_000), currency)
    data = export(args.preset, rows(rnd, args.transactions, open_invoices))

    parse_s, result = best(args.runs, lambda: parse_bank_file(data, f"{args.preset}.csv"))
    transactions = result.transactions
    with tempfile.TemporaryDirectory(prefix="bench-bank-") as tmp:
        stores = []

        def store_fresh() -> tuple[int, int]:
            state = StateStore(Path(tmp) / f"state{len(stores)}.db")
            stores.append(state)
            return store_transactions(state, transactions)

        store_s, counts = best(args.runs, store_fresh)
        again_s, again = best(args.runs, lambda: store_transactions(stores[-1], transactions))
        read_s, read = best(args.runs, lambda: transactions_between(stores[-1], date(2000, 1, 1), date(2100, 1, 1)))
        for state in stores:
            state.close()
    match_s, matched = best(args.runs, lambda: match_payments(transactions, open_invoices))

    incoming = sum(1 for t in transactions if t.amount > 0)
    print(f"Bank files: {len(transactions):,} transactions ({args.preset}, {len(data) / 1e6:.1f} MB, "
          f"{incoming:,} incoming) against {len(open_invoices):,} open invoices; {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, best of {args.runs}")
    print("| step | seconds | result |\n|---|---:|---|")
    print(f"| parse | {parse_s:.3f} | {len(transactions):,} transactions, {result.skipped} skipped |")
    print(f"| store (fresh state store) | {store_s:.3f} | {len(counts[0]):,} new, {counts[1]:,} duplicate |")
    print(f"| store the same export again | {again_s:.3f} | {len(again[0]):,} new, {again[1]:,} duplicate |")
    print(f"| read back (transactions_between, for the briefing) | {read_s:.3f} | {len(read):,} transactions |")
    print(f"| match | {match_s:.3f} | {len(matched.proposals):,} proposals, {len(matched.ambiguous):,} ambiguous |")
    print(f"| parse + match | {parse_s + match_s:.3f} | budget {BUDGET_PARSE_MATCH:g} s |")
    print(f"| total (parse + store + match) | {parse_s + store_s + match_s:.3f} | |")
    ok = parse_s + match_s < BUDGET_PARSE_MATCH and parse_s < BUDGET_PARSE and len(counts[0]) == len(transactions) \
        and not again[0]
    print(f"\nParse + match {parse_s + match_s:.2f} s (budget < {BUDGET_PARSE_MATCH:g} s), parse {parse_s:.2f} s "
          f"(budget < {BUDGET_PARSE:g} s): {'ok' if ok else 'OVER BUDGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
