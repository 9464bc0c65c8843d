"""How the connector reaches Odoo: JSON-RPC (``/jsonrpc``, every version) and JSON-2 (``/json/2``, Odoo 19+),
each with one ``_request()`` that owns the timeout and turns every transport failure into the error family.

Both offer the same ``call(model, method, ids, kwargs)`` with named arguments, JSON-2's convention:
``ids`` given means a record method, ``ids=None`` a model method.
"""
from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass
from typing import Any

import requests

from core.retry import retry_after_seconds
from odoo_integration.auth import AuthGate
from odoo_integration.config import OdooConfig
from odoo_integration.errors import (OdooAuthError, OdooConnectionError, OdooError, OdooServerError,
                                     from_odoo, from_status)

USER_AGENT = "ai-employee-odoo/1"


@dataclass(frozen=True)
class ServerVersion:
    version: str  # the series, "19.0" or "saas~18.3"
    major: int
    edition: str  # community | enterprise

    @classmethod
    def parse(cls, info: Any) -> ServerVersion:
        """From ``common.version`` or ``GET /web/version``; saas builds say ``["saas~18", 3, ...]``."""
        if not isinstance(info, dict):
            raise OdooServerError("Odoo's version answer is not an object")
        vinfo = info.get("server_version_info") or info.get("version_info") or []
        match = re.search(r"\d+", str(vinfo[0])) if vinfo else None
        if match is None:
            raise OdooServerError("Odoo's version answer has no version number")
        major = int(match.group())
        minor = vinfo[1] if len(vinfo) > 1 and isinstance(vinfo[1], int) else 0
        series = info.get("server_serie") or (f"saas~{major}.{minor}" if "saas" in str(vinfo[0])
                                              else f"{major}.{minor}")
        edition = "enterprise" if len(vinfo) > 5 and vinfo[5] == "e" else "community"
        return cls(str(series), major, edition)


