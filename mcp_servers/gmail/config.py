"""Gmail's configuration and its token file (JSON, mode 0600, never pickle)."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.oauth2.credentials import Credentials

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
    """Publish the token JSON atomically with mode 0600, so a crash never leaves half a token."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600 and os.replace publishes that inode, so the token is never readable
    # by others, not even for a moment; the rename makes a crash leave either the old or the new token.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(credentials.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_token(text: str) -> dict[str, Any] | None:
    """The token file's JSON object, or None. Not json.JSONDecodeError: it keeps the whole document,
    secrets included, in ``.doc``, so it must not travel in an exception chain."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
