"""X (Twitter) API v2 configuration: the credentials (never shown), where the API is, and the OAuth 2.0
user token file (JSON, mode 0600, published atomically; never pickle)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.config import check_base_url, env_float
from core.secret_files import write_secret_file

DEFAULT_BASE_URL = "https://api.twitter.com"
REAUTH_HINT = ("reconnect X: regenerate the access token and secret in the X developer portal (OAuth 1.0a), "
               "or sign in again to rewrite X_TOKEN_FILE (OAuth 2.0)")
AuthMode = Literal["oauth1", "oauth2", "app"]


@dataclass(frozen=True, repr=False)
class XConfig:
    bearer_token: str | None = None         # app-only: public reads, never posts
    api_key: str | None = None              # OAuth 1.0a consumer key ...
    api_secret: str | None = None
    access_token: str | None = None         # ... and the account's access token
    access_token_secret: str | None = None
    client_id: str | None = None            # OAuth 2.0 user context: the app, to refresh ...
    client_secret: str | None = None        # (absent for a public client)
    token_file: Path | None = None          # ... the token stored here
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_base_url(self.base_url or DEFAULT_BASE_URL, "X_API_BASE_URL",
                                                                   DEFAULT_BASE_URL))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> XConfig:
        def opt(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None  # X keys and tokens never contain spaces

        token_file = opt("X_TOKEN_FILE")
        return cls(
            bearer_token=opt("X_BEARER_TOKEN"),
            api_key=opt("X_API_KEY"),
            api_secret=opt("X_API_SECRET"),
            access_token=opt("X_ACCESS_TOKEN"),
            access_token_secret=opt("X_ACCESS_TOKEN_SECRET"),
            client_id=opt("X_CLIENT_ID"),
            client_secret=opt("X_CLIENT_SECRET"),
            token_file=Path(token_file).expanduser() if token_file else None,
            base_url=opt("X_API_BASE_URL") or DEFAULT_BASE_URL,
            timeout=env_float(environ, "X_TIMEOUT_SECONDS", 30.0, minimum=0.05),
        )

    @property
    def has_oauth1(self) -> bool:
        return bool(self.api_key and self.api_secret and self.access_token and self.access_token_secret)

    @property
    def has_oauth2(self) -> bool:
        return self.token_file is not None and self.token_file.is_file()

    @property
    def auth_mode(self) -> AuthMode | None:
        """OAuth 1.0a wins when both user contexts are set: its keys never expire, so nothing rotates."""
        if self.has_oauth1:
            return "oauth1"
        if self.has_oauth2:
            return "oauth2"
        return "app" if self.bearer_token else None

    def is_configured(self) -> bool:
        """A user context (the account can post): OAuth 1.0a keys complete, or an OAuth 2.0 token file."""
        return self.has_oauth1 or self.has_oauth2

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values no message may contain (see core.redact.scrub)."""
        return tuple(s for s in (self.bearer_token, self.api_secret, self.access_token, self.access_token_secret,
                                 self.client_secret) if s)

    def __repr__(self) -> str:
        def shown(value: str | None) -> str:
            return "'<set>'" if value else "None"

        return (f"XConfig(mode={self.auth_mode!r}, api_key={shown(self.api_key)}, "
                f"bearer_token={shown(self.bearer_token)}, api_secret={shown(self.api_secret)}, "
                f"access_token={shown(self.access_token)}, access_token_secret={shown(self.access_token_secret)}, "
                f"client_id={self.client_id!r}, client_secret={shown(self.client_secret)}, "
                f"token_file={self.token_file!r}, base_url={self.base_url!r}, timeout={self.timeout!r})")


@dataclass(frozen=True, repr=False)
class OAuth2Token:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # epoch seconds; None: unknown, trusted until X answers 401
    scope: str | None = None

    def expired(self, now: float, margin: float = 60.0) -> bool:
        """Refresh a minute early, so a token does not die between this check and X reading it."""
        return self.expires_at is not None and self.expires_at - margin <= now

    def to_json(self) -> str:
        return json.dumps({"token_type": "bearer", "access_token": self.access_token,
                           "refresh_token": self.refresh_token, "expires_at": self.expires_at, "scope": self.scope})

    @classmethod
    def from_json(cls, text: str) -> OAuth2Token | None:
        """The token in ``text``, or None. Accepts what tweepy's OAuth2UserHandler.fetch_token returns, so
        the sign-in step can dump that dict as is. Not json.JSONDecodeError: it keeps the whole document,
        secrets included, in ``.doc``, so it must not travel in an exception chain."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) or not data["access_token"]:
            return None
        refresh, scope, expires = data.get("refresh_token"), data.get("scope"), data.get("expires_at")
        if isinstance(scope, list):
            scope = " ".join(str(s) for s in scope)
        return cls(access_token=data["access_token"], refresh_token=refresh if isinstance(refresh, str) else None,
                   expires_at=float(expires) if isinstance(expires, (int, float)) else None,
                   scope=scope if isinstance(scope, str) else None)


def save_token(path: Path, token: OAuth2Token) -> None:
    """The token as JSON, mode 0600, published atomically (core.secret_files)."""
    write_secret_file(path, token.to_json())
