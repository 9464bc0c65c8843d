"""The HTTP side of the fake: Odoo's three external APIs plus the session routes, and the test controls.

Transports (all on one aiohttp app, 127.0.0.1, port 0):

* ``POST /jsonrpc`` - JSON-RPC 2.0 ``call`` with ``params = {service, method, args}`` (services common, object,
  db), always HTTP 200, errors in ``error`` as ``JsonRPCDispatcher.handle_error`` builds them.
* ``POST /xmlrpc/2/<service>`` (integer fault codes) and ``POST /xmlrpc/<service>`` (legacy string faults),
  marshalled with ``allow_none=False`` as odoo/addons/base/controllers/rpc.py does.
* ``POST /json/2/<model>/<method>`` (Odoo 19 only): bearer API key, ``X-Odoo-Database``, named arguments plus
  ``ids``/``context``, bare JSON results, real HTTP statuses with Odoo's JSON error body.
* ``GET /web/version`` (19), ``POST /web/webclient/version_info``, ``POST /web/session/authenticate`` and
  ``POST /web/dataset/call_kw`` (session cookie; "Odoo Session Expired", code 100, without one).
"""
from __future__ import annotations

import inspect
import json
import re
import secrets
import threading
import xmlrpc.client
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable

from aiohttp import web

from tests.fakes import threaded
from tests.fakes.threaded import ThreadedServer

from . import models  # noqa: F401  (registers the models)
from .errors import (
    AccessDenied, AccessError, BadRequest, NotFound, OperationalError, SessionExpiredException,
    Unauthorized, UnprocessableEntity, UnsupportedMediaType, UserError, json2_error, jsonrpc_error,
    xmlrpc_fault_int, xmlrpc_fault_string,
)
from .models import seed_base
from .orm import Env, Store, call_kw, downgrade, get_public_method

READONLY_METHODS = {"search", "search_read", "search_count", "read", "fields_get", "name_search",
                    "read_group", "formatted_read_group", "default_get", "exists", "context_get"}
FAKE = web.AppKey("fake_odoo", "FakeOdoo")
WERKZEUG_404 = ("<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
                "<p>The requested URL was not found on the server. If you entered the URL manually please "
                "check your spelling and try again.</p>\n")


@dataclass
class User:
    uid: int
    login: str
    password: str
    api_keys: list[str] = field(default_factory=list)
    read_only: bool = False
    active: bool = True
    tz: str | bool = "Europe/Brussels"


@dataclass
class Call:
    """One RPC round trip as the fake received it."""
    transport: str  # jsonrpc | xmlrpc | json2 | web
    service: str  # common | object | db | json2 | web
    method: str | None
    model: str | None = None
    args: Any = None
    kwargs: Any = None
    uid: int | None = None
    error: str | None = None  # dotted name of the exception answered, if any
    status: int = 200


class Hold(threaded.Hold):
    """A barrier on the next ``times`` calls of ``model.method`` (``common``/``db`` + method for those services),
    of any transport or only ``transport``: ``arrived`` is set when one is parked; ``release()`` lets it go.

    phase='before': the call waits before it runs (the record does not exist yet);
    phase='after': it runs and commits, then its answer waits (the client never learns the outcome if it dies).
    ``completed`` is set once a held call has been processed, whatever happened to its client.
    """

    def __init__(self, model: str, method: str, phase: str, times: int, transport: str | None) -> None:
        if phase not in ("before", "after"):
            raise ValueError("phase is 'before' or 'after'")
        super().__init__(f"{model}.{method}", after=phase == "after", times=times)
        self.model, self.method, self.transport = model, method, transport
        self.completed = threading.Event()
        self.calls: list[Call] = []  # the calls held, as the fake received them

    @property
    def phase(self) -> str:
        return "after" if self.after else "before"

    def matches(self, call: Call) -> bool:
        return (call.model or call.service) == self.model and call.method == self.method \
            and (self.transport is None or self.transport == call.transport)


