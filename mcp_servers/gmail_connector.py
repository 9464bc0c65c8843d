"""Gmail connector: google-api-python-client behind one error family and plain dicts.

Framework-free on purpose: it knows nothing of HTTP servers, the vault or retries. Callers (the
email MCP server, the Gmail watcher) decide what to do with each error class (DESIGN §8).
"""
from __future__ import annotations

import base64
import binascii
import email.policy
import email.utils
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from core.errors import (
    AIEmployeeError,
    AuthError,
    NotConfiguredError,
    RateLimitError,
    TransientError,
    UpstreamError,
    ValidationError,
)

_LOGGER = logging.getLogger(__name__)

SCOPES = (
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.send",
)
KEY_HEADER = "X-AI-Employee-Key"
MESSAGE_ID_DOMAIN = "ai-employee.local"
REAUTH_HINT = "run `python -m mcp_servers.gmail_auth` to sign in again"
# The key becomes part of a Message-ID and a search query: keep it to characters that are safe in both.
_KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded"})
# Where reconcile looks when Gmail did not keep our Message-ID: an unknown outcome is recent by nature.
_RECONCILE_QUERY = "in:sent newer_than:2d"
_RECONCILE_SCAN = 50


class GmailError(AIEmployeeError):
    """Base of every error the Gmail connector raises."""


class GmailAuthError(GmailError, AuthError):
    """The token is expired, revoked or lacks a scope: a human must run gmail_auth."""


class GmailRateLimitError(GmailError, RateLimitError):
    """Gmail asked us to slow down; ``retry_after`` is in seconds when Gmail said so."""


class GmailConnectionError(GmailError, TransientError):
    """Network failure, timeout or 5xx. After a failed send, reconcile with find_sent_by_key first."""


class GmailResponseError(GmailError, UpstreamError):
    """Gmail refused the request (4xx) for a reason retrying will not fix."""


class GmailHistoryExpiredError(GmailError):
    """The history id is too old (404): the caller must resynchronise with a full list."""

    code = "UPSTREAM_ERROR"
    http_status = 502


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