class _Http:
    """The one place that talks HTTP: the timeout, and transport failures as OdooConnectionError."""

    def __init__(self, config: OdooConfig, session: requests.Session) -> None:
        self.config, self.session = config, session

    def send(self, method: str, path: str, *, where: str, json: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        try:
            return self.session.request(method, f"{self.config.url}{path}", json=json, timeout=self.config.timeout,
                                        headers={"User-Agent": USER_AGENT, **(headers or {})})
        except requests.Timeout as err:
            raise OdooConnectionError(f"Odoo did not answer {where} within {self.config.timeout:g} s") from err
        except requests.RequestException as err:  # refused, reset, DNS, TLS...
            raise OdooConnectionError(f"Odoo is unreachable for {where} ({type(err).__name__})") from err

    @staticmethod
    def body(resp: requests.Response, where: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise OdooServerError(f"Odoo's answer to {where} is not JSON (is ODOO_URL an Odoo server?)",
                                  status=resp.status_code) from None


def _failed_status(resp: requests.Response, where: str) -> OdooError:
    return from_status(resp.status_code, where=where, retry_after=retry_after_seconds(resp.headers.get("Retry-After")))


class JsonRpcTransport:
    """``/jsonrpc``: ``common.version``, ``common.authenticate`` once (uid cached), ``object.execute_kw``.
    Errors arrive as HTTP 200 with an ``error`` object. On 17/18 an API key stands in for the password."""

    name = "jsonrpc"

    def __init__(self, config: OdooConfig, session: requests.Session, gate: AuthGate) -> None:
        self.config, self._http, self._gate = config, _Http(config, session), gate
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.uid: int | None = None

    @property
    def _secret(self) -> str | None:
        return self.config.api_key or self.config.password

    def _request(self, service: str, method: str, args: list[Any], *, where: str) -> Any:
        payload = {"jsonrpc": "2.0", "method": "call", "id": next(self._ids),
                   "params": {"service": service, "method": method, "args": args}}
        resp = self._http.send("POST", "/jsonrpc", json=payload, where=where)
        if resp.status_code != 200:
            raise _failed_status(resp, where)
        body = self._http.body(resp, where)
        if not isinstance(body, dict):
            raise OdooServerError(f"Odoo's answer to {where} is not a JSON-RPC response")
        error = body.get("error")
        if error is not None:
            data = error.get("data") if isinstance(error, dict) else None
            data = data if isinstance(data, dict) else {}
            raise from_odoo(data.get("name"), data.get("message") or (error.get("message") if isinstance(error, dict)
                                                                      else ""),
                            status=None, where=where, secrets=self.config.secrets)
        return body.get("result")  # absent when the method returned None

    def version(self) -> ServerVersion:
        return ServerVersion.parse(self._request("common", "version", [], where="common.version"))

    def authenticate(self) -> int:
        """The uid, authenticating once; the gate spaces out attempts after a failure."""
        with self._lock:
            if self.uid is not None:
                return self.uid
            with self._gate.attempt():
                if not self.config.username or not self._secret:
                    raise OdooAuthError("Odoo JSON-RPC needs ODOO_USERNAME with ODOO_PASSWORD or ODOO_API_KEY "
                                        "(an API key alone works only over JSON-2, on Odoo 19 or newer)")
                uid = self._request("common", "authenticate",
                                    [self.config.db, self.config.username, self._secret, {}], where="common.authenticate")
                if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
                    # authenticate answers False, not an error, for a wrong login or password
                    raise OdooAuthError(f"Odoo refused the login of {self.config.username!r} on database "
                                        f"{self.config.db!r}: check ODOO_USERNAME and ODOO_PASSWORD (or ODOO_API_KEY)")
                self.uid = uid
                return uid

    def call(self, model: str, method: str, ids: list[int] | None, kwargs: dict[str, Any]) -> Any:
        uid = self.authenticate()
        args, kw = execute_kw_arguments(method, ids, kwargs)
        where = f"{model}.{method}"
        with self._gate.attempt():
            try:
                return self._request("object", "execute_kw",
                                     [self.config.db, uid, self._secret, model, method, args, kw], where=where)
            except OdooAuthError:
                self.uid = None  # the password changed or the key was revoked since we logged in
                raise


def execute_kw_arguments(method: str, ids: list[int] | None, kwargs: dict[str, Any]) -> tuple[list, dict]:
    """Named arguments as ``execute_kw``'s (args, kwargs). Odoo's call_kw takes the ids of a record method from
    args[0], and ``create`` (api.model_create_multi) needs its values positionally: it looks at args[0] to decide
    between returning an id or a list."""
    kw = dict(kwargs)
    if ids is not None:
        return [list(ids)], kw
    if method == "create" and "vals_list" in kw:
        return [kw.pop("vals_list")], kw
    return [], kw


class Json2Transport:
    """Odoo 19's ``POST /json/2/<model>/<method>``: bearer API key, ``X-Odoo-Database``, named arguments with
    ``ids`` and ``context`` in the body, bare JSON results, real HTTP statuses with Odoo's JSON error."""

    name = "json2"

    def __init__(self, config: OdooConfig, session: requests.Session, gate: AuthGate) -> None:
        self.config, self._http, self._gate = config, _Http(config, session), gate
        self.uid: int | None = None  # learnt from res.users.context_get when asked

    def authenticate(self) -> None:
        """Nothing to do: every request carries the key."""

    def _request(self, model: str, method: str, body: dict[str, Any]) -> Any:
        where = f"{model}.{method}"
        headers = {"Authorization": f"bearer {self.config.api_key}", "X-Odoo-Database": str(self.config.db)}
        resp = self._http.send("POST", f"/json/2/{model}/{method}", json=body, headers=headers, where=where)
        if resp.status_code == 200:
            return self._http.body(resp, where)
        if not resp.headers.get("Content-Type", "").startswith("application/json"):
            raise _failed_status(resp, where)  # a proxy's page, or werkzeug's HTML 404 before Odoo 19
        try:
            error = resp.json()
        except ValueError:
            raise _failed_status(resp, where) from None
        if not isinstance(error, dict):
            raise _failed_status(resp, where)
        raise from_odoo(error.get("name"), error.get("message"), status=resp.status_code, where=where,
                        secrets=self.config.secrets, retry_after=retry_after_seconds(resp.headers.get("Retry-After")))

    def call(self, model: str, method: str, ids: list[int] | None, kwargs: dict[str, Any]) -> Any:
        body = dict(kwargs)
        if ids is not None:
            body["ids"] = list(ids)
        with self._gate.attempt():
            return self._request(model, method, body)


def web_version(config: OdooConfig, session: requests.Session) -> ServerVersion | None:
    """``GET /web/version`` (Odoo 19+, no credentials); None where the route does not exist."""
    http = _Http(config, session)
    resp = http.send("GET", "/web/version", where="/web/version")
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise _failed_status(resp, "/web/version")
    return ServerVersion.parse(http.body(resp, "/web/version"))