class FakeOdoo(ThreadedServer):
    """An Odoo 17, 18 or 19 server with one database, the generic chart of accounts and an admin user."""

    name = "fake-odoo"

    def __init__(self, version: int | str = 17, *, db: str = "odoo", login: str = "admin",
                 password: str = "admin", currency: str = "USD", accountant: bool = False,
                 edition: str = "community", today: date | None = None) -> None:
        self.version = int(str(version).split(".")[0])
        if self.version not in (17, 18, 19):
            raise ValueError("the fake speaks Odoo 17, 18 and 19")
        self.db = db
        self.edition = edition
        self.accountant = accountant  # account_accountant installed: 'in_payment' until bank matching
        self.today = today or date.today()
        self.lock = threading.RLock()
        self.store = Store()
        self.api_key = secrets.token_hex(20)  # Odoo's keys: 160 random bits, hex
        self.users_by_uid: dict[int, User] = {
            1: User(1, "__system__", secrets.token_hex(8), active=False),
            2: User(2, login, password, [self.api_key]),
        }
        self.calls: list[Call] = []
        self.requests: list[tuple[str, str]] = []
        self.sessions: dict[str, int] = {}
        self._down: str | None = None
        seed_base(Env(self, 2), currency)
        super().__init__()

    # --- addresses -----------------------------------------------------------------------------------------

    @property
    def jsonrpc_url(self) -> str:
        return f"{self.url}/jsonrpc"

    def xmlrpc_url(self, service: str) -> str:
        return f"{self.url}/xmlrpc/2/{service}"

    def json2_url(self, model: str, method: str) -> str:
        return f"{self.url}/json/2/{model}/{method}"

    @property
    def version_info(self) -> list:
        return [self.version, 0, 0, "final", 0, "e" if self.edition == "enterprise" else ""]

    @property
    def server_version(self) -> str:
        return f"{self.version}.0" + ("+e" if self.edition == "enterprise" else "")

    # --- test controls ---------------------------------------------------------------------------------------

    def env(self, uid: int = 2, context: Mapping | None = None) -> Env:
        return Env(self, uid, context)

    def _admin(self, fn: Callable[[Env], Any]) -> Any:
        with self.lock:
            snap = self.store.snapshot()
            try:
                return fn(self.env())
            except BaseException:
                self.store.restore(snap)
                raise

    def add_partner(self, name: str, *, email: str | None = None, is_company: bool = False,
                    customer_rank: int = 0, supplier_rank: int = 0, **vals: Any) -> int:
        return self._admin(lambda env: env["res.partner"].create({
            "name": name, "email": email or False, "is_company": is_company, "customer_rank": customer_rank,
            "supplier_rank": supplier_rank, **vals}).id)

    def add_currency(self, code: str, rate: float, *, symbol: str | None = None) -> int:
        def work(env: Env) -> int:
            cur = env["res.currency"]
            rid = next((r for r, row in cur._table.items() if row["name"] == code), None)
            if rid is None:
                rid = cur._create_one({"name": code, "symbol": symbol or code})
            cur._table[rid].update(active=True, _rate=float(rate))
            env.store.touch()
            return rid
        return self._admin(work)

    def currency_id(self, code: str) -> int:
        with self.lock:
            return next(r for r, row in self.store.tables["res.currency"].items() if row["name"] == code)

    def add_tax(self, amount: float, *, type_tax_use: str = "sale", name: str | None = None,
                price_include: bool = False) -> int:
        return self._admin(lambda env: env["account.tax"].create({
            "name": name or f"{amount:g}%", "amount": amount, "type_tax_use": type_tax_use,
            "price_include": price_include}).id)

    def add_invoice(self, partner: int | str, lines: Any = None, *, amount: float | None = None,
                    move_type: str = "out_invoice", state: str = "posted", payment_state: str = "not_paid",
                    amount_paid: float | None = None, currency: str | None = None,
                    invoice_date: str | date | None = None, invoice_date_due: str | date | None = None,
                    ref: str | None = None, payment_reference: str | None = None, taxes: Any = (),
                    payment_date: str | date | None = None, matched: bool | None = None) -> int:
        """Seed an invoice (or bill, credit note) the way a user would make it, through the same ORM.

        ``lines``: ``(label, quantity, price_unit)`` or ``(label, quantity, price_unit, [tax ids])`` tuples or
        dicts of account.move.line values; or ``amount=`` for one line. ``payment_state``: not_paid, partial
        (``amount_paid`` or half), paid, in_payment (payment not yet matched with the bank), reversed (a posted
        credit note reconciled with it).
        """
        if payment_state != "not_paid" and state != "posted":
            raise ValueError("only a posted invoice can be paid")

        def work(env: Env) -> int:
            partner_id = partner if isinstance(partner, int) else (
                env["res.partner"]._search([("name", "=", partner)], limit=1) or
                [env["res.partner"].create({"name": partner, "is_company": True}).id])[0]
            items = lines if lines is not None else [("Services", 1, amount if amount is not None else 100.0)]
            commands = []
            for item in items:
                if isinstance(item, Mapping):
                    vals = dict(item)
                else:
                    label, qty, price, *rest = item
                    vals = {"name": label, "quantity": qty, "price_unit": price}
                    if rest:
                        vals["tax_ids"] = [(6, 0, list(rest[0]))]
                if taxes and "tax_ids" not in vals:
                    vals["tax_ids"] = [(6, 0, list(taxes))]
                commands.append((0, 0, vals))
            vals = {"move_type": move_type, "partner_id": partner_id, "invoice_line_ids": commands,
                    "invoice_date": str(invoice_date or self.today)}
            if invoice_date_due:
                vals["invoice_date_due"] = str(invoice_date_due)
            if ref:
                vals["ref"] = ref
            if payment_reference:
                vals["payment_reference"] = payment_reference
            if currency:
                vals["currency_id"] = self.currency_id(currency)
            moves = env["account.move"]
            mid = moves.create(vals).id
            if state in ("posted", "cancel"):
                moves.browse(mid).action_post()
            if state == "cancel":
                moves.browse(mid).button_cancel()
            if payment_state == "reversed":
                refund_type = {"out_invoice": "out_refund", "in_invoice": "in_refund"}[move_type]
                refund = moves.create({**vals, "move_type": refund_type, "reversed_entry_id": mid,
                                       "ref": f"Reversal of: {moves._row(mid)['name']}"}).id
                moves.browse(refund).action_post()
                inv_line = next(l for l in moves._get(mid, "line_ids")
                                if env["account.move.line"]._row(l)["display_type"] == "payment_term")
                ref_line = next(l for l in moves._get(refund, "line_ids")
                                if env["account.move.line"]._row(l)["display_type"] == "payment_term")
                debit, credit = (inv_line, ref_line) if move_type == "out_invoice" else (ref_line, inv_line)
                models.reconcile(env, debit, credit)
            elif payment_state in ("paid", "partial", "in_payment"):
                total = moves._amount(mid, "amount_residual")
                pay = total if payment_state != "partial" else (amount_paid or round(total / 2, 2))
                pid = self._register(env, mid, pay, payment_date)
                if matched or (matched is None and payment_state == "paid"):
                    self._match(env, pid)
                if payment_state == "in_payment" and not self.accountant:
                    moves._row(mid)["_payment_state"] = "in_payment"  # seed-only: community never shows it
            elif payment_state != "not_paid":
                raise ValueError(f"unknown payment_state {payment_state!r}")
            env.store.touch()
            return mid
        return self._admin(work)

    def add_bill(self, partner: int | str, lines: Any = None, **kw: Any) -> int:
        return self.add_invoice(partner, lines, move_type=kw.pop("move_type", "in_invoice"), **kw)

    def _register(self, env: Env, move_id: int, amount: float, when: Any) -> int:
        ctx = {"active_model": "account.move", "active_ids": [move_id], "dont_redirect_to_payments": True}
        wizard = env["account.payment.register"].with_context(ctx)
        vals: dict[str, Any] = {"amount": amount}
        if when:
            vals["payment_date"] = str(when)
        wid = wizard.create(vals).id
        before = set(env.store.tables.get("account.payment", {}))
        wizard.browse(wid).action_create_payments()
        return max(set(env.store.tables["account.payment"]) - before)

    def register_payment(self, move_id: int, amount: float | None = None, *, date: Any = None) -> int:
        """Pay an invoice through the payment register wizard, as a user would; returns the payment id."""
        def work(env: Env) -> int:
            due = env["account.move"]._amount(move_id, "amount_residual")
            return self._register(env, move_id, due if amount is None else amount, date)
        return self._admin(work)

    def _match(self, env: Env, payment_id: int) -> None:
        row = env["account.payment"]._row(payment_id)
        row["is_matched"] = True
        if self.version >= 18 and row["state"] == "in_process":
            row["state"] = "paid"
        env.store.touch()

    def match_payment(self, payment_id: int) -> None:
        """The payment was matched with a bank statement line ('in_payment' invoices become 'paid')."""
        self._admin(lambda env: self._match(env, payment_id))

    def add_user(self, login: str, password: str, *, name: str | None = None, read_only: bool = False) -> int:
        def work(env: Env) -> int:
            partner = env["res.partner"].create({"name": name or login}).id
            uid = env["res.users"].create({"name": name or login, "login": login, "partner_id": partner,
                                           "company_id": 1}).id
            self.users_by_uid[uid] = User(uid, login, password, read_only=read_only)
            return uid
        return self._admin(work)

    def user(self, login: str = "admin") -> User:
        return next(u for u in self.users_by_uid.values() if u.login == login)

    def set_password(self, password: str, login: str = "admin") -> None:
        with self.lock:
            self.user(login).password = password

    def new_api_key(self, login: str = "admin") -> str:
        key = secrets.token_hex(20)
        with self.lock:
            self.user(login).api_keys.append(key)
        return key

    def revoke_api_key(self, key: str | None = None) -> None:
        """Revoke one key (by default the admin's initial ``api_key``)."""
        key = key or self.api_key
        with self.lock:
            for user in self.users_by_uid.values():
                if key in user.api_keys:
                    user.api_keys.remove(key)

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def down(self, mode: str = "503") -> None:
        """Stop answering like Odoo: '502'/'503' as a reverse proxy in front of a dead Odoo would, or 'close'
        to drop every connection without an answer."""
        if mode not in ("502", "503", "close"):
            raise ValueError("mode is '502', '503' or 'close'")
        self._down = mode

    def up(self) -> None:
        self._down = None

    def hold(self, model: str, method: str, *, phase: str = "before", times: int = 1,
             transport: str | None = None) -> Hold:
        """Park the next ``times`` calls of ``model.method`` (or ``common``/``db`` + method) until released."""
        return self._add_hold(Hold(model, method, phase, times, transport))

    def round_trips(self, method: str | None = None, model: str | None = None,
                    transport: str | None = None) -> int:
        """How many RPC calls arrived, optionally only those of one method/model/transport."""
        with self.lock:
            return sum(1 for c in self.calls if (method is None or c.method == method)
                       and (model is None or (c.model or c.service) == model)
                       and (transport is None or c.transport == transport))

    def call_counts(self) -> Counter:
        with self.lock:
            return Counter(f"{c.model or c.service}.{c.method}" for c in self.calls)

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()
            self.requests.clear()

    def read(self, model: str, ids: Any, fields: list[str] | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return self.env()[model].browse(ids).read(fields)

    def search_read(self, model: str, domain: list | None = None, fields: list[str] | None = None,
                    **kw: Any) -> list[dict[str, Any]]:
        with self.lock:
            return self.env()[model].search_read(domain or [], fields, **kw)

    # --- RPC services (odoo/service/common.py, model.py, db.py) ------------------------------------------------

    def _check_db(self, db: Any) -> None:
        if db != self.db:
            raise OperationalError(f'connection to server at "localhost" (127.0.0.1), port 5432 failed: FATAL:  '
                                   f'database "{db}" does not exist\n')

    def _password_user(self, login: str, password: str) -> User | None:
        for user in self.users_by_uid.values():
            if user.active and user.login == login and password and (
                    password == user.password or password in user.api_keys):
                return user
        return None

    def _exp_version(self) -> dict[str, Any]:
        return {"server_version": self.server_version, "server_version_info": self.version_info,
                "server_serie": f"{self.version}.0", "protocol_version": 1}

    def _exp_authenticate(self, db, login, password, user_agent_env):
        self._check_db(db)
        user = self._password_user(login, password)
        return user.uid if user else False

    def _exp_login(self, db, login, password):
        return self._exp_authenticate(db, login, password, None)

    def _exp_about(self, extended=False):
        info = "See http://openerp.com"
        return [info, self.server_version] if extended else info

    def _common(self, method: str, params: Any) -> Any:
        fn = {"version": self._exp_version, "authenticate": self._exp_authenticate, "login": self._exp_login,
              "about": self._exp_about}.get(method)
        if fn is None:
            raise Exception(f"Method not found: {method}")
        return fn(*params)

    def _db_service(self, method: str, params: Any) -> Any:
        simple = {"list": lambda: [self.db], "db_exist": lambda name: name == self.db,
                  "server_version": lambda: self.server_version, "list_lang": lambda: [["en_US", "English (US)"]]}
        if method in simple:
            return simple[method](*params)
        if method in ("create_database", "duplicate_database", "drop", "dump", "restore", "rename",
                      "change_admin_password", "migrate_databases", "list_countries"):
            raise AccessDenied()
        raise KeyError(f"Method not found: {method}")

    def _security_check(self, db: Any, uid: int, password: Any) -> None:
        self._check_db(db)
        user = self.users_by_uid.get(uid)
        if user is None or not user.active or not password or (
                password != user.password and password not in user.api_keys):
            raise AccessDenied()

    def _transaction(self, method: str | None, fn: Callable[[], Any]) -> Any:
        if method in READONLY_METHODS:
            return fn()
        snap = self.store.snapshot()
        try:
            return fn()
        except BaseException:
            self.store.restore(snap)
            raise

    def _execute(self, uid: int, obj: str, method: str, *args: Any, **kw: Any) -> Any:
        env = self.env(uid)
        if self.version < 18 and (method.startswith("_") or method == "init"):
            # 17: service/model.py execute() calls check_method_name before looking the model up
            raise AccessError(f"Private methods (such as {method}) cannot be called remotely.")
        model = env.get(obj)
        if model is None:
            raise UserError(f"Object {obj} doesn't exist")
        return self._transaction(method, lambda: call_kw(model, method, args, kw))

    def _object(self, method: str, params: Any) -> Any:
        db, uid, passwd = params[0], int(params[1]), params[2]
        self._security_check(db, uid, passwd)
        if method == "execute":
            return self._execute(uid, *params[3:])
        if method == "execute_kw":
            return self._execute_kw(uid, *params[3:])
        raise NameError(f"Method not available {method}")

    def _execute_kw(self, uid: int, obj: str, method: str, args: Any, kw: Any = None) -> Any:
        return self._execute(uid, obj, method, *args, **(kw or {}))

    def dispatch_rpc(self, service: str, method: str, params: Any) -> Any:
        dispatchers = {"common": self._common, "db": self._db_service, "object": self._object}
        return dispatchers[service](method, params)

    @staticmethod
    def _describe(service: Any, method: Any, args: Any) -> tuple[str | None, str | None, Any, Any]:
        """(model, method, args, kwargs) of a call, for the call log and the holds."""
        if service == "object" and isinstance(args, (list, tuple)) and len(args) >= 5:
            if method == "execute_kw":
                return args[3], args[4], args[5] if len(args) > 5 else [], args[6] if len(args) > 6 else {}
            return args[3], args[4], list(args[5:]), {}
        return None, method, args, None

    # --- request plumbing ----------------------------------------------------------------------------------

    async def _serve(self, call: Call, work: Callable[[], web.StreamResponse]) -> web.StreamResponse:
        with self.lock:
            self.calls.append(call)
        hold: Hold | None = self._take_hold(lambda h: h.matches(call))
        if hold:
            hold.calls.append(call)
        if hold and not hold.after:
            await hold.wait(body=call)
        with self.lock:
            response = work()
        if hold and hold.after:
            await hold.wait(body=call)
        if hold:
            hold.completed.set()
        return response


# --- handlers ------------------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


def _html(status: int, text: str) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


async def _read_jsonrpc(request: web.Request) -> tuple[dict | None, web.Response | None]:
    if request.content_type not in ("application/json", "application/json-rpc"):
        return None, _html(400, "<p>Request inferred type is compatible with ['http'] but 'json' was forced by "
                                "the endpoint.</p>")
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None, _html(400, "Invalid JSON data")
    if not isinstance(data, dict):
        return None, _html(400, "Invalid JSON-RPC data")
    return data, None


def _jsonrpc_answer(fake: FakeOdoo, call: Call, request_id: Any, fn: Callable[[], Any]) -> Callable:
    def work() -> web.Response:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        try:
            result = fn()
            if result is not None:
                body["result"] = result
        except Exception as exc:  # Odoo answers every failure in the JSON-RPC body
            body["error"] = jsonrpc_error(exc, fake.version)
            call.error = body["error"]["data"]["name"]
        return _json(body)
    return work


async def jsonrpc_handler(request: web.Request) -> web.StreamResponse:
    fake: FakeOdoo = request.app[FAKE]
    data, bad = await _read_jsonrpc(request)
    if bad:
        return bad
    params = data.get("params") or {}
    service, method, args = params.get("service"), params.get("method"), params.get("args")
    model, orm_method, call_args, call_kwargs = fake._describe(service, method, args)
    call = Call("jsonrpc", str(service), orm_method, model, call_args, call_kwargs)

    def run() -> Any:
        missing = [k for k in ("service", "method", "args") if k not in params]
        if missing:
            raise TypeError(f"RPC.jsonrpc() missing {len(missing)} required positional argument"
                            f"{'s' if len(missing) > 1 else ''}: " + " and ".join(repr(m) for m in missing))
        return fake.dispatch_rpc(service, method, args)
    return await fake._serve(call, _jsonrpc_answer(fake, call, data.get("id"), run))


async def xmlrpc_handler(request: web.Request) -> web.StreamResponse:
    fake: FakeOdoo = request.app[FAKE]
    service = request.match_info["service"]
    legacy = not request.path.startswith("/xmlrpc/2/")
    data = await request.read()
    try:
        params, method = xmlrpc.client.loads(data, use_datetime=True)
    except Exception:  # parsed again inside work() so that the fault is built as Odoo builds it
        params, method = None, None
    model, orm_method, call_args, call_kwargs = fake._describe(service, method, params)
    call = Call("xmlrpc", service, orm_method, model, call_args, call_kwargs)

    def work() -> web.Response:
        try:
            p, m = xmlrpc.client.loads(data, use_datetime=True)
            result = fake.dispatch_rpc(service, m, p)
            text = xmlrpc.client.dumps((downgrade(result),), methodresponse=True, allow_none=False)
        except Exception as exc:
            fault = (xmlrpc_fault_string if legacy else xmlrpc_fault_int)(exc)
            call.error = f"{type(exc).__module__}.{type(exc).__name__}"
            text = xmlrpc.client.dumps(fault, methodresponse=True, allow_none=False)
        return web.Response(text=text, content_type="text/xml", charset="utf-8")
    return await fake._serve(call, work)


def _json2_error_response(exc: BaseException) -> web.Response:
    status, body, headers = json2_error(exc)
    return _json(body, status, headers)


async def json2_handler(request: web.Request) -> web.StreamResponse:
    """odoo/addons/rpc/controllers/json2.py (19.0)."""
    fake: FakeOdoo = request.app[FAKE]
    if fake.version < 19:
        return _html(404, WERKZEUG_404)
    path = request.match_info.get("tail", "")
    parts = path.split("/") if path else []
    model_name, method = (parts + [None, None])[:2] if len(parts) == 2 else (None, None)
    call = Call("json2", "json2", method, model_name)
    raw = await request.read()

    def work() -> web.Response:
        try:
            if model_name is None or request.method != "POST":
                raise NotFound("Did you mean POST /json/2/<model>/<method>?")
            header_db = request.headers.get("X-Odoo-Database")
            if header_db is not None and header_db != fake.db:
                raise NotFound()
            if raw and request.content_type != "application/json":
                raise UnsupportedMediaType()
            token = None
            match = re.match(r"^bearer\s+(.+)$", request.headers.get("Authorization", ""), re.IGNORECASE)
            if match:
                token = match.group(1)
            if token is None:
                raise Unauthorized("User not authenticated, use an API Key with a Bearer Authorization header.",
                                   {"WWW-Authenticate": "Bearer"})
            user = next((u for u in fake.users_by_uid.values() if u.active and token in u.api_keys), None)
            if user is None:
                raise Unauthorized("Invalid apikey", {"WWW-Authenticate": "Bearer"})
            call.uid = user.uid
            params: dict[str, Any] = {"model": model_name, "method": method}
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    raise BadRequest(f"could not parse the body as json: {exc.args[0]}") from exc
                if not isinstance(body, dict):
                    raise BadRequest("could not parse the body, expecting a json object")
                params |= body
            call.args, call.kwargs = params.get("ids"), {k: v for k, v in params.items()
                                                         if k not in ("model", "method", "ids")}
            result = _json2_call(fake, user.uid, **params)
            return _json(result)
        except Exception as exc:
            call.error = f"{type(exc).__module__}.{type(exc).__name__}"
            call.status = json2_error(exc)[0]
            return _json2_error_response(exc)
    return await fake._serve(call, work)


def _json2_call(fake: FakeOdoo, uid: int, model: str, method: str, ids: Any = (), context: Any = None,
                **kwargs: Any) -> Any:
    """web_json_2_rpc."""
    env = fake.env(uid)
    if env.get(model) is None:
        raise NotFound(f"the model {model!r} does not exist")
    Model = env[model].with_context(context or {})
    try:
        func = get_public_method(Model, method)
    except AttributeError as exc:
        raise NotFound(exc.args[0]) from exc
    if getattr(func, "_api", None) in ("model", "model_create") and ids:
        raise UnprocessableEntity(f"cannot call {model}.{method} with ids")
    records = Model.browse(ids or [])
    try:
        inspect.signature(func).bind(records, **kwargs)
    except TypeError as exc:
        raise UnprocessableEntity(exc.args[0]) from exc
    return fake._transaction(method, lambda: downgrade(func(records, **kwargs)))


async def web_version(request: web.Request) -> web.StreamResponse:
    fake: FakeOdoo = request.app[FAKE]
    if fake.version < 19:
        return _html(404, WERKZEUG_404)
    return _json({"version_info": fake.version_info, "version": fake.server_version})


async def version_info(request: web.Request) -> web.StreamResponse:
    fake: FakeOdoo = request.app[FAKE]
    data, bad = await _read_jsonrpc(request)
    if bad:
        return bad
    call = Call("web", "web", "version_info")
    return await fake._serve(call, _jsonrpc_answer(fake, call, data.get("id"), fake._exp_version))


async def session_authenticate(request: web.Request) -> web.StreamResponse:
    fake: FakeOdoo = request.app[FAKE]
    data, bad = await _read_jsonrpc(request)
    if bad:
        return bad
    params = data.get("params") or {}
    call = Call("web", "web", "session_authenticate")
    sid: list[str] = []

    def run() -> Any:
        fake._check_db(params.get("db"))
        user = fake._password_user(params.get("login"), params.get("password"))
        if user is None:
            raise AccessDenied()
        sid.append(secrets.token_urlsafe(30))
        fake.sessions[sid[0]] = user.uid
        partner = fake.store.tables["res.users"][user.uid]["partner_id"]
        return {"uid": user.uid, "is_system": user.uid == 2, "is_admin": user.uid == 2, "db": fake.db,
                "server_version": fake.server_version, "server_version_info": fake.version_info,
                "name": fake.store.tables["res.users"][user.uid]["name"], "username": user.login,
                "partner_id": partner, "user_context": {"lang": "en_US", "tz": user.tz, "uid": user.uid},
                "user_companies": {"current_company": 1}}
    response = await fake._serve(call, _jsonrpc_answer(fake, call, data.get("id"), run))
    if sid:
        response.set_cookie("session_id", sid[0], httponly=True, max_age=7 * 24 * 3600)
    return response


async def dataset_call_kw(request: web.Request) -> web.StreamResponse:
    fake: FakeOdoo = request.app[FAKE]
    data, bad = await _read_jsonrpc(request)
    if bad:
        return bad
    params = data.get("params") or {}
    call = Call("web", "web", params.get("method"), params.get("model"), params.get("args"),
                params.get("kwargs"))

    def run() -> Any:
        uid = fake.sessions.get(request.cookies.get("session_id", ""))
        if uid is None:
            raise SessionExpiredException("Session expired")
        call.uid = uid
        env = fake.env(uid)
        model = env.get(params.get("model"))
        if model is None:
            raise KeyError(params.get("model"))
        get_public_method(model, params.get("method"))
        return fake._transaction(params.get("method"), lambda: call_kw(model, params["method"],
                                                                       params.get("args") or [],
                                                                       params.get("kwargs") or {}))
    return await fake._serve(call, _jsonrpc_answer(fake, call, data.get("id"), run))


async def not_found(request: web.Request) -> web.StreamResponse:
    return _html(404, WERKZEUG_404)


@web.middleware
async def _odoo_middleware(request: web.Request, handler) -> web.StreamResponse:
    fake: FakeOdoo = request.app[FAKE]
    fake.requests.append((request.method, request.path))
    mode = fake._down
    if mode == "close":
        if request.transport is not None:
            request.transport.abort()  # the client sees a reset connection and no answer
        return web.Response(status=503)  # never reaches the client
    if mode in ("502", "503"):
        title = "502 Bad Gateway" if mode == "502" else "503 Service Temporarily Unavailable"
        return _html(int(mode), f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}"
                                f"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _html(404, WERKZEUG_404)
    except web.HTTPMethodNotAllowed:
        return _html(405, "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n")


def create_app(fake: FakeOdoo) -> web.Application:
    app = web.Application(middlewares=[_odoo_middleware], client_max_size=128 * 1024 * 1024)
    app[FAKE] = fake
    app.router.add_post("/jsonrpc", jsonrpc_handler)
    app.router.add_post("/xmlrpc/2/{service}", xmlrpc_handler)
    app.router.add_post("/xmlrpc/{service}", xmlrpc_handler)
    app.router.add_route("*", "/json/2", json2_handler)
    app.router.add_route("*", "/json/2/{tail:.*}", json2_handler)
    app.router.add_get("/web/version", web_version)
    app.router.add_post("/web/webclient/version_info", version_info)
    app.router.add_post("/web/session/authenticate", session_authenticate)
    app.router.add_post("/web/dataset/call_kw", dataset_call_kw)
    app.router.add_post("/web/dataset/call_kw/{path:.*}", dataset_call_kw)
    app.router.add_route("*", "/{any:.*}", not_found)
    return app


FakeOdoo.build_app = lambda self: create_app(self)  # type: ignore[method-assign]
