"""The Odoo connector's error family, and the one translation of Odoo's errors into it.

Both transports end here: JSON-RPC's ``error.data`` (always HTTP 200) and JSON-2's error body (real statuses)
carry the same ``name`` (Odoo's exception class) and ``message``. Only those two travel: ``debug`` holds a
server traceback and is never echoed.
"""
from __future__ import annotations

import re

from core.errors import AIEmployeeError, AuthError, NotFoundError, RateLimitError, TransientError, UpstreamError
from core.redact import scrub

_MAX_MESSAGE = 500
_KEY_HINT = "create a new API key in Odoo (Preferences → Account Security) and set ODOO_API_KEY"
_DEFAULT_404 = "The requested URL was not found on the server."


class OdooError(AIEmployeeError):
    """Base of every error the Odoo connector raises. ``odoo_message`` is Odoo's own text, when it sent one."""

    default_status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, odoo_name: str | None = None,
                 odoo_message: str | None = None, retry_after: float | None = None) -> None:
        Exception.__init__(self, message)  # the core bases' __init__ only store what is stored here
        self.status = status if status is not None else self.default_status
        self.odoo_name = odoo_name
        self.odoo_message = odoo_message
        self.retry_after = retry_after


class OdooAuthError(OdooError, AuthError):
    """Wrong password, revoked or expired API key, wrong database: a human must fix the settings.
    ``retry_in``: seconds until the connector will try to authenticate again (see auth.AuthGate)."""

    retry_in: float | None = None


class OdooAccessError(OdooError, UpstreamError):
    """The user has no right to that model or operation (Odoo's AccessError)."""

    default_status = 403


class OdooValidationError(OdooError, UpstreamError):
    """Odoo refused the operation (UserError, ValidationError); the message is Odoo's, for the owner."""

    default_status = 422


class OdooNotFoundError(OdooError, NotFoundError):
    """The record was deleted (MissingError), or the model, method or URL does not exist."""

    default_status = 404


class OdooConnectionError(OdooError, TransientError):
    """Refused, reset, timed out, or a proxy saying Odoo is down. After a write: the outcome is unknown,
    reconcile (find_move_by_ref) before trying again."""


class OdooRateLimitError(OdooConnectionError, RateLimitError):
    """Odoo (Odoo.sh, Odoo Online) asked us to slow down; ``retry_after`` in seconds when it said so."""

    default_status = 429


class OdooServerError(OdooError, UpstreamError):
    """Any other server-side failure (a Python error inside Odoo, an unexpected answer)."""

    default_status = 500


_BY_NAME: dict[str, type[OdooError]] = {
    "odoo.exceptions.AccessDenied": OdooAuthError,
    "odoo.http.SessionExpiredException": OdooAuthError,
    "werkzeug.exceptions.Unauthorized": OdooAuthError,
    "odoo.exceptions.AccessError": OdooAccessError,
    "werkzeug.exceptions.Forbidden": OdooAccessError,
    "odoo.exceptions.MissingError": OdooNotFoundError,
    "werkzeug.exceptions.NotFound": OdooNotFoundError,
    "odoo.exceptions.UserError": OdooValidationError,
    "odoo.exceptions.ValidationError": OdooValidationError,
    "odoo.exceptions.RedirectWarning": OdooValidationError,
    # JSON-2's answers to a malformed call (bad arguments, ids on a model method): our bug, not the owner's
    "werkzeug.exceptions.UnprocessableEntity": OdooServerError,
    "werkzeug.exceptions.BadRequest": OdooServerError,
    "werkzeug.exceptions.UnsupportedMediaType": OdooServerError,
    # psycopg2 errors that reach a client are the ones Odoo's own retries gave up on: transient
    "psycopg2.errors.SerializationFailure": OdooConnectionError,
    "psycopg2.errors.LockNotAvailable": OdooConnectionError,
    "psycopg2.OperationalError": OdooConnectionError,
}
_UNKNOWN_OBJECT = re.compile(r"Object \S+ doesn't exist")


def clean(text: object, secrets: tuple[str, ...]) -> str:
    """Odoo's message, bounded, with any configured secret cut out."""
    message = str(text or "").strip()
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "…"
    return scrub(message, list(secrets))


def from_odoo(name: str | None, message: object, *, status: int | None, where: str,
              secrets: tuple[str, ...], retry_after: float | None = None) -> OdooError:
    """The error for Odoo's exception ``name`` (and HTTP ``status`` when the transport has one).

    ``where`` says what was called (``account.move.action_post``), for the owner's message.
    """
    text = clean(message, secrets)
    name = name or ""
    cls = _BY_NAME.get(name) or _by_status(status)
    if name == "odoo.exceptions.UserError" and _UNKNOWN_OBJECT.fullmatch(text):
        cls = OdooNotFoundError  # execute_kw's answer for an unknown model
    elif name == "builtins.AttributeError" and "does not exist" in text:
        cls = OdooNotFoundError  # an unknown method (JSON-2 answers the same as a 404)
    elif name == "psycopg2.OperationalError" and "does not exist" in text:
        return OdooAuthError("Odoo has no such database: check ODOO_DB", status=status, odoo_name=name,
                             odoo_message=text)
    if cls is OdooAuthError:
        if name == "werkzeug.exceptions.Unauthorized":
            summary = f"Odoo rejected ODOO_API_KEY ({text}): it was revoked, expired or mistyped; {_KEY_HINT}"
        else:
            summary = f"Odoo refused the credentials ({text}): check ODOO_USERNAME and ODOO_PASSWORD or ODOO_API_KEY"
    elif cls is OdooNotFoundError and text.startswith(_DEFAULT_404):
        summary = f"Odoo answered 404 for {where}: check ODOO_URL and ODOO_DB"
    elif cls is OdooServerError:
        kind = name.rsplit(".", 1)[-1] or f"HTTP {status}"
        summary = f"Odoo failed on {where} ({kind}): {text}" if text else f"Odoo failed on {where} ({kind})"
    elif cls is OdooConnectionError or cls is OdooRateLimitError:
        summary = f"Odoo is unavailable for {where}: {text}" if text else f"Odoo is unavailable (HTTP {status})"
    else:
        summary = f"Odoo refused {where}: {text}"
    return cls(summary, status=status if status and status != 200 else None, odoo_name=name or None,
               odoo_message=text or None, retry_after=retry_after)


def from_status(status: int, *, where: str, retry_after: float | None = None) -> OdooError:
    """An HTTP failure without Odoo's JSON error (a proxy's page, a werkzeug HTML 404): never echo the body."""
    cls = _by_status(status)
    if cls is OdooConnectionError or cls is OdooRateLimitError:
        return cls(f"Odoo is unavailable (HTTP {status}) for {where}", status=status, retry_after=retry_after)
    if cls is OdooNotFoundError:
        return cls(f"Odoo answered 404 for {where}: check ODOO_URL (and ODOO_DB)", status=status)
    if cls is OdooAuthError:
        return cls(f"Odoo refused the credentials (HTTP {status}) for {where}", status=status)
    return cls(f"Odoo answered HTTP {status} for {where}", status=status)


def _by_status(status: int | None) -> type[OdooError]:
    if status == 401:
        return OdooAuthError
    if status == 403:
        return OdooAccessError
    if status == 404:
        return OdooNotFoundError
    if status == 429:
        return OdooRateLimitError
    if status in (408, 502, 503, 504):
        return OdooConnectionError
    if status == 422:
        return OdooValidationError
    return OdooServerError
