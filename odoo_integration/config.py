"""Odoo's configuration: where the server is, which database, and the credentials (never shown)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.config import env_float
from core.errors import ConfigError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, repr=False)
class OdooConfig:
    url: str | None = None
    db: str | None = None
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.url:
            object.__setattr__(self, "url", check_url(self.url))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OdooConfig:
        def opt(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        return cls(
            url=opt("ODOO_URL"),
            db=opt("ODOO_DB"),
            username=opt("ODOO_USERNAME"),
            # Secrets are taken as given: leading/trailing spaces may be part of a password.
            password=environ.get("ODOO_PASSWORD") or None,
            api_key=opt("ODOO_API_KEY"),
            timeout=env_float(environ, "ODOO_TIMEOUT_SECONDS", 30.0, minimum=0.1),
        )

    def is_configured(self) -> bool:
        return bool(self.url and self.db and (self.api_key or (self.username and self.password)))

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values no message may contain (see core.redact.scrub)."""
        return tuple(s for s in (self.password, self.api_key) if s)

    def __repr__(self) -> str:
        def shown(secret: str | None) -> str:
            return "'<set>'" if secret else "None"

        return (f"OdooConfig(url={self.url!r}, db={self.db!r}, username={self.username!r}, "
                f"password={shown(self.password)}, api_key={shown(self.api_key)}, timeout={self.timeout!r})")


def check_url(url: str) -> str:
    """The base URL without a trailing slash; https, or plain http on loopback only (DESIGN §7)."""
    # The URL itself is not echoed: a pasted URL may carry a password in its userinfo.
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError("ODOO_URL is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError("ODOO_URL must be an http(s) URL such as https://mycompany.odoo.com")
    if parts.username or parts.password:
        raise ConfigError("ODOO_URL must not contain credentials; use ODOO_USERNAME and ODOO_PASSWORD or ODOO_API_KEY")
    if parts.query or parts.fragment:
        raise ConfigError("ODOO_URL must not have a query or fragment")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ConfigError("ODOO_URL must use https (plain http only on 127.0.0.1, ::1 or localhost)")
    return url.strip().rstrip("/")