class _TimeoutRequest(google.auth.transport.requests.Request):
    """google-auth refreshes without a timeout argument; give the token endpoint ours."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):  # type: ignore[override]
        return super().__call__(url, method, body, headers, timeout=timeout or self._timeout, **kwargs)


class GmailConnector:
    """Synchronous Gmail client. Thread-safe: each thread gets its own httplib2 connection."""

    def __init__(self, config: GmailConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._local = threading.local()
        self._credentials: Credentials | None = None
        self._token_stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file we loaded/wrote
        self._saved_token: str | None = None
        self._service: Any = None

    # --- plumbing ---------------------------------------------------------------------------------

    def is_configured(self) -> bool:
        return self.config.token_file.is_file()

    def _load_credentials(self) -> Credentials:
        """Load (or reload, when gmail_auth rewrote the file) the token; caller holds the lock."""
        try:
            st = self.config.token_file.stat()
        except FileNotFoundError:
            raise NotConfiguredError(
                f"Gmail is not configured: no token file at {self.config.token_file}; "
                "run `python -m mcp_servers.gmail_auth`"
            ) from None
        stamp = (st.st_mtime_ns, st.st_size)
        if self._credentials is not None and stamp == self._token_stamp:
            return self._credentials
        broken = GmailAuthError(f"Gmail token file {self.config.token_file} is unreadable; {REAUTH_HINT}")
        try:
            text = self.config.token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise broken from err
        # Parsed here rather than by from_authorized_user_file: json.JSONDecodeError keeps the whole
        # document, secrets included, in .doc, so it must not travel in an exception chain.
        info = _parse_json_object(text)
        if info is None:
            raise broken
        try:
            creds = Credentials.from_authorized_user_info(info)  # its errors name fields, not values
        except ValueError as err:
            raise broken from err
        if self.config.token_uri:
            # from_authorized_user_file always resets token_uri to Google's endpoint, and with_token_uri
            # drops the expiry (a copy without expiry counts as never expiring), so carry it over.
            expiry = creds.expiry
            creds = creds.with_token_uri(self.config.token_uri)
            creds.expiry = expiry
        self._credentials, self._token_stamp, self._saved_token = creds, stamp, creds.token
        self._service = None
        return creds

    def _http(self, creds: Credentials) -> google_auth_httplib2.AuthorizedHttp:
        # httplib2.Http is not thread-safe, so one per thread. Refresh-on-401 is ours (see _execute).
        http = getattr(self._local, "http", None)
        if http is None or http.credentials is not creds:
            http = google_auth_httplib2.AuthorizedHttp(
                creds, http=httplib2.Http(timeout=self.config.timeout), refresh_status_codes=()
            )
            self._local.http = http
        return http

    def _ready(self, *, force_refresh: bool = False) -> tuple[Any, google_auth_httplib2.AuthorizedHttp]:
        with self._lock:
            creds = self._load_credentials()
            if force_refresh or not creds.valid:
                self._refresh(creds)
            if self._service is None:
                endpoint = self.config.api_endpoint
                self._service = build(
                    "gmail",
                    "v1",
                    http=self._http(creds),  # carries credentials and our timeout
                    static_discovery=True,
                    cache_discovery=False,
                    client_options={"api_endpoint": endpoint.rstrip("/") + "/"} if endpoint else None,
                )
            return self._service, self._http(creds)

    def _refresh(self, creds: Credentials) -> None:
        try:
            creds.refresh(_TimeoutRequest(self.config.timeout))
        except google.auth.exceptions.RefreshError as err:
            if getattr(err, "retryable", False):
                raise GmailConnectionError("Gmail token endpoint is unavailable") from err
            raise GmailAuthError(f"Gmail authorization expired or was revoked; {REAUTH_HINT}") from err
        except google.auth.exceptions.TransportError as err:
            raise GmailConnectionError("Gmail token endpoint unreachable") from err
        self._persist(creds)
        _LOGGER.info("Gmail access token refreshed")

    def _persist(self, creds: Credentials) -> None:
        if creds.token == self._saved_token:
            return
        try:
            save_token(self.config.token_file, creds)
            st = self.config.token_file.stat()
        except OSError as err:
            # Not fatal: the new access token lives in memory and the refresh token is unchanged.
            _LOGGER.warning("Could not save the refreshed Gmail token to %s: %s", self.config.token_file, err.strerror)
            return
        self._token_stamp, self._saved_token = (st.st_mtime_ns, st.st_size), creds.token

    def _execute(self, build_request, *, history: bool = False) -> dict[str, Any]:
        """Run one API call; the only place that translates library and transport errors.

        ``build_request`` maps the service to a request so a 401 can be retried once after a refresh
        (a rejected request was not processed, so retrying even a send is safe).
        """
        for attempt in (0, 1):
            service, http = self._ready(force_refresh=attempt == 1)
            try:
                return build_request(service).execute(http=http, num_retries=0)
            except HttpError as err:
                status = int(err.resp.status)
                if status == 401 and attempt == 0:
                    continue
                raise _translate_http_error(err, history=history) from err
            except google.auth.exceptions.RefreshError as err:
                raise GmailAuthError(f"Gmail authorization expired or was revoked; {REAUTH_HINT}") from err
            except (google.auth.exceptions.TransportError, httplib2.HttpLib2Error, OSError) as err:
                # OSError covers refused/reset connections and socket timeouts (TimeoutError).
                raise GmailConnectionError(f"Gmail unreachable: {type(err).__name__}") from err
        raise AssertionError("unreachable")

    # --- API --------------------------------------------------------------------------------------

    def get_profile(self) -> dict[str, Any]:
        data = self._execute(lambda s: s.users().getProfile(userId="me"))
        return {"emailAddress": data.get("emailAddress"), "historyId": data.get("historyId")}

    def list_messages(
        self, query: str | None = None, page_token: str | None = None, max_results: int = 50
    ) -> dict[str, Any]:
        q = self.config.query if query is None else query
        data = self._execute(
            lambda s: s.users().messages().list(userId="me", q=q, pageToken=page_token, maxResults=max_results)
        )
        return {
            # Gmail omits "messages" entirely when nothing matches.
            "messages": [{"id": m["id"], "thread_id": m.get("threadId")} for m in data.get("messages", [])],
            "next_page_token": data.get("nextPageToken"),
        }

    def get_message(self, message_id: str) -> dict[str, Any]:
        data = self._execute(lambda s: s.users().messages().get(userId="me", id=message_id, format="full"))
        return normalize_message(data)

    def history_since(self, start_history_id: str | int) -> dict[str, Any]:
        ids: list[str] = []
        seen: set[str] = set()
        newest = str(start_history_id)
        page_token: str | None = None
        while True:
            data = self._execute(
                lambda s, token=page_token: s.users().history().list(
                    userId="me", startHistoryId=str(start_history_id), historyTypes="messageAdded", pageToken=token
                ),
                history=True,
            )
            for record in data.get("history", []):
                for added in record.get("messagesAdded", []):
                    mid = added.get("message", {}).get("id")
                    if mid and mid not in seen:
                        seen.add(mid)
                        ids.append(mid)
            newest = str(data.get("historyId") or newest)
            page_token = data.get("nextPageToken")
            if not page_token:
                return {"message_ids": ids, "history_id": newest}

    def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        cc: str | None = None,
        html: str | None = None,
        in_reply_to: str | None = None,
        references: str | None = None,
        thread_id: str | None = None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Send once. On GmailConnectionError the outcome is unknown: call find_sent_by_key before retrying."""
        mime = build_mime(
            to, subject, body, cc=cc, html=html, in_reply_to=in_reply_to, references=references,
            idempotency_key=idempotency_key,
        )
        payload: dict[str, Any] = {"raw": base64.urlsafe_b64encode(mime.as_bytes()).decode("ascii")}
        if thread_id:
            payload["threadId"] = thread_id
        # A JSON body, not media upload: the upload endpoints are separate paths and proxies often block them.
        data = self._execute(lambda s: s.users().messages().send(userId="me", body=payload))
        return {"id": data.get("id"), "thread_id": data.get("threadId")}

    def find_sent_by_key(self, idempotency_key: str) -> str | None:
        """Reconcile an unknown send outcome: the id of the message sent with this key, or None."""
        _check_key(idempotency_key)
        message_id = message_id_for(idempotency_key)
        # Gmail may replace a client's Message-ID; then the key header on recent sent mail is the evidence.
        for query, limit in ((f"rfc822msgid:{message_id}", 5), (_RECONCILE_QUERY, _RECONCILE_SCAN)):
            for summary in self.list_messages(query, max_results=limit)["messages"]:
                data = self._execute(
                    lambda s, mid=summary["id"]: s.users().messages().get(
                        userId="me", id=mid, format="metadata", metadataHeaders=[KEY_HEADER, "Message-ID"]
                    )
                )
                headers = _headers(data.get("payload") or {})
                if headers.get(KEY_HEADER.lower()) == idempotency_key or headers.get("message-id") == f"<{message_id}>":
                    return summary["id"]
        return None

    def mark_read(self, message_id: str) -> dict[str, Any]:
        data = self._execute(
            lambda s: s.users().messages().modify(userId="me", id=message_id, body={"removeLabelIds": ["UNREAD"]})
        )
        return {"id": data.get("id"), "labels": data.get("labelIds", [])}


