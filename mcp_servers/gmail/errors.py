"""The Gmail connector's error family, and the one translation of Google's HTTP errors into it."""
from __future__ import annotations

import json

from googleapiclient.errors import HttpError

from core.errors import AIEmployeeError, AuthError, RateLimitError, TransientError, UpstreamError
from core.retry import retry_after_seconds
from mcp_servers.gmail.config import REAUTH_HINT

_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded"})


class GmailError(AIEmployeeError):
    """Base of every error the Gmail connector raises."""


class GmailAuthError(GmailError, AuthError):
    """The token is expired, revoked or lacks a scope: a human must run gmail_auth."""


class GmailRateLimitError(GmailError, RateLimitError):
    """Gmail asked us to slow down; ``retry_after`` is in seconds when Gmail said so."""


class GmailConnectionError(GmailError, TransientError):
    """Network failure, timeout or 5xx. After a failed send, reconcile with find_sent_by_key first."""


class GmailResponseError(GmailError, UpstreamError):
    """Gmail refused the request (4xx) for a reason retrying will not fix."""


class GmailHistoryExpiredError(GmailError):
    """The history id is too old (404): the caller must resynchronise with a full list."""

    code = "UPSTREAM_ERROR"
    http_status = 502


def translate_http_error(err: HttpError, *, history: bool) -> GmailError:
    status = int(err.resp.status)
    message, reason = _error_details(err.content)
    text = f"Gmail API {status}: {message}" if message else f"Gmail API {status}"
    if status == 429 or (status == 403 and reason in _RATE_LIMIT_REASONS):
        return GmailRateLimitError(text, retry_after=retry_after_seconds(err.resp.get("retry-after")))
    if status in (401, 403):
        return GmailAuthError(f"{text}; {REAUTH_HINT}")
    if status == 404 and history:
        return GmailHistoryExpiredError(f"{text}; the history id is too old, resynchronise")
    if status >= 500 or status == 408:
        return GmailConnectionError(text)
    return GmailResponseError(text, status=status)


def _error_details(content: bytes | str | None) -> tuple[str, str | None]:
    """Message and first reason from Google's JSON error; never echo a non-JSON body verbatim."""
    try:
        error = json.loads(content or b"{}")["error"]
        reasons = [e.get("reason") for e in error.get("errors", []) if isinstance(e, dict)]
        return str(error.get("message", ""))[:300], next((r for r in reasons if r), None)
    except (ValueError, TypeError, KeyError, AttributeError):
        return "", None
