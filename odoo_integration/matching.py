"""Incoming bank payments matched to open invoices: proposals for the owner to approve, never guesses.

Evidence, strongest first: the invoice's number or ref in the bank text (tolerant of case, spaces, slashes and
dots: "INV/2026/00012" = "inv 2026 00012" = "INV2026-00012"), the amount equal to the residual, the partner's
name in the counterparty or description ("BLUE SKY LTD" = "Blue Sky Ltd."). Tiers:

    reference + exact amount     1.0     partner + exact amount     0.8
    reference + partial payment  0.85    exact amount alone         0.6
    reference + overpayment      0.7     partner + partial payment  0.5

A partner match with an amount that fits no residual is refused. A transaction whose best tier is shared by two
invoices, or an invoice that two transactions claim on amount alone, goes to ``ambiguous`` for the owner. Each
transaction pays at most one invoice and no invoice receives more than its residual.

Speed: invoices are indexed by reference tokens, by partner name and by amount, so each transaction costs a few
set and dict lookups however many invoices are open (100,000 transactions against 5,000 invoices in well under
a second), never a loop over every invoice.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from odoo_integration.bank_files import BankTransaction, transaction_keys, without_gc

_TOKEN = re.compile(r"[^\W\d_]+|\d+")     # runs of letters or of digits: "INV2026-00012" → inv, 2026, 00012
_JOIN = str.maketrans("", "", ".'’")      # "B.V." → "bv", "O'Neil" → "oneil", "INV.2026.00012" → inv202600012
LEGAL_FORMS = frozenset({
    "ltd", "limited", "llc", "inc", "incorporated", "corp", "corporation", "co", "company", "plc", "llp", "lp",
    "gmbh", "ag", "kg", "ug", "ohg", "ev", "bv", "nv", "vof", "sa", "sas", "sarl", "srl", "spa", "sl", "oy", "ab",
    "as", "aps", "pty", "pvt"})
MIN_REFERENCE = 4      # "A1" in a bank text proves nothing
MIN_DIGITS_ALONE = 6   # "2026/00012" without its "INV" still names one invoice; "12" does not

REF_EXACT, REF_PARTIAL, REF_OVER, PARTNER_EXACT, AMOUNT_ONLY, PARTNER_PARTIAL = 1.0, 0.85, 0.7, 0.8, 0.6, 0.5


@dataclass
class PaymentMatch:
    transaction_key: str
    invoice_id: Any
    invoice_number: str
    amount: Decimal            # what this payment would settle of the invoice
    score: float
    reasons: list[str]


@dataclass
class Ambiguous:
    transaction_key: str
    invoice_numbers: list[str]
    reason: str


@dataclass
class MatchResult:
    proposals: list[PaymentMatch] = field(default_factory=list)
    ambiguous: list[Ambiguous] = field(default_factory=list)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold().translate(_JOIN))


def partner_tokens(name: str) -> tuple[str, ...]:
    """The partner's name as tokens, without its legal form: "Blue Sky Ltd." → ("blue", "sky")."""
    found = tokens(name)
    while found and found[-1] in LEGAL_FORMS:
        found.pop()
    while found and found[0] == "the":
        found.pop(0)
    return tuple(found)


def _has_run(words: Sequence[str], compact: str) -> bool:
    """Whether consecutive tokens of ``words`` spell exactly ``compact``, from token boundary to token boundary
    (so INV/2026/00012 is not found in INV/2026/000123)."""
    for i, word in enumerate(words):
        if not compact.startswith(word):
            continue
        spelled, j = word, i
        while len(spelled) < len(compact) and j + 1 < len(words):
            j += 1
            spelled += words[j]
            if not compact.startswith(spelled):
                break
        if spelled == compact:
            return True
    return False


def _pairs(words: Sequence[str]) -> list[tuple[str, ...]]:
    return list(zip(words, words[1:]))


def _money(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):   # Odoo's floats: 1234.5600000000002 is 1234.56
        return round(Decimal(repr(value)), 2)
    return Decimal(str(value))


@dataclass
class _Invoice:
    id: Any
    number: str
    residual: Decimal
    currency: str
    partner: tuple[str, ...]
    spellings: list[tuple[str, str]]   # (compact, shown) for the number and the ref


