"""The error taxonomy of DESIGN §8, shared by connectors, servers, skills and daemons.

Connectors subclass these (e.g. ``GmailAuthError(AuthError)``) so that one error middleware and
one retry helper can treat every integration the same way. Messages are written for the owner and
never contain secrets.
"""
from __future__ import annotations


class AIEmployeeError(Exception):
    """Base of every error the product raises on purpose."""

    code = "INTERNAL_ERROR"
    http_status = 500
    retryable = False


class ValidationError(AIEmployeeError):
    """Bad input from a caller or a file; the message names the field."""

    code = "VALIDATION_ERROR"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConfigError(AIEmployeeError):
    """A configuration variable is invalid; the message names the variable."""

    code = "INTERNAL_ERROR"
    http_status = 500


class NotConfiguredError(AIEmployeeError):
    """The channel has no credentials yet: it stays idle and says so."""

    code = "NOT_CONFIGURED"
    http_status = 503


class AuthError(AIEmployeeError):
    """Expired or revoked credentials (401/403 upstream): needs a human, never retried."""

    code = "AUTH_ERROR"
    http_status = 502


class TransientError(AIEmployeeError):
    """Network failure, timeout or 5xx upstream: retry with backoff."""

    code = "UPSTREAM_UNAVAILABLE"
    http_status = 503
    retryable = True


class RateLimitError(TransientError):
    """The platform (or our own policy) says wait ``retry_after`` seconds."""

    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(AIEmployeeError):
    """The upstream API refused the request for a reason retrying will not fix (4xx)."""

    code = "UPSTREAM_ERROR"
    http_status = 502

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OutcomeUndeterminedError(UpstreamError):
    """A server cannot tell whether a write it was asked to make happened, and will not guess by
    doing it again (an irreversible one, or one it cannot look up): final, for the owner to check."""

    outcome = "unknown"


class NotFoundError(AIEmployeeError):
    code = "NOT_FOUND"
    http_status = 404


class ApprovalRequiredError(AIEmployeeError):
    """A write action arrived without a valid grant; a request was filed for the owner."""

    code = "APPROVAL_REQUIRED"
    http_status = 403

    def __init__(self, message: str, *, approval_id: str) -> None:
        super().__init__(message)
        self.approval_id = approval_id


class OutcomeUnknownError(AIEmployeeError):
    """A write may or may not have happened (crash or timeout mid-send): reconcile, never resend blindly."""

    code = "UPSTREAM_UNAVAILABLE"
    http_status = 504


_BY_CODE: dict[str, type[AIEmployeeError]] = {
    cls.code: cls for cls in (ValidationError, NotConfiguredError, AuthError, TransientError, RateLimitError,
                              UpstreamError, NotFoundError)
}


def error_for_code(code: str | None, message: str, *, retry_after: float | None = None,
                   approval_id: str | None = None, field: str | None = None) -> AIEmployeeError:
    """The exception an error envelope (or a recorded failure) stands for, so it can be raised again."""
    if code == "APPROVAL_REQUIRED":
        return ApprovalRequiredError(message, approval_id=approval_id or "")
    if code == "RATE_LIMITED":
        return RateLimitError(message, retry_after=retry_after)
    if code == "VALIDATION_ERROR":
        return ValidationError(message, field=field)
    if code == "OUTCOME_UNKNOWN":
        return OutcomeUndeterminedError(message)
    cls = _BY_CODE.get(code or "")
    if cls is None or cls is UpstreamError:
        return UpstreamError(message)
    return cls(message)