def _parse_json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- errors -------------------------------------------------------------------------------------


def _translate_http_error(err: HttpError, *, history: bool) -> GmailError:
    status = int(err.resp.status)
    message, reason = _error_details(err.content)
    text = f"Gmail API {status}: {message}" if message else f"Gmail API {status}"
    if status == 429 or (status == 403 and reason in _RATE_LIMIT_REASONS):
        return GmailRateLimitError(text, retry_after=_retry_after(err.resp.get("retry-after")))
    if status in (401, 403):
        return GmailAuthError(f"{text}; {REAUTH_HINT}")
    if status == 404 and history:
        return GmailHistoryExpiredError(f"{text}; the history id is too old, resynchronise")
    if status >= 500 or status == 408:
        return GmailConnectionError(text)
    return GmailResponseError(text, status=status)


def _error_details(content: bytes | str | None) -> tuple[str, str | None]:
    """Message and first reason from Google's JSON error; never echo a non-JSON body verbatim."""
    try:
        error = json.loads(content or b"{}")["error"]
        reasons = [e.get("reason") for e in error.get("errors", []) if isinstance(e, dict)]
        return str(error.get("message", ""))[:300], next((r for r in reasons if r), None)
    except (ValueError, TypeError, KeyError, AttributeError):
        return "", None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


