"""Each credential's age and expiry (DESIGN §7): the suite never stores a secret, only a fingerprint of
it and when that fingerprint was first seen, so a rotated key starts a new age. A reminder task is due
at 80 days (the seed's 90-day rotation) or ten days ahead of the platform's own expiry (a Meta user token
lives 60 days; an Odoo API key until the date its owner gave it, ODOO_API_KEY_EXPIRES)."""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from core.errors import ConfigError
from core.state import StateStore

ROTATE_AFTER_DAYS = 80
WARN_BEFORE_EXPIRY_DAYS = 10
DAY = 86400.0


@dataclass(frozen=True)
class Credential:
    name: str                       # what the owner calls it: "X access token"
    variables: tuple[str, ...]      # where its secret parts are (environment variables)
    file_variable: str | None = None  # or a token file (its content is the secret)
    lifetime_days: float | None = None  # the platform's own lifetime, from when it was issued
    expires_variable: str | None = None  # or an expiry date the owner set (YYYY-MM-DD)
    how: str = ""                   # how to rotate it


KNOWN = (
    Credential("Gmail token", (), file_variable="GMAIL_TOKEN_FILE",
               how="run `python -m mcp_servers.gmail_auth` again"),
    Credential("X access token", ("X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET"),
               how="regenerate it in the X developer portal and update .env"),
    Credential("X app secret", ("X_API_SECRET", "X_CLIENT_SECRET"),
               how="regenerate the app's keys in the X developer portal and update .env"),
    Credential("Meta access token", ("META_ACCESS_TOKEN",), lifetime_days=60,
               how="get a new long-lived token for the Meta app and update META_ACCESS_TOKEN"),
    Credential("Meta Page token", ("META_PAGE_ACCESS_TOKEN",),
               how="get a new Page token and update META_PAGE_ACCESS_TOKEN"),
    Credential("Odoo API key", ("ODOO_API_KEY", "ODOO_PASSWORD"), expires_variable="ODOO_API_KEY_EXPIRES",
               how="create a new API key in Odoo (Preferences → Account Security) and update ODOO_API_KEY"),
    Credential("LLM API key", ("LLM_API_KEY",), how="create a new key with the model's provider"),
    Credential("MCP auth token", ("MCP_AUTH_TOKEN",), how="set a new random MCP_AUTH_TOKEN and restart"),
)


@dataclass(frozen=True)
class Seen:
    credential: Credential
    fingerprint: str
    first_seen: float
    expires: float | None

    def age_days(self, now: float) -> float:
        return (now - self.first_seen) / DAY

    def reminder_due(self, now: float) -> str | None:
        """Why a reminder is due now, or None."""
        if self.expires is not None and now >= self.expires - WARN_BEFORE_EXPIRY_DAYS * DAY:
            when = time.strftime("%Y-%m-%d", time.localtime(self.expires))
            return f"expires on {when}" if now < self.expires else f"expired on {when}"
        if self.age_days(now) >= ROTATE_AFTER_DAYS:
            return f"is {self.age_days(now):.0f} days old (rotate every 90 days)"
        return None


def _secret(c: Credential, env: Mapping[str, str], base: Path) -> str | None:
    if c.file_variable:
        raw = (env.get(c.file_variable) or "").strip()
        path = Path(raw) if raw else None
        if path is not None and not path.is_absolute():
            path = base / path
        try:
            return path.read_text("utf-8") if path is not None and path.is_file() else None
        except OSError:
            return None
    values = [(env.get(v) or "").strip() for v in c.variables]
    return "\x00".join(values) if any(values) else None


def _expiry(c: Credential, env: Mapping[str, str], first_seen: float) -> float | None:
    if c.expires_variable and (raw := (env.get(c.expires_variable) or "").strip()):
        try:
            return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time()).astimezone().timestamp()
        except ValueError:
            raise ConfigError(f"{c.expires_variable} must be a date such as 2027-02-01, not {raw!r}") from None
    return first_seen + c.lifetime_days * DAY if c.lifetime_days else None


def survey(state: StateStore, env: Mapping[str, str], *, base: Path, now: float | None = None) -> list[Seen]:
    """The configured credentials, each with its age (recorded in the state store by fingerprint)."""
    now = time.time() if now is None else now
    out = []
    for c in KNOWN:
        secret = _secret(c, env, base)
        if secret is None:
            continue
        fingerprint = hashlib.sha256(f"{c.name}\x00{secret}".encode()).hexdigest()[:16]
        first_seen = state.credential_seen(c.name, fingerprint, now)
        out.append(Seen(c, fingerprint, first_seen, _expiry(c, env, first_seen)))
    return out
