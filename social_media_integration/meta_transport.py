"""The one place that talks HTTP to Graph: version in the path, the timeout, the token, the usage headers,
and every transport failure and Graph error turned into the connector's error family.

The token travels in ``Authorization: Bearer`` (Graph accepts it like the access_token parameter), never in
the URL: a URL ends up in requests' exception texts, proxies' logs and tracebacks, a header does not. For
the same reason pagination follows the ``after`` cursor, not Graph's ``paging.next`` URL, which carries the
token in its query string.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests

from core.retry import retry_after_seconds
from social_media_integration.meta_config import MetaConfig
from social_media_integration.meta_errors import MetaConnectionError, MetaResponseError, from_graph, from_status

_LOGGER = logging.getLogger("social_media_integration.meta")
USER_AGENT = "ai-employee-meta/1"
USAGE_HEADERS = {"x-app-usage": "app", "x-business-use-case-usage": "business_use_case", "x-page-usage": "page",
                 "x-ad-account-usage": "ad_account"}


class GraphTransport:
    """Thread-safe: a ``requests.Session`` may be shared, and the usage record has its own lock."""

    def __init__(self, config: MetaConfig, session: requests.Session) -> None:
        self.config, self.session = config, session
        self._lock = threading.Lock()
        self._usage: dict[str, Any] = {}
        self._secrets: set[str] = set(config.secrets)

    def remember_secret(self, token: str) -> None:
        """A token learnt at run time (a derived Page token): it too must never appear in a message."""
        with self._lock:
            self._secrets.add(token)

    @property
    def secrets(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._secrets)

    def usage(self) -> dict[str, Any]:
        """The last value seen of each usage header (parsed), and when each arrived (epoch seconds)."""
        with self._lock:
            return json.loads(json.dumps(self._usage))  # a deep copy: callers cannot change the record

    def get(self, path: str, *, token: str, where: str, **params: Any) -> dict[str, Any]:
        return self._request("GET", path, token=token, params=params, where=where)

    def post(self, path: str, *, token: str, where: str, **params: Any) -> dict[str, Any]:
        return self._request("POST", path, token=token, params=params, where=where)

    def _request(self, method: str, path: str, *, token: str, params: Mapping[str, Any], where: str) -> dict[str, Any]:
        url = f"{self.config.api_root}/{path.lstrip('/')}"
        values = {k: v for k, v in params.items() if v is not None}
        # Writes go as a form body (Graph's own convention), reads as a query string; neither holds the token.
        body = {"params": values} if method == "GET" else {"data": values}
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        try:
            resp = self.session.request(method, url, headers=headers, timeout=self.config.timeout, **body)
        except requests.Timeout as err:
            raise _connection_error(f"Meta did not answer {where} within {self.config.timeout:g} s", method,
                                    sent=not isinstance(err, requests.ConnectTimeout)) from err
        except requests.RequestException as err:  # refused, reset, DNS, TLS...; the text (a URL) is not echoed
            raise _connection_error(f"Meta is unreachable for {where} ({type(err).__name__})", method,
                                    sent=True) from err
        usage = self._remember_usage(resp.headers)
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            raise from_graph(error, status=resp.status_code, where=where, usage=usage, secrets=self.secrets)
        if resp.status_code >= 400:
            raise from_status(resp.status_code, where=where,
                              retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
        if not isinstance(payload, dict):
            raise MetaResponseError(f"Meta's answer to {where} is not a Graph object (is META_GRAPH_URL Graph?)",
                                    status=resp.status_code)
        return payload

    def _remember_usage(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """Keep each usage header's last value (one answer may carry only some of them); the ones of this answer."""
        now, seen = time.time(), {}
        for header, kind in USAGE_HEADERS.items():
            raw = headers.get(header)
            if raw is None:
                continue
            try:
                seen[kind] = json.loads(raw)
            except ValueError:
                _LOGGER.debug("unparsable %s header ignored", header)
        if seen:
            with self._lock:
                for kind, value in seen.items():
                    self._usage[kind] = {"value": value, "seen_at": now}
        return seen


def _connection_error(message: str, method: str, *, sent: bool) -> MetaConnectionError:
    err = MetaConnectionError(message)
    # A write whose request may have reached Graph may also have been applied: the caller reconciles first.
    err.outcome_unknown = sent and method != "GET"
    return err
