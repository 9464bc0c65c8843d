"""Odoo's configuration: where the server is, which database, and the credentials (never shown)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.config import check_base_url, env_float



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
            object.__setattr__(self, "url", check_base_url(self.url, "ODOO_URL", "https://mycompany.odoo.com"))

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