class InvoiceIndex:
    """Open invoices indexed by reference token, partner and residual amount."""

    def __init__(self, invoices: Iterable[Mapping[str, Any]]) -> None:
        self.invoices: list[_Invoice] = []
        self.by_token: dict[str, list[int]] = defaultdict(list)
        self.by_amount: dict[Decimal, list[int]] = defaultdict(list)
        self.by_partner: dict[tuple[str, ...], list[int]] = defaultdict(list)
        # A partner is looked up by one token pair of its name ("blue sky"), the rarest among all partners' names,
        # or by its one token: a few candidates per transaction even when hundreds of names share a word.
        self.partners_by_key: dict[str | tuple[str, str], list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        for raw in invoices:
            residual = _money(raw.get("amount_residual") or 0)
            if residual <= 0:
                continue
            number = str(raw.get("number") or "")
            partner = partner_tokens(str(raw.get("partner") or ""))
            invoice = _Invoice(raw.get("id"), number, residual, str(raw.get("currency") or "").upper(), partner, [])
            at = len(self.invoices)
            self.invoices.append(invoice)
            for shown in {number, str(raw.get("ref") or "")}:
                self._index_reference(at, invoice, shown)
            self.by_amount[residual].append(at)
            if len("".join(partner)) >= MIN_REFERENCE:
                self.by_partner[partner].append(at)
        pairs = Counter(pair for partner in self.by_partner for pair in _pairs(partner))
        for partner in self.by_partner:
            key = min(_pairs(partner), key=pairs.__getitem__) if len(partner) > 1 else partner[0]
            self.partners_by_key[key].append((partner, f" {' '.join(partner)} "))
        # frozensets, so that a transaction's tokens meet the index in one C set intersection
        self.token_keys = frozenset(self.by_token)
        self.partner_keys = frozenset(self.partners_by_key)
        self.pair_firsts = frozenset(key[0] for key in self.partners_by_key if isinstance(key, tuple))

    def _index_reference(self, at: int, invoice: _Invoice, shown: str) -> None:
        words = tokens(shown)
        compact = "".join(words)
        if len(compact) < MIN_REFERENCE:
            return
        invoice.spellings.append((compact, shown))
        # A bank text is found by its tokens: the last token of the reference ("00012"), and the digits at its
        # end written together ("202600012", as in "INV202600012"); the run check then confirms the whole.
        self.by_token[words[-1]].append(at)
        digits = []
        for word in reversed(words):
            if not word.isdigit():
                break
            digits.insert(0, word)
        tail = "".join(digits)
        if len(digits) > 1:
            self.by_token[tail].append(at)
        if len(tail) >= MIN_DIGITS_ALONE and tail != compact:
            invoice.spellings.append((tail, shown))


def _texts_tokens(transactions: Sequence[BankTransaction]) -> list[list[str]]:
    """The tokens of each transaction's counterparty, description and reference: casefold and translate run once
    over all the text, the regex once per transaction, from C."""
    texts = list(map(" ".join, map(attrgetter("counterparty", "description", "reference"), transactions)))
    lines = "\n".join(texts).casefold().translate(_JOIN).split("\n")
    if len(lines) != len(texts):   # a newline inside a text (the parsers never leave one): one at a time
        lines = [text.casefold().translate(_JOIN) for text in texts]
    return list(map(_TOKEN.findall, lines))


def _evidence(index: InvoiceIndex, tx: BankTransaction, words: list[str]) -> dict[int, list]:
    """Candidate invoices of one transaction: {invoice: [reference shown or None, partner matched]}."""
    present = set(words)
    found: dict[int, list] = {}
    for token in present & index.token_keys:
        for at in index.by_token[token]:
            if at not in found:
                shown = next((s for compact, s in index.invoices[at].spellings if _has_run(words, compact)), None)
                if shown is not None:
                    found[at] = [shown, False]
    keys = present & index.partner_keys
    if present & index.pair_firsts:
        keys |= set(zip(words, words[1:])) & index.partner_keys
    if keys:
        spaced = f" {' '.join(words)} "   # " blue sky " in it: the partner's words, in order, whole
        for key in keys:
            for partner, wanted in index.partners_by_key[key]:
                if wanted in spaced:
                    for at in index.by_partner[partner]:
                        found.setdefault(at, [None, False])[1] = True
    for at in index.by_amount.get(tx.amount, ()):
        found.setdefault(at, [None, False])
    return found


def _tier(tx: BankTransaction, invoice: _Invoice, shown: str | None, partner: bool) -> float:
    if tx.currency and invoice.currency and tx.currency.upper() != invoice.currency:
        return 0.0
    exact, partial = tx.amount == invoice.residual, tx.amount < invoice.residual
    if shown is not None:
        return REF_EXACT if exact else REF_PARTIAL if partial else REF_OVER
    if partner:
        return PARTNER_EXACT if exact else PARTNER_PARTIAL if partial else 0.0
    return AMOUNT_ONLY if exact else 0.0


def _reasons(tx: BankTransaction, invoice: _Invoice, shown: str | None, partner: bool) -> list[str]:
    """Why, in words: only for the winners, as formatting them is most of the cost of scoring."""
    reasons = []
    if shown is not None:
        reasons.append(f"reference {shown} in the bank text")
    if partner:
        reasons.append("partner name in the bank text")
    if tx.amount == invoice.residual:
        reasons.append(f"amount equals the residual {invoice.residual}")
    elif tx.amount < invoice.residual:
        reasons.append(f"partial payment: {tx.amount} of {invoice.residual}")
    else:
        reasons.append(f"pays {tx.amount - invoice.residual} more than the residual {invoice.residual}")
    return reasons


def match_payments(transactions: Iterable[BankTransaction], invoices: Iterable[Mapping[str, Any]] | InvoiceIndex
                   ) -> MatchResult:
    """Proposals for incoming payments (amount > 0) against open invoices (dicts with id, number, partner,
    partner_id, amount_residual, currency, ref, invoice_date, due_date)."""
    with without_gc():
        index = invoices if isinstance(invoices, InvoiceIndex) else InvoiceIndex(invoices)
        found: list[tuple[BankTransaction, float, list[tuple[int, str | None, bool]]]] = []
        incoming = [tx for tx in transactions if tx.amount > 0]
        for tx, words in zip(incoming, _texts_tokens(incoming)):
            evidence = _evidence(index, tx, words)
            if not evidence:
                continue
            tiers = [(_tier(tx, index.invoices[at], shown, partner), at, shown, partner)
                     for at, (shown, partner) in evidence.items()]
            best = max(tiers)[0]
            if best > 0:
                found.append((tx, best, [(at, shown, partner) for tier, at, shown, partner in tiers if tier == best]))
        result, claims, seen = MatchResult(), [], set()
        for (tx, best, top), key in zip(found, transaction_keys([tx for tx, _, _ in found])):
            if key in seen:
                continue   # the same transaction from two overlapping exports
            seen.add(key)
            if len(top) > 1:
                at, shown, partner = top[0]
                why = "; ".join(_reasons(tx, index.invoices[at], shown, partner))
                result.ambiguous.append(Ambiguous(key, sorted(index.invoices[at].number for at, _, _ in top),
                                                  f"{len(top)} invoices fit equally well ({why})"))
                continue
            at, shown, partner = top[0]
            claims.append(_Claim(best, tx.date, key, tx, at, _reasons(tx, index.invoices[at], shown, partner)))
        _allocate(index, claims, result)
    return result


class _Claim(NamedTuple):
    score: float
    date: date
    key: str
    tx: BankTransaction
    at: int              # the invoice's place in the index
    reasons: list[str]


def _allocate(index: InvoiceIndex, claims: list[_Claim], result: MatchResult) -> None:
    """Strongest claims first (then the earliest payment); an invoice's residual is never exceeded, and one
    invoice claimed by two payments on their amount alone is the owner's call."""
    amount_only = Counter(c.at for c in claims if c.score == AMOUNT_ONLY)
    left = {c.at: index.invoices[c.at].residual for c in claims}
    for claim in sorted(claims, key=lambda c: (-c.score, c.date, c.key)):
        invoice, amount = index.invoices[claim.at], claim.tx.amount
        if claim.score == AMOUNT_ONLY and amount_only[claim.at] > 1:
            result.ambiguous.append(Ambiguous(claim.key, [invoice.number],
                                              f"{amount_only[claim.at]} payments of {amount} could pay it"))
            continue
        remaining = left[claim.at]
        if remaining <= 0 or (remaining < amount and claim.score not in (REF_EXACT, REF_PARTIAL, REF_OVER)):
            continue   # settled by a stronger claim; without a reference, a smaller rest is no match
        reasons = claim.reasons
        if remaining < amount and claim.score != REF_OVER:
            reasons = [*reasons, f"only {remaining} was left to pay"]
        left[claim.at] = remaining - min(amount, remaining)
        result.proposals.append(PaymentMatch(claim.key, invoice.id, invoice.number, min(amount, remaining),
                                             claim.score, reasons))
