"""The X connector's error family, and the one translation of X's HTTP answers into it.

X sends v2 problems (``{"title", "detail", "type", "status"}``, sometimes with an ``errors[]`` list that is more
specific than ``detail``) and, from the token endpoint, OAuth errors (``{"error", "error_description"}``). Only
X's own text travels, bounded and with every configured secret cut out.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import AIEmployeeError, AuthError, RateLimitError, TransientError, UpstreamError
from core.redact import scrub
from core.retry import retry_after_seconds
from social_media_integration.twitter_config import REAUTH_HINT

_MAX_DETAIL = 300
_PROBLEMS = "https://api.twitter.com/2/problems/"
# 403s that are about the app's credentials or permissions, not about this one request: a human must act.
_AUTH_PROBLEMS = frozenset({"oauth1-permissions", "unsupported-authentication", "client-forbidden"})
# The windows X counts a request against: the 15-minute endpoint window, and the 24-hour caps on posting
# (per user and per app) that answer 429 while x-rate-limit-remaining still looks fine.
_WINDOWS = (("x-rate-limit-remaining", "x-rate-limit-reset"),
            ("x-user-limit-24hour-remaining", "x-user-limit-24hour-reset"),
            ("x-app-limit-24hour-remaining", "x-app-limit-24hour-reset"))


class XError(AIEmployeeError):
    """Base of every error the X connector raises. ``detail`` is X's own text, when it sent one."""

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None,
                 retry_after: float | None = None, outcome_unknown: bool = False) -> None:
        Exception.__init__(self, message)  # the core bases' __init__ only store what is stored here
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown


class XAuthError(XError, AuthError):
    """401, an expired or revoked token, a refused refresh, an app without the permission: pause X, ask the owner."""


class XRateLimitError(XError, RateLimitError):
    """429. ``retry_after``: seconds until the window X named resets (None when X said nothing)."""


class XConnectionError(XError, TransientError):
    """Refused, reset, timed out, or 5xx. ``outcome_unknown`` is True when a write may have gone through:
    reconcile (find_recent_by_text) before posting again."""


class XDuplicateError(XError, UpstreamError):
    """403 duplicate content: an identical post already exists, most likely ours from an earlier attempt.
    Callers look for it (find_recent_by_text) rather than retry."""


class XForbiddenError(XError, UpstreamError):
    """Any other 403: e.g. replying to a Tweet that is deleted or not visible."""


class XResponseError(XError, UpstreamError):
    """Another 4xx (too long, invalid parameter, not found), with X's detail text."""


def from_http(status: int, headers: Mapping[str, str], body: Any, *, where: str, now: float,
              secrets: tuple[str, ...] = (), write: bool = False) -> XError:
    """The error for X's answer ``status`` to ``where`` (e.g. ``POST /2/tweets``)."""
    detail = _clean(_detail(body), secrets)
    said = f": {detail}" if detail else ""
    if status == 401 or (status == 400 and isinstance(body, dict) and isinstance(body.get("error"), str)):
        # the 400 is the token endpoint's answer to a spent or revoked refresh token (OAuth error body)
        return XAuthError(f"X refused the credentials for {where} ({status}){said}; {REAUTH_HINT}",
                          status=status, detail=detail or None)
    if status == 403:
        if _is_duplicate(body, detail):
            return XDuplicateError(f"X refused {where} as duplicate content{said}", status=403, detail=detail)
        if _problem_type(body) in _AUTH_PROBLEMS:
            return XAuthError(f"X refused the app's access for {where}{said}; check the app's permissions in "
                              f"the X developer portal, then {REAUTH_HINT}", status=403, detail=detail)
        return XForbiddenError(f"X refused {where} (403){said}", status=403, detail=detail or None)
    if status == 429:
        wait = rate_limit_wait(headers, now)
        when = f"; retry in {wait:.0f} s" if wait is not None else ""
        return XRateLimitError(f"X rate limit reached for {where}{when}", status=429, detail=detail or None,
                               retry_after=wait)
    if status == 408 or status >= 500:
        doubt = "; X may have acted on it: reconcile before retrying" if write else ""
        return XConnectionError(f"X is unavailable for {where} ({status}){doubt}", status=status,
                                detail=detail or None, outcome_unknown=write)
    return XResponseError(f"X refused {where} ({status}){said}", status=status, detail=detail or None)


def rate_limit_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the exhausted window resets (the latest, when several are), from X's epoch-second
    ``*-reset`` headers; else a ``Retry-After``; else None. Never slept on here: the caller schedules."""
    resets: list[float] = []
    for remaining, reset in _WINDOWS:
        try:
            if int(headers.get(remaining, "")) <= 0:
                resets.append(float(headers[reset]))
        except (KeyError, TypeError, ValueError):
            continue
    if not resets:  # a 429 without an exhausted window named: fall back on the endpoint's reset
        try:
            resets.append(float(headers["x-rate-limit-reset"]))
        except (KeyError, TypeError, ValueError):
            return retry_after_seconds(headers.get("retry-after"))
    return max(0.0, max(resets) - now)


def _detail(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("error"), str):  # OAuth 2.0 token endpoint
        description = body.get("error_description")
        return f"{body['error']}: {description}" if description else body["error"]
    messages = [str(e.get("message") or e.get("detail") or "") for e in body.get("errors") or []
                if isinstance(e, dict)]
    messages = [m for m in messages if m]
    if messages:  # more specific than the generic "One or more parameters to your request was invalid."
        return "; ".join(messages)
    return str(body.get("detail") or body.get("title") or "")


def _problem_type(body: Any) -> str:
    kind = body.get("type") if isinstance(body, dict) else None
    return kind[len(_PROBLEMS):] if isinstance(kind, str) and kind.startswith(_PROBLEMS) else ""


def _is_duplicate(body: Any, detail: str) -> bool:
    codes = {e.get("code") for e in (body.get("errors") or []) if isinstance(e, dict)} \
        if isinstance(body, dict) else set()
    lowered = detail.lower()
    # v2 says "duplicate content"; v1.1-style bodies (still sent by some proxies) carry code 187
    return "duplicate content" in lowered or "status is a duplicate" in lowered or 187 in codes


def _clean(text: str, secrets: tuple[str, ...]) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "…"
    return scrub(text, list(secrets))
