"""The Odoo calls the suite makes, as plain dicts, on Odoo 17, 18 and 19 alike.

Framework-free on purpose: it knows nothing of HTTP servers or the vault. The transport is chosen once, from
the configuration and the server's version: JSON-2 when an API key is set and the server is 19 or newer, else
JSON-RPC. Reads are retried a little (a transient failure is common and harmless); writes never are, because a
timeout there is an unknown outcome the caller must reconcile (``find_move_by_ref``) - DESIGN §8.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date as Date
from typing import Any, TypeVar

import requests

from core.errors import NotConfiguredError, TransientError, ValidationError
from core.retry import Backoff, retry_call
from odoo_integration import grouping
from odoo_integration.auth import AuthGate
from odoo_integration.config import OdooConfig
from odoo_integration.transport import Json2Transport, JsonRpcTransport, ServerVersion, web_version

T = TypeVar("T")
READ_BACKOFF = Backoff(base=0.5, factor=2.0, maximum=4.0, attempts=3)  # two retries, a few seconds at most
READ_METHODS = frozenset({"search", "search_read", "search_count", "read", "read_group", "formatted_read_group",
                          "fields_get", "name_search", "default_get", "exists", "context_get"})
MOVE_FIELDS = ["name", "ref", "move_type", "state", "payment_state", "partner_id", "invoice_date",
               "invoice_date_due", "amount_untaxed", "amount_total", "amount_residual", "currency_id", "company_id"]
PARTNER_FIELDS = ["name", "email", "is_company", "customer_rank", "parent_id", "commercial_partner_id"]

Transport = JsonRpcTransport | Json2Transport


class OdooConnector:
    """Synchronous Odoo client. Thread-safe. ``clock`` and ``sleep`` are injectable so that tests need no sleeps."""

    def __init__(self, config: OdooConfig, *, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] = time.sleep,
                 backoff: Backoff = READ_BACKOFF, auth_wait: float = 30.0, auth_wait_max: float = 900.0) -> None:
        self.config = config
        self._session = session or requests.Session()
        self._owns_session = session is None
        self._gate = AuthGate(clock, base=auth_wait, maximum=auth_wait_max)
        self._sleep, self._backoff = sleep, backoff
        self._lock = threading.Lock()
        self._version: ServerVersion | None = None
        self._transport: Transport | None = None
        self._company: dict[str, Any] | None = None
        self._companies: list[dict[str, Any]] | None = None

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def is_configured(self) -> bool:
        return self.config.is_configured()

    # -- version, transport, health ------------------------------------------------------------------------
    def server_version(self) -> ServerVersion:
        return self._retrying(lambda: self._discover()[0])

    def server_info(self) -> dict[str, Any]:
        version, transport = self._retrying(self._discover)
        info: dict[str, Any] = {"version": version.version, "major": version.major, "edition": version.edition,
                                "transport": transport.name, "database": self.config.db}
        if transport.uid is not None:
            info["uid"] = transport.uid
        return info

    def probe(self) -> dict[str, Any]:
        """One cheap authenticated call that proves the credentials work; the server_info after it."""
        context = self._read("res.users", "context_get")
        transport = self._discover()[1]
        if transport.uid is None and isinstance(context, dict) and context.get("uid"):
            transport.uid = int(context["uid"])  # JSON-2 never logs in: learn whose key it is
        return self.server_info()

    def auth_retry_in(self) -> float | None:
        """Seconds until the next authentication attempt after a failure; None when credentials are fine."""
        return self._gate.retry_in()

    def _discover(self) -> tuple[ServerVersion, Transport]:
        """The version (once, cached) and the transport it implies. A read: callers retry it."""
        with self._lock:
            if self._version is not None and self._transport is not None:
                return self._version, self._transport
            if not self.config.is_configured():
                raise NotConfiguredError("Odoo is not configured: set ODOO_URL, ODOO_DB and ODOO_API_KEY "
                                         "(or ODOO_USERNAME and ODOO_PASSWORD)")
            jsonrpc = JsonRpcTransport(self.config, self._session, self._gate)
            # With a key, ask the credential-free JSON-2 era route first, so 19+ never needs /jsonrpc.
            version = web_version(self.config, self._session) if self.config.api_key else None
            version = version or jsonrpc.version()
            use_json2 = bool(self.config.api_key) and version.major >= 19
            self._version = version
            self._transport = Json2Transport(self.config, self._session, self._gate) if use_json2 else jsonrpc
            return self._version, self._transport

    def _ready(self) -> Transport:
        transport = self._discover()[1]
        transport.authenticate()
        return transport

    def _retrying(self, fn: Callable[[], T]) -> T:
        return retry_call(fn, backoff=self._backoff, sleep=self._sleep)

    def _uid(self) -> int:
        transport = self._retrying(self._ready)
        if transport.uid is None:  # JSON-2: the key's user, from a call every user may make
            transport.uid = int(self._read("res.users", "context_get")["uid"])
        return transport.uid

    # -- calls ------------------------------------------------------------------------------------------------
    def call(self, model: str, method: str, *, ids: list[int] | None = None, **kwargs: Any) -> Any:
        """Any public method with named arguments (``ids`` for record methods). Known read methods are retried
        on transient failures; anything else counts as a write and is sent once."""
        if method in READ_METHODS:
            return self._read(model, method, ids, **kwargs)
        return self._write(model, method, ids, **kwargs)

    def _read(self, model: str, method: str, ids: list[int] | None = None, **kwargs: Any) -> Any:
        return self._retrying(lambda: self._ready().call(model, method, ids, _given(kwargs)))

    def _write(self, model: str, method: str, ids: list[int] | None = None, **kwargs: Any) -> Any:
        if method.startswith("_"):
            raise ValidationError(f"{method!r} is private in Odoo", field="method")
        transport = self._retrying(self._ready)  # discovery and login are reads: safe to retry
        return transport.call(model, method, ids, _given(kwargs))  # once: a timeout here is an unknown outcome

    # -- typed helpers ------------------------------------------------------------------------------------------
    def search_read(self, model: str, domain: list, fields: list[str], *, order: str | None = None,
                    limit: int | None = None, offset: int = 0, context: dict | None = None) -> list[dict[str, Any]]:
        return self._read(model, "search_read", domain=domain, fields=fields, order=order, limit=limit,
                          offset=offset or None, context=context)

    def search_count(self, model: str, domain: list) -> int:
        return int(self._read(model, "search_count", domain=domain))

    def read(self, model: str, ids: list[int], fields: list[str]) -> list[dict[str, Any]]:
        return self._read(model, "read", list(ids), fields=fields)

    def create(self, model: str, values: dict[str, Any], *, context: dict | None = None) -> int:
        created = self._write(model, "create", vals_list=[values], context=context)
        return int(created[0] if isinstance(created, list) else created)

    def write(self, model: str, ids: list[int], values: dict[str, Any]) -> bool:
        return bool(self._write(model, "write", list(ids), vals=values))

    def action(self, model: str, method: str, ids: list[int], *, context: dict | None = None) -> Any:
        """A button such as ``account.move.action_post``; its return value as Odoo gives it."""
        return self._write(model, method, list(ids), context=context)

    def read_group(self, model: str, domain: list, groupby: list[str], aggregates: list[str], *,
                   order: str | None = None) -> list[dict[str, Any]]:
        """Aggregates computed by Odoo in one call, in grouping.py's shape on every version."""
        wanted = grouping.check(groupby, aggregates)
        terms = grouping.order_terms(order, groupby, wanted)
        if self.server_version().major >= 19:
            rows = self._read(model, "formatted_read_group",
                              **grouping.formatted_read_group_kwargs(domain, groupby, wanted))
            groups = grouping.normalise_formatted(rows, groupby, wanted)
        else:
            rows = self._read(model, "read_group", **grouping.read_group_kwargs(domain, groupby, wanted))
            groups = grouping.normalise_read_group(rows, groupby, wanted)
        return grouping.sort(groups, terms)

    def find_partners(self, *, email: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """Active partners whose email is ``email`` (case-insensitive) or whose name is exactly ``name``;
        customers (customer_rank > 0) first. Several results mean ambiguity: the caller asks, never guesses."""
        leaves = []
        if email and email.strip():
            leaves.append(("email", "=ilike", _like_literal(email.strip())))
        if name and name.strip():
            leaves.append(("name", "=", name.strip()))
        if not leaves:
            raise ValidationError("find_partners needs an email or a name", field="email")
        domain = leaves if len(leaves) == 1 else ["|", *leaves]
        rows = self.search_read("res.partner", domain, PARTNER_FIELDS, order="customer_rank desc, id", limit=20)
        wanted = email.strip().casefold() if email and email.strip() else None
        # =ilike is a pattern match; keep only exact equality, whatever the database collation does
        return [r for r in rows if (wanted and str(r.get("email") or "").strip().casefold() == wanted)
                or (name and r.get("name") == name.strip())]

    def find_move_by_ref(self, ref: str, move_type: str) -> dict[str, Any] | None:
        """The move created with this unique ``ref`` (whatever its state), the oldest if there are several:
        how a create whose outcome was unknown is reconciled."""
        rows = self.search_read("account.move", [("ref", "=", ref), ("move_type", "=", move_type)], MOVE_FIELDS,
                                order="id", limit=1)
        return rows[0] if rows else None

    def register_payment(self, invoice_id: int, amount: float, *, date: str | Date | None = None,
                         journal_id: int | None = None, memo: str | None = None) -> dict[str, Any]:
        """Pay an invoice through the ``account.payment.register`` wizard, as the Register Payment button does.
        Irreversible and never retried here: on OdooConnectionError the payment may exist; a unique ``memo``
        lets ``find_payment_by_memo`` tell."""
        context = {"active_model": "account.move", "active_ids": [invoice_id]}
        values: dict[str, Any] = {"amount": amount}
        if memo:
            values["communication"] = memo
        if date:
            values["payment_date"] = date.isoformat() if isinstance(date, Date) else str(date)
        if journal_id:
            values["journal_id"] = journal_id
        wizard = self.create("account.payment.register", values, context=context)
        result = self._write("account.payment.register", "action_create_payments", [wizard], context=context)
        payment_id = _payment_of(result)
        try:
            [move] = self.read("account.move", [invoice_id], ["payment_state", "amount_residual"])
        except TransientError:
            # The payment is made; failing now would invite a second one. Say the state is unknown instead.
            return {"payment_id": payment_id, "payment_state": None, "amount_residual": None}
        return {"payment_id": payment_id, "payment_state": move["payment_state"],
                "amount_residual": move["amount_residual"]}

    def find_payment_by_memo(self, memo: str) -> dict[str, Any] | None:
        """The payment registered with this unique memo (``memo`` on Odoo 18+, ``ref`` before)."""
        field = "memo" if self.server_version().major >= 18 else "ref"
        rows = self.search_read("account.payment", [(field, "=", memo)], ["amount", "state", "partner_id", "date"],
                                order="id", limit=1)
        return rows[0] if rows else None

    def companies(self) -> list[dict[str, Any]]:
        """The companies the user can see: the scope of every search (Odoo's RPC default is all of them).
        Cached: they do not change while the suite runs."""
        if self._companies is None:
            rows = self.search_read("res.company", [], ["name", "currency_id"])
            self._companies = [_company(r) for r in rows]
        return [dict(c) for c in self._companies]

    def company_currency(self) -> dict[str, Any]:
        """The user's main company and its currency (what ``*_signed`` amounts of that company are in). Cached.
        The company comes from ``companies()`` (one call for both): the main company is always among the user's."""
        if self._company is None:
            [user] = self.read("res.users", [self._uid()], ["company_id"])
            main = m2o_id(user["company_id"])
            company = next((c for c in self.companies() if c["id"] == main), None) or self._read_company(main)
            self._company = {"company_id": company["id"], "company": company["name"],
                             "currency_id": company["currency_id"], "currency": company["currency"]}
        return dict(self._company)

    def _read_company(self, company_id: Any) -> dict[str, Any]:
        """A company outside ``companies()`` (a record rule hiding it, say), read on its own."""
        [row] = self.read("res.company", [company_id], ["name", "currency_id"])
        return _company(row)


def _company(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "currency_id": m2o_id(row["currency_id"]),
            "currency": m2o_name(row["currency_id"])}


def _given(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Named arguments without the unset ones, so Odoo applies its own defaults."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _like_literal(text: str) -> str:
    """``text`` for (=)ilike with its wildcards escaped: an email may contain ``_``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _payment_of(action: Any) -> int | None:
    """The payment id from action_create_payments' window action (res_id, or the domain for several)."""
    if isinstance(action, dict):
        if action.get("res_id"):
            return int(action["res_id"])
        for leaf in action.get("domain") or []:
            if isinstance(leaf, (list, tuple)) and len(leaf) == 3 and leaf[0] == "id" and leaf[2]:
                return int(leaf[2][0])
    return None


def m2o_id(value: Any) -> int | None:
    return int(value[0]) if isinstance(value, (list, tuple)) and value else None


def m2o_name(value: Any) -> str | None:
    return str(value[1]) if isinstance(value, (list, tuple)) and len(value) > 1 else None
