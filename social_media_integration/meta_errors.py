"""The Meta connector's error family, and the one translation of Graph's error object into it.

Graph answers ``{"error": {"message", "type", "code", "error_subcode"?, "is_transient"?, "error_user_msg"?,
"fbtrace_id"}}``, usually with HTTP 400 whatever the cause, so the ``code`` decides, not the status
(developers.facebook.com/docs/graph-api/guides/error-handling). Only Graph's texts travel, bounded and with
every token cut out: a token may sit in a message and always sits in an access_token parameter.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from core.errors import AIEmployeeError, AuthError, RateLimitError, TransientError, UpstreamError
from core.redact import REDACTED, scrub

_MAX_MESSAGE = 300
_TOKEN_LIKE = re.compile(r"EAA[A-Za-z0-9]{16,}")  # Facebook access tokens, should one be echoed back
_RECONNECT = "reconnect the Meta app and set META_ACCESS_TOKEN (and META_PAGE_ACCESS_TOKEN if you use one)"
AUTH_CODES = frozenset({102, 190})  # 102: API session; 190: invalid, expired (463), changed password (460)...
# 4 app, 17 user, 32 Page, 613 custom; 80001-80014: the business-use-case limits (Pages, Instagram...)
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80001, 80015)})
TRANSIENT_CODES = frozenset({1, 2})  # "unknown error" and "service temporarily unavailable": retry later
_IG_QUOTA = (9, 2207042)  # Instagram's 24-hour publishing quota is spent: waiting fixes it, like a rate limit


class MetaError(AIEmployeeError):
    """Base of every error the Meta connector raises. ``code``/``subcode`` are Graph's (``graph_code`` here, as
    ``code`` is the suite's error code), ``meta_message`` Graph's own text, when Graph sent one."""

    def __init__(self, message: str, *, status: int | None = None, graph_code: int | None = None,
                 subcode: int | None = None, meta_type: str | None = None, meta_message: str | None = None,
                 fbtrace_id: str | None = None, retry_after: float | None = None) -> None:
        Exception.__init__(self, message)  # the core bases' __init__ only store what is stored here
        self.status, self.graph_code, self.subcode = status, graph_code, subcode
        self.meta_type, self.meta_message, self.fbtrace_id = meta_type, meta_message, fbtrace_id
        self.retry_after = retry_after


class MetaAuthError(MetaError, AuthError):
    """The token is invalid, expired (190/463) or invalidated (190/460): a human must reconnect."""


class MetaRateLimitError(MetaError, RateLimitError):
    """Graph throttled us; ``retry_after`` (seconds) from the usage headers' estimated_time_to_regain_access,
    None when Graph gave no estimate (the caller's default wait applies)."""


class MetaConnectionError(MetaError, TransientError):
    """Refused, reset, timed out, or Graph down (5xx, ``is_transient``). ``outcome_unknown``: a write may have
    been applied (look for it with find_page_post / find_instagram_media before trying again)."""

    outcome_unknown: bool = False


class MetaResponseError(MetaError, UpstreamError):
    """Graph refused the request for a reason retrying will not fix; the message is Graph's."""


class MetaParameterError(MetaError, UpstreamError):
    """Code 100: a parameter (a metric, an id, a field) Graph does not accept."""


class MetaPolicyError(MetaError, UpstreamError):
    """Code 368: blocked by Meta's policies (abusive or disallowed); a human must look, never retried."""


class MetaDuplicateError(MetaError, UpstreamError):
    """Code 506: the same status message was posted recently. Not an error to retry: the post went out,
    find it (find_page_post) and record its id."""


def clean(text: object, secrets: Iterable[str]) -> str:
    """Graph's text, bounded, with every known token and anything shaped like one cut out."""
    message = " ".join(str(text or "").split())
    message = _TOKEN_LIKE.sub(REDACTED, scrub(message, list(secrets)))
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "…"


def regain_seconds(usage: Mapping[str, Any]) -> float | None:
    """The longest positive ``estimated_time_to_regain_access`` (minutes) in the parsed usage headers, in seconds.

    X-Page-Usage and X-Ad-Account-Usage are flat objects; X-Business-Use-Case-Usage maps an id to a list of them;
    X-App-Usage never carries an estimate. A zero means "not throttled on this dimension", so it does not count.
    """
    minutes: list[float] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            estimate = value.get("estimated_time_to_regain_access")
            if isinstance(estimate, (int, float)) and not isinstance(estimate, bool) and estimate > 0:
                minutes.append(float(estimate))
            for inner in value.values():
                if isinstance(inner, (dict, list)):
                    visit(inner)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)

    visit(dict(usage))
    return max(minutes) * 60 if minutes else None


def from_graph(error: Mapping[str, Any], *, status: int | None, where: str, usage: Mapping[str, Any],
               secrets: Iterable[str]) -> MetaError:
    """The error for Graph's error object; ``where`` says what was attempted, for the owner's message."""
    secrets = list(secrets)
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    text = clean(error.get("message"), secrets)
    user_text = clean(error.get("error_user_msg"), secrets)
    if user_text and user_text not in text:
        text = f"{text} ({user_text})" if text else user_text
    fields = {"status": status, "graph_code": code, "subcode": subcode, "meta_message": text or None,
              "meta_type": clean(error.get("type"), secrets) or None,
              "fbtrace_id": clean(error.get("fbtrace_id"), secrets) or None}
    said = f": {text}" if text else ""
    if code in AUTH_CODES:
        why = {463: "expired", 460: "was invalidated (password change or a security check)",
               458: "was revoked (the app was removed)", 467: "is invalid"}.get(subcode or 0, "was rejected")
        return MetaAuthError(f"Meta access token {why} during {where}{said}; {_RECONNECT}", **fields)
    if code in RATE_LIMIT_CODES or (code, subcode) == _IG_QUOTA:
        wait = regain_seconds(usage)
        hint = f"; Meta estimates {wait / 60:g} min" if wait else ""
        return MetaRateLimitError(f"Meta rate limit (code {code}) during {where}{said}{hint}", retry_after=wait,
                                  **fields)
    if code == 368:
        return MetaPolicyError(f"Meta blocked {where} by policy{said}; a human must review the content", **fields)
    if code == 506:
        return MetaDuplicateError(f"Meta refused {where} as a duplicate{said}; the post already exists", **fields)
    if error.get("is_transient") is True or code in TRANSIENT_CODES or (status or 0) >= 500:
        return MetaConnectionError(f"Meta is unavailable for {where}{said}", **fields)
    if code == 100:
        return MetaParameterError(f"Meta refused a parameter of {where}{said}", **fields)
    return MetaResponseError(f"Meta refused {where} (code {code}){said}", **fields)


def from_status(status: int, *, where: str, retry_after: float | None = None) -> MetaError:
    """An HTTP failure without Graph's error object (a proxy's page): never echo the body."""
    if status == 429:
        return MetaRateLimitError(f"Meta rate limit (HTTP 429) during {where}", status=status, retry_after=retry_after)
    if status >= 500 or status == 408:
        return MetaConnectionError(f"Meta is unavailable (HTTP {status}) for {where}", status=status)
    if status == 401:
        return MetaAuthError(f"Meta refused the token (HTTP 401) during {where}; {_RECONNECT}", status=status)
    return MetaResponseError(f"Meta answered HTTP {status} for {where}", status=status)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
