"""The Odoo figures, through the Odoo MCP server (never Odoo itself), each with where and when it
was read. A server that is down, or an Odoo it cannot reach, never fails the briefing: the last
figures this briefing read are used, marked stale with their time, or the section says what is
missing. (The server keeps its own cache too: while Odoo is down it answers ``stale`` with ``as_of``.)"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import requests

from core.engine.mcp_client import McpClient
from core.errors import AIEmployeeError, NotConfiguredError
from core.retry import Backoff
from core.state import StateStore, canonical

CACHE_PREFIX = "briefing:odoo:"
PAGE = 500          # the server's largest page
MAX_PAGES = 40      # 20,000 records a range: beyond that the figures say they are partial
# A briefing waits briefly for a restarting server, not the skills' 15 s: it has other sections to write.
BRIEF_BACKOFF = Backoff(base=0.25, factor=2.0, maximum=1.0, attempts=2)


def iso_utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def shown_time(stamp: str | None) -> str:
    """'2026-11-30T07:00:00Z' as '2026-11-30 07:00 UTC', as the owner reads it."""
    if not stamp:
        return "an unknown time"
    return f"{stamp[:10]} {stamp[11:16]} UTC" if len(stamp) >= 16 else stamp


@dataclass
class Fetched:
    """One answer: its data, what it is (for the note's sources), when it was read, and whether it is
    the live figure, an older one (stale) or none at all (missing, with why)."""
    data: Any
    what: str
    as_of: str | None = None
    stale: bool = False
    missing: str | None = None
    note: str | None = None       # why the figures are stale

    @property
    def ok(self) -> bool:
        return self.missing is None

    @property
    def source(self) -> str:
        when = f", as of {shown_time(self.as_of)}" if self.as_of else ""
        return f"{self.what}{when}{' (stale)' if self.stale else ''}"

    def state(self) -> str:
        """'ok', 'stale as of …' or 'missing: …', as a section header says it."""
        if self.missing:
            return f"missing: {self.missing}"
        if self.stale:
            return f"stale as of {shown_time(self.as_of)}" + (f": {self.note}" if self.note else "")
        return "ok"


def _why(err: BaseException) -> str:
    if isinstance(err, NotConfiguredError):
        return "Odoo is not configured (ODOO_URL, ODOO_DB and a key or password in .env)"
    return f"Odoo unreachable ({str(err).splitlines()[0][:160] if str(err) else type(err).__name__})"


class OdooFigures:
    def __init__(self, client: McpClient | None, state: StateStore | None) -> None:
        self.client = client
        self.state = state

    @classmethod
    def for_settings(cls, settings: Any, state: StateStore | None) -> "OdooFigures":
        return cls(McpClient.for_service(settings, "odoo", backoff=BRIEF_BACKOFF, timeout=(2.0, 30.0)), state)

    def outstanding(self, as_of: str) -> Fetched:
        return self._fetch(f"outstanding:{as_of}", "Odoo: account.move, posted customer invoices and credit notes "
                           f"not fully paid, aged to {as_of} (GET /financial/outstanding)",
                           lambda c: c.get("/financial/outstanding", {"as_of": as_of}))

    def monthly_revenue(self, months: int) -> Fetched:
        return self._fetch(f"monthly-revenue:{months}", "Odoo: account.move, posted customer invoices minus credit "
                           "notes by accounting month, untaxed (GET /financial/monthly-revenue)",
                           lambda c: c.get("/financial/monthly-revenue", {"months": months}))

    def customer_moves(self, date_from: str, date_to: str) -> Fetched:
        """Posted customer invoices and credit notes dated ``date_from``..``date_to``, every page."""
        def pages(client: McpClient) -> dict:
            out: dict[str, Any] = {"records": [], "partial": False}
            for kind in ("invoices", "credit_notes"):
                offset = 0
                for _ in range(MAX_PAGES):
                    page = client.get("/financial/records", {"kind": kind, "state": "posted", "date_from": date_from,
                                                             "date_to": date_to, "limit": PAGE, "offset": offset})
                    out["records"] += page["records"]
                    out.setdefault("currency", (page.get("scope") or {}).get("currency"))
                    if page.get("stale"):  # the server answered from its cache: Odoo is down
                        out["stale"] = True
                        stamps = [t for t in (out.get("as_of"), page.get("as_of")) if t]
                        out["as_of"] = min(stamps) if stamps else None
                    else:
                        out.setdefault("as_of", page.get("as_of"))
                    offset += len(page["records"])
                    if not page["records"] or offset >= int(page.get("total") or 0):
                        break
                else:
                    out["partial"] = True
            return out
        return self._fetch(f"records:{date_from}:{date_to}", "Odoo: account.move, posted customer invoices and credit "
                           f"notes with invoice date {date_from}..{date_to} (GET /financial/records)", pages)

    def _fetch(self, key: str, what: str, call: Callable[[McpClient], Any]) -> Fetched:
        cache_key = CACHE_PREFIX + canonical(key)
        if self.client is None:
            return self._cached(cache_key, what, "Odoo unreachable (no Odoo server configured for the briefing)")
        try:
            data = call(self.client)
        except (AIEmployeeError, requests.RequestException, KeyError, TypeError, ValueError) as err:
            return self._cached(cache_key, what, _why(err))
        if not isinstance(data, dict):
            return self._cached(cache_key, what, "Odoo server answered without figures")
        stale = bool(data.get("stale"))
        as_of = data.get("as_of") or iso_utc(time.time())
        if self.state is not None and not stale:
            self.state.cache_put(cache_key, {**data, "as_of": as_of})
        note = "Odoo unreachable; the Odoo server answered with the last figures it read" if stale else None
        return Fetched(data, what, as_of=as_of, stale=stale, note=note)

    def _cached(self, key: str, what: str, why: str) -> Fetched:
        hit = self.state.cache_get(key) if self.state is not None else None
        if hit is None:
            return Fetched(None, what, missing=why)
        value, at = hit
        return Fetched(value, what, as_of=value.get("as_of") or iso_utc(at), stale=True, note=why)
