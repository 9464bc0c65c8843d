"""The REST client skills use to call the suite's MCP servers (DESIGN §5: skills never call external
APIs themselves). It turns the servers' error envelope back into ``core.errors`` exceptions, and
transport failures into what they mean for the caller: a refused connection sent nothing (retry), a
POST cut off or timed out after it was sent may have happened (outcome unknown).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import requests
import urllib3.exceptions

from core.errors import AIEmployeeError, OutcomeUnknownError, TransientError, UpstreamError, error_for_code
from core.retry import Backoff, retry_call

# Connect fast (loopback), but give a write the time its upstream may need.
DEFAULT_TIMEOUT = (3.05, 60.0)
# Long enough to ride out a server restart under PM2 (1 s backoff plus start-up): ~8-15 s in all.
RESTART_BACKOFF = Backoff(base=0.5, factor=2.0, maximum=8.0, attempts=6)


def error_from_envelope(body: dict, status: int) -> AIEmployeeError:
    message = str(body.get("error") or f"HTTP {status}")
    retry_after = body.get("retry_after")
    err = error_for_code(body.get("error_code"), message,
                         retry_after=float(retry_after) if retry_after is not None else None,
                         approval_id=str(body.get("approval_id") or ""), field=body.get("field"))
    if body.get("queued"):  # the server keeps the write in its outbox and tries it again itself
        err.queued_for = float(retry_after or 60)
    if isinstance(err, UpstreamError):
        err.status = status
    return err


def _never_connected(err: requests.RequestException) -> bool:
    """True when the request provably never reached the server (so nothing can have happened)."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    reason = err.args[0] if err.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the real cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class McpClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 backoff: Backoff = RESTART_BACKOFF, sleep: Callable[[float], object] = time.sleep,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.backoff = backoff
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def for_service(cls, settings: Any, service: str, **kwargs: Any) -> "McpClient":
        return cls(settings.mcp_url(service), token=settings.mcp_auth_token, **kwargs)

    def get(self, path: str, params: dict | None = None) -> Any:
        """A read: safe to repeat, so a server that is down or restarting is waited for (bounded)."""
        return _data(retry_call(lambda: self._send("GET", path, params=params), backoff=self.backoff, sleep=self.sleep))

    def post(self, path: str, body: dict, *, idempotent: bool = False) -> Any:
        """A write. ``idempotent``: the server dedups this call (e.g. by its grant), so after an unknown
        outcome asking again is safe and the answer is the one recorded for the first attempt."""
        payload = {k: v for k, v in body.items() if v is not None}
        if not idempotent:
            return _data(self._send("POST", path, json=payload))

        def attempt() -> requests.Response:
            try:
                return self._send("POST", path, json=payload)
            except OutcomeUnknownError as err:
                raise TransientError(f"{err}; asking again is safe, the server deduplicates this call") from err
        return _data(retry_call(attempt, backoff=self.backoff, sleep=self.sleep))

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The transport only: errors the server answered are not retried here (see ``_data``)."""
        url = f"{self.base_url}{path}"
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            if method == "GET" or _never_connected(err):
                raise TransientError(f"{url} is unreachable ({type(err).__name__}); nothing was done") from err
            raise OutcomeUnknownError(f"{method} {url} was interrupted ({type(err).__name__}); "
                                      "it may or may not have happened") from err


def _data(response: requests.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "success" not in body:
        raise UpstreamError(f"{response.request.method} {response.url} answered HTTP {response.status_code} "
                            "without a JSON envelope", status=response.status_code)
    if not body["success"]:
        raise error_from_envelope(body, response.status_code)
    return body.get("data")


def granted_write(ctx: Any, service: str, path: str, params: dict) -> Any:
    """An approved write on a server (a skill's ``ActionContext``): the owner's grant and the task go
    with it. Idempotent: the server keeps one ledger entry per grant, so asking again after a lost answer
    returns the first answer (or finds what was sent, posted or made) and never writes twice."""
    return McpClient.for_service(ctx.settings, service).post(
        path, {**params, "grant_id": ctx.grant_id, "task_id": ctx.task_id}, idempotent=True)
