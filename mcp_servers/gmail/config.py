"""Gmail's configuration and its token file (JSON, mode 0600, never pickle)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.oauth2.credentials import Credentials

from core.secret_files import write_secret_file

SCOPES = (
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.send",
)
REAUTH_HINT = "run `python -m mcp_servers.gmail_auth` to sign in again"


@dataclass(frozen=True)
class GmailConfig:
    credentials_file: Path
    token_file: Path
    api_endpoint: str | None = None
    token_uri: str | None = None
    query: str = "is:unread is:important"
    timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GmailConfig:
        def opt(name: str) -> str | None:
            return environ.get(name, "").strip() or None

        return cls(
            credentials_file=Path(opt("GMAIL_CREDENTIALS_FILE") or "credentials.json").expanduser(),
            token_file=Path(opt("GMAIL_TOKEN_FILE") or "token.json").expanduser(),
            api_endpoint=opt("GMAIL_API_ENDPOINT"),
            token_uri=opt("GMAIL_TOKEN_URI"),
            query=opt("GMAIL_QUERY") or cls.query,
        )

    def is_configured(self) -> bool:
        return self.token_file.is_file()


def save_token(path: Path, credentials: Credentials) -> None:
    """The token as JSON, mode 0600, published atomically (core.secret_files)."""
    write_secret_file(path, credentials.to_json())


def parse_token(text: str) -> dict[str, Any] | None:
    """The token file's JSON object, or None. Not json.JSONDecodeError: it keeps the whole document,
    secrets included, in ``.doc``, so it must not travel in an exception chain."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
