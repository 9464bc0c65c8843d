"""One helper that removes secrets from anything headed for a log, the audit trail or an error."""
from __future__ import annotations

import re
from typing import Any

SECRET_KEYS = frozenset({
    "password", "passwd", "secret", "token", "access_token", "refresh_token", "api_key", "apikey",
    "authorization", "client_secret", "bearer", "cookie", "session", "private_key", "llm_api_key",
    "odoo_password", "odoo_api_key", "meta_access_token", "x_bearer_token", "x_api_secret",
    "x_access_token_secret", "mcp_auth_token",
})
REDACTED = "**REDACTED**"
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in SECRET_KEYS or lowered.endswith(("_token", "_secret", "_password", "_api_key"))


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys masked and bearer tokens cut out of strings."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _BEARER.sub(r"\1" + REDACTED, value)
    return value


def scrub(text: str, secrets: list[str | None]) -> str:
    """Remove known secret values (from the settings) from free text such as an error message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _BEARER.sub(r"\1" + REDACTED, text)