# --- MIME ---------------------------------------------------------------------------------------


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValidationError("idempotency_key must be 1-128 of A-Z a-z 0-9 . _ -", field="idempotency_key")


def message_id_for(idempotency_key: str) -> str:
    """Deterministic Message-ID (without brackets) so a send can be found again by rfc822msgid:."""
    return f"{idempotency_key}@{MESSAGE_ID_DOMAIN}"


def build_mime(
    to: str,
    subject: str,
    body: str,
    *,
    idempotency_key: str,
    cc: str | None = None,
    html: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> EmailMessage:
    _check_key(idempotency_key)
    if not to or not to.strip():
        raise ValidationError("a recipient is required", field="to")
    msg = EmailMessage(policy=email.policy.SMTP)
    try:
        # The email package refuses CR/LF in header values, which is our header-injection guard.
        msg["To"] = to
        if cc:
            msg["Cc"] = cc
        msg["Subject"] = subject
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = f"<{message_id_for(idempotency_key)}>"
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = references or in_reply_to
        elif references:
            msg["References"] = references
        msg[KEY_HEADER] = idempotency_key
    except ValueError as err:
        raise ValidationError(f"invalid header value: {err}") from err
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def _headers(payload: Mapping[str, Any]) -> dict[str, str]:
    # First occurrence wins, as mail clients do for duplicated headers.
    out: dict[str, str] = {}
    for h in payload.get("headers", []) or []:
        out.setdefault(str(h.get("name", "")).lower(), str(h.get("value", "")))
    return out


def _decode_body(part: Mapping[str, Any]) -> str | None:
    data = (part.get("body") or {}).get("data")
    if not data:
        return None
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None
    charset = "utf-8"
    match = re.search(r'charset="?([^";\s]+)', _headers(part).get("content-type", ""), re.I)
    if match:
        charset = match.group(1)
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _walk(part: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield part
    for child in part.get("parts", []) or []:
        yield from _walk(child)


def normalize_message(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a format=full Gmail message; tolerant of missing payloads and parts."""
    payload = data.get("payload") or {}
    headers = _headers(payload)
    text: str | None = None
    html: str | None = None
    for part in _walk(payload):
        if part.get("filename") or "attachment" in _headers(part).get("content-disposition", "").lower():
            continue
        mime_type = str(part.get("mimeType", "")).lower()
        if mime_type == "text/plain" and text is None:
            text = _decode_body(part)
        elif mime_type == "text/html" and html is None:
            html = _decode_body(part)
    return {
        "id": data.get("id"),
        "thread_id": data.get("threadId"),
        "from": headers.get("from", ""),
        "to": headers.get("to", ""),
        "cc": headers.get("cc", ""),
        "subject": headers.get("subject", ""),
        "date": headers.get("date", ""),
        "snippet": data.get("snippet", ""),
        "labels": list(data.get("labelIds", [])),
        "message_id_header": headers.get("message-id", ""),
        "references": headers.get("references", ""),
        "body_text": text or "",
        "body_html": html or "",
    }
