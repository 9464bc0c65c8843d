"""A protocol-faithful fake of the Gmail REST API v1 and Google's OAuth token endpoint.

It is a real aiohttp application on 127.0.0.1 (port 0), so the real google-api-python-client talks to
it over the wire exactly as it would to gmail.googleapis.com: same paths (see the static discovery
document googleapiclient/discovery_cache/documents/gmail.v1.json), same query parameters, same JSON
field names, Google's error shape, Bearer tokens that expire and a refresh grant that can be revoked.

Tests drive it through ``FakeGmail``: add mail, inspect what was sent, inject failures.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import email
import email.utils
import email.policy
import html
import itertools
import json
import mimetypes
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.threaded import Hold, ThreadedServer

SCOPES = ("https://www.googleapis.com/auth/gmail.modify", "https://www.googleapis.com/auth/gmail.send")
_API = "/gmail/v1/users/{user}"
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_REASONS = {
    400: "invalidArgument", 401: "authError", 403: "insufficientPermissions", 404: "notFound",
    429: "rateLimitExceeded", 500: "backendError", 503: "backendError",
}
_DEFAULT_MESSAGES = {
    400: "Invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential.",
    403: "Request had insufficient authentication scopes.",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
FAKE = web.AppKey("fake_gmail", "FakeGmail")


class GoogleError(Exception):
    """Raised inside handlers; the middleware answers it in Google's JSON error shape."""

    def __init__(self, status: int, message: str | None = None, reason: str | None = None, headers=None) -> None:
        super().__init__(message)
        self.status, self.headers = status, dict(headers or {})
        self.message = message or _DEFAULT_MESSAGES.get(status, "Error.")
        self.reason = reason or _DEFAULT_REASONS.get(status, "unknown")


def google_error_body(status: int, message: str, reason: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }


@dataclass
class _Injection:
    match: str
    status: int | None
    times: int
    headers: dict[str, str]
    reason: str | None
    delay: float


@dataclass
class _Message:
    id: str
    thread_id: str
    labels: list[str]
    raw: bytes
    internal_date: int  # ms since the epoch, as Gmail reports it
    history_id: int
    mime: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        self.mime = email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[assignment]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _text_parts(msg: EmailMessage) -> tuple[str, str]:
    text = html_body = ""
    for part in msg.walk():
        if part.is_multipart() or part.get_filename():
            continue
        if part.get_content_type() == "text/plain" and not text:
            text = part.get_content()
        elif part.get_content_type() == "text/html" and not html_body:
            html_body = part.get_content()
    return text, html_body


class FakeGmail(ThreadedServer):
    """The fake's state plus a background thread running the aiohttp app with its own event loop."""

    name = "fake-gmail"
    url_path = "/"  # google-api-python-client joins paths onto an endpoint that ends in "/"

    def build_app(self) -> web.Application:
        return create_app(self)

    def __init__(self, email_address: str = "owner@example.com", *, token_lifetime: int = 3599) -> None:
        self.email = email_address
        self.token_lifetime = token_lifetime
        self.client_id = "fake-client.apps.googleusercontent.com"
        self.client_secret = "fake-secret-" + secrets.token_hex(8)
        self.refresh_token = "1//fake-refresh-" + secrets.token_hex(8)
        self.refresh_count = 0
        self.auth_failures = 0  # 401s answered for a missing, unknown or expired Bearer token
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API call, for assertions
        self.sent: list[dict[str, Any]] = []
        # When true, behave like a server that assigns its own Message-ID on send.
        self.rewrite_message_id = False
        self._lock = threading.Lock()
        self._messages: dict[str, _Message] = {}
        self._history: list[dict[str, Any]] = []
        self._history_id = 1000
        self._oldest_history_id = 0
        self._access_tokens: dict[str, float] = {}
        self._revoked = False
        self._injections: list[_Injection] = []
        self._ids = itertools.count(0x18C3A0B0C0D00000)
        self._clock = itertools.count(1)  # keeps internalDate strictly increasing
        super().__init__()

    # --- addresses --------------------------------------------------------------------------------

    @property
    def token_uri(self) -> str:
        return f"{self.url}token"

    # --- state manipulation (thread-safe) ---------------------------------------------------------

    def add_message(
        self,
        from_: str,
        to: str,
        subject: str,
        body: str,
        labels: Sequence[str] = ("UNREAD", "IMPORTANT", "INBOX"),
        thread_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        html: str | None = None,
        attachments: Iterable[tuple[str, bytes]] = (),
    ) -> str:
        """Deliver a message to the mailbox (multipart when html or attachments are given); returns its id."""
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = from_, to, subject
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = email.utils.make_msgid(domain="mail.example.com")
        for name, value in (headers or {}).items():
            del msg[name]
            msg[name] = value
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        for filename, data in attachments:
            maintype, subtype = (mimetypes.guess_type(filename)[0] or "application/octet-stream").split("/")
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        return self.add_raw(msg.as_bytes(), labels=labels, thread_id=thread_id)

    def add_raw(self, raw: bytes, labels: Sequence[str] = ("UNREAD", "INBOX"), thread_id: str | None = None) -> str:
        """Deliver an RFC 822 message as is (e.g. a captured fixture); returns its id."""
        with self._lock:
            return self._store(raw, list(labels), thread_id).id

    def inject(
        self,
        match: str,
        status: int | None,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        *,
        reason: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Fail the next ``times`` requests whose HTTP method equals or path contains ``match``.

        ``status=None`` only delays (``delay`` seconds) and then answers normally, to provoke timeouts.
        """
        with self._lock:
            self._injections.append(_Injection(match, status, times, dict(headers or {}), reason, delay))

    def hold(self, match: str, *, after: bool = False) -> Hold:
        """Hold the next request whose method equals or path contains ``match`` open until
        ``release()``: before Gmail reads it (``release(drop=True)`` then drops it unread), or with
        ``after`` once Gmail has done it, so only the answer waits. ``arrived`` says it is held."""
        return self._add_hold(Hold(match, after=after))

    def expire_history(self) -> None:
        """Forget history: any startHistoryId older than the current one now answers 404."""
        with self._lock:
            self._oldest_history_id = self._history_id

    def revoke_token(self) -> None:
        """The owner revoked access: refresh answers invalid_grant and access tokens stop working."""
        with self._lock:
            self._revoked = True
            self._access_tokens.clear()

    def issue_access_token(self, lifetime: float | None = None) -> str:
        with self._lock:
            return self._issue(lifetime)

    @property
    def history_id(self) -> str:
        with self._lock:
            return str(self._history_id)

    def labels_of(self, message_id: str) -> list[str]:
        with self._lock:
            return list(self._messages[message_id].labels)

    # --- internals (callers hold the lock) --------------------------------------------------------

    def _issue(self, lifetime: float | None = None) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        self._access_tokens[token] = time.time() + (self.token_lifetime if lifetime is None else lifetime)
        return token

    def _next_history(self, record: dict[str, Any]) -> int:
        self._history_id += 1
        self._history.append({"id": self._history_id, **record})
        return self._history_id

    def _store(self, raw: bytes, labels: list[str], thread_id: str | None) -> _Message:
        mid = format(next(self._ids), "x")
        internal = int(time.time() * 1000) + next(self._clock)
        msg = _Message(mid, thread_id or mid, labels, raw, internal, 0)
        self._messages[mid] = msg
        ref = {"id": mid, "threadId": msg.thread_id}
        msg.history_id = self._next_history(
            {"messages": [ref], "messagesAdded": [{"message": {**ref, "labelIds": list(labels)}}]}
        )
        return msg

    def _take_injection(self, method: str, path: str) -> _Injection | None:
        with self._lock:
            for inj in self._injections:
                if inj.times > 0 and (inj.match == method or inj.match in path):
                    inj.times -= 1
                    return inj
        return None

    def _check_bearer(self, header: str | None) -> None:
        token = header[7:] if header and header.startswith("Bearer ") else None
        with self._lock:
            expiry = self._access_tokens.get(token or "")
        if expiry is None or expiry < time.time():
            with self._lock:
                self.auth_failures += 1
            raise GoogleError(401, headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})


# --- the wire -----------------------------------------------------------------------------------


def _payload(part: EmailMessage, part_id: str, only_headers: set[str] | None) -> dict[str, Any]:
    headers = [{"name": k, "value": str(v)} for k, v in part.items()]
    if only_headers is not None:
        return {
            "mimeType": part.get_content_type(),
            "headers": [h for h in headers if h["name"].lower() in only_headers] if only_headers else headers,
        }
    out: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": headers,
    }
    if part.is_multipart():
        out["body"] = {"size": 0}
        out["parts"] = [
            _payload(child, f"{part_id}.{i}" if part_id else str(i), None)  # type: ignore[arg-type]
            for i, child in enumerate(part.get_payload())
        ]
        return out
    data = part.get_payload(decode=True) or b""
    if out["filename"]:
        out["body"] = {"attachmentId": "ANGjdJ" + secrets.token_urlsafe(12), "size": len(data)}
    else:
        out["body"] = {"size": len(data), "data": _b64url(data)} if data else {"size": 0}
    return out


def _snippet(msg: EmailMessage) -> str:
    text, html_body = _text_parts(msg)
    plain = text or re.sub(r"<[^>]+>", " ", html_body)
    return html.escape(" ".join(plain.split())[:200]).replace("&#x27;", "&#39;")


def _resource(msg: _Message, fmt: str, metadata_headers: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": msg.id,
        "threadId": msg.thread_id,
        "labelIds": list(msg.labels),
        "snippet": _snippet(msg.mime),
        "sizeEstimate": len(msg.raw),
        "historyId": str(msg.history_id),
        "internalDate": str(msg.internal_date),
    }
    if fmt == "full":
        out["payload"] = _payload(msg.mime, "", None)
    elif fmt == "metadata":
        out["payload"] = _payload(msg.mime, "", {h.lower() for h in metadata_headers})
    elif fmt == "raw":
        out["raw"] = _b64url(msg.raw)
    elif fmt != "minimal":
        raise GoogleError(400, f"Invalid value at 'format' ({fmt})")
    return out


_TOKEN_RE = re.compile(r'(-?)(?:([A-Za-z_]+):)?("[^"]*"|\S+)')
_LABEL_ALIASES = {"unread": "UNREAD", "important": "IMPORTANT", "starred": "STARRED"}


def _matches(msg: _Message, query: str) -> bool:
    headers = {k.lower(): str(v) for k, v in msg.mime.items()}
    text, html_body = _text_parts(msg.mime)
    haystack = " ".join([headers.get("subject", ""), headers.get("from", ""), headers.get("to", ""), text, html_body])
    for neg, op, value in _TOKEN_RE.findall(query):
        value = value.strip('"')
        op = op.lower()
        if op == "is" and value.lower() == "read":
            hit = "UNREAD" not in msg.labels
        elif op == "is":
            hit = _LABEL_ALIASES.get(value.lower(), value.upper()) in msg.labels
        elif op in ("in", "label"):
            hit = value.upper() in {label.upper() for label in msg.labels}
        elif op == "rfc822msgid":
            hit = headers.get("message-id", "").strip("<>") == value.strip("<>")
        elif op in ("from", "to", "cc", "subject"):
            hit = value.lower() in headers.get(op, "").lower()
        elif op in ("newer_than", "older_than"):
            m = re.fullmatch(r"(\d+)([dmy])", value)
            if not m:
                raise GoogleError(400, f"Invalid query: {op}:{value}")
            days = int(m.group(1)) * {"d": 1, "m": 31, "y": 366}[m.group(2)]
            newer = msg.internal_date >= (time.time() - days * 86400) * 1000
            hit = newer if op == "newer_than" else not newer
        else:  # Gmail treats anything else, operator-looking or not, as words to find.
            words = f"{op}:{value}" if op else value
            hit = words.lower() in haystack.lower()
        if hit == bool(neg):
            return False
    return True


def _page(items: list[Any], request: web.Request, default: int) -> tuple[list[Any], str | None]:
    try:
        size = min(int(request.query.get("maxResults", default)), 500)
        start = int(request.query.get("pageToken", "0"))
    except ValueError:
        raise GoogleError(400, "Invalid pageToken or maxResults") from None
    end = start + max(size, 1)
    return items[start:end], (str(end) if end < len(items) else None)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GoogleError(400, "Invalid JSON payload received.") from None
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received.")
    return body


def _user(request: web.Request) -> FakeGmail:
    fake = request.app[FAKE]
    if request.match_info["user"] not in ("me", fake.email):
        raise GoogleError(403, "Delegation denied for " + fake.email, "forbidden")
    return fake


async def profile(request: web.Request) -> web.Response:
    fake = _user(request)
    with fake._lock:
        threads = {m.thread_id for m in fake._messages.values()}
        return web.json_response(
            {"emailAddress": fake.email, "messagesTotal": len(fake._messages), "threadsTotal": len(threads),
             "historyId": str(fake._history_id)}
        )


async def list_messages(request: web.Request) -> web.Response:
    fake = _user(request)
    q = request.query.get("q", "")
    wanted = request.query.getall("labelIds", [])
    spam_ok = request.query.get("includeSpamTrash") == "true" or re.search(r"\bin:(spam|trash)\b", q, re.I)
    with fake._lock:
        found = [
            m for m in sorted(fake._messages.values(), key=lambda m: m.internal_date, reverse=True)
            if (spam_ok or not {"SPAM", "TRASH"} & set(m.labels))
            and all(label in m.labels for label in wanted)
            and _matches(m, q)
        ]
    page, next_token = _page(found, request, 100)
    out: dict[str, Any] = {"resultSizeEstimate": len(found)}
    if page:  # Gmail omits the key when nothing matches
        out["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
    if next_token:
        out["nextPageToken"] = next_token
    return web.json_response(out)


async def get_message(request: web.Request) -> web.Response:
    fake = _user(request)
    with fake._lock:
        msg = fake._messages.get(request.match_info["id"])
        if msg is None:
            raise GoogleError(404)
        return web.json_response(
            _resource(msg, request.query.get("format", "full"), request.query.getall("metadataHeaders", []))
        )


async def send_message(request: web.Request) -> web.Response:
    fake = _user(request)
    body = await _json_body(request)
    if not body.get("raw"):
        raise GoogleError(400, "'raw' RFC822 payload message string or uploading message via /upload/* URL required")
    try:
        raw = _b64url_decode(body["raw"])
    except (binascii.Error, ValueError, TypeError):
        raise GoogleError(400, "Invalid value for ByteString") from None
    mime: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[assignment]
    if not (mime["To"] or mime["Cc"] or mime["Bcc"]):
        raise GoogleError(400, "Recipient address required")
    if mime["From"] is None:
        mime["From"] = fake.email
    if fake.rewrite_message_id or mime["Message-ID"] is None:
        del mime["Message-ID"]
        mime["Message-ID"] = email.utils.make_msgid(domain="mail.gmail.com")
    with fake._lock:
        thread_id = body.get("threadId")
        if thread_id and not any(m.thread_id == thread_id for m in fake._messages.values()):
            raise GoogleError(400, "Invalid thread_id value")
        msg = fake._store(mime.as_bytes(), ["SENT"], thread_id)
        text, html_body = _text_parts(msg.mime)
        headers: dict[str, str] = {}
        for name, value in msg.mime.items():
            headers.setdefault(name, str(value))
        fake.sent.append(
            {"id": msg.id, "thread_id": msg.thread_id, "to": str(mime["To"] or ""), "cc": str(mime["Cc"] or ""),
             "subject": str(mime["Subject"] or ""), "body": text, "html": html_body, "headers": headers,
             "raw": msg.raw}
        )
    return web.json_response({"id": msg.id, "threadId": msg.thread_id, "labelIds": ["SENT"]})


async def modify_message(request: web.Request) -> web.Response:
    fake = _user(request)
    body = await _json_body(request)
    add, remove = list(body.get("addLabelIds") or []), list(body.get("removeLabelIds") or [])
    with fake._lock:
        msg = fake._messages.get(request.match_info["id"])
        if msg is None:
            raise GoogleError(404)
        added = [label for label in add if label not in msg.labels]
        removed = [label for label in remove if label in msg.labels]
        msg.labels = [label for label in msg.labels if label not in removed] + added
        ref = {"id": msg.id, "threadId": msg.thread_id}
        changed = {"message": {**ref, "labelIds": list(msg.labels)}}
        record: dict[str, Any] = {"messages": [ref]}
        if added:
            record["labelsAdded"] = [{**changed, "labelIds": added}]
        if removed:
            record["labelsRemoved"] = [{**changed, "labelIds": removed}]
        if added or removed:
            msg.history_id = fake._next_history(record)
        return web.json_response({**ref, "labelIds": list(msg.labels)})


_HISTORY_KEYS = {"messageAdded": "messagesAdded", "messageDeleted": "messagesDeleted",
                 "labelAdded": "labelsAdded", "labelRemoved": "labelsRemoved"}


async def list_history(request: web.Request) -> web.Response:
    fake = _user(request)
    try:
        start = int(request.query["startHistoryId"])
    except (KeyError, ValueError):
        raise GoogleError(400, "Invalid startHistoryId") from None
    keys = [_HISTORY_KEYS[t] for t in request.query.getall("historyTypes", []) if t in _HISTORY_KEYS]
    with fake._lock:
        if start < fake._oldest_history_id:
            raise GoogleError(404)
        records = []
        for record in fake._history:
            if record["id"] <= start:
                continue
            if keys:
                if not any(k in record for k in keys):
                    continue
                record = {k: v for k, v in record.items() if k in ("id", "messages", *keys)}
            records.append({**record, "id": str(record["id"])})
        current = str(fake._history_id)
    page, next_token = _page(records, request, 100)
    out: dict[str, Any] = {"historyId": current}
    if page:
        out["history"] = page
    if next_token:
        out["nextPageToken"] = next_token
    return web.json_response(out)


async def token(request: web.Request) -> web.Response:
    """Google's OAuth 2.0 token endpoint, refresh_token grant only."""
    fake = request.app[FAKE]
    form = await request.post()
    if form.get("grant_type") != "refresh_token":
        return web.json_response({"error": "unsupported_grant_type"}, status=400)
    if form.get("client_id") != fake.client_id or form.get("client_secret") != fake.client_secret:
        return web.json_response(
            {"error": "invalid_client", "error_description": "The OAuth client was not found."}, status=401
        )
    with fake._lock:
        if fake._revoked or form.get("refresh_token") != fake.refresh_token:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, status=400
            )
        fake.refresh_count += 1
        access = fake._issue()
    return web.json_response(
        {"access_token": access, "expires_in": fake.token_lifetime, "scope": " ".join(SCOPES), "token_type": "Bearer"}
    )


@web.middleware
async def _google_middleware(request: web.Request, handler) -> web.StreamResponse:
    fake = request.app[FAKE]
    is_api = request.path.startswith("/gmail/")
    if is_api:
        fake.requests.append((request.method, request.path))
    try:
        hold = fake._take_hold(lambda h: h.match == request.method or h.match in request.path)
        if hold is not None and not hold.after:
            await hold.wait(request)
            if hold.dropped:
                raise GoogleError(503, "the request was dropped before it was read")
        injection = fake._take_injection(request.method, request.path)
        if injection is not None:
            if injection.delay:
                await asyncio.sleep(injection.delay)
            if injection.status is not None:
                if request.path == "/token":
                    return web.json_response({"error": "server_error"}, status=injection.status,
                                             headers=injection.headers)
                raise GoogleError(injection.status, reason=injection.reason, headers=injection.headers)
        if is_api:
            fake._check_bearer(request.headers.get("Authorization"))
        response = await handler(request)
        if hold is not None and hold.after:
            await hold.wait(request)
        return response
    except GoogleError as err:
        return web.json_response(google_error_body(err.status, err.message, err.reason),
                                 status=err.status, headers=err.headers)
    except web.HTTPNotFound:
        return web.json_response(google_error_body(404, "Not Found", "notFound"), status=404)
    except web.HTTPMethodNotAllowed:
        return web.json_response(google_error_body(405, "Method Not Allowed", "methodNotAllowed"), status=405)


def create_app(fake: FakeGmail) -> web.Application:
    app = web.Application(middlewares=[_google_middleware])
    app[FAKE] = fake
    app.router.add_post("/token", token)
    app.router.add_get(f"{_API}/profile", profile)
    app.router.add_get(f"{_API}/messages", list_messages)
    app.router.add_post(f"{_API}/messages/send", send_message)
    app.router.add_get(f"{_API}/messages/{{id}}", get_message)
    app.router.add_post(f"{_API}/messages/{{id}}/modify", modify_message)
    app.router.add_get(f"{_API}/history", list_history)
    return app


def write_token_file(path: Path, fake: FakeGmail, *, expired: bool = False) -> Path:
    """Write an authorized-user token JSON (as gmail_auth would) for ``fake``'s OAuth client, mode 0600.

    ``expired=True`` writes a stale access token, so the first API call must refresh.
    """
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # google-auth stores naive UTC
    if expired:
        access, expiry = "ya29.stale-" + secrets.token_hex(4), now - timedelta(hours=1)
    else:
        access, expiry = fake.issue_access_token(), now + timedelta(seconds=fake.token_lifetime)
    info = {
        "token": access,
        "refresh_token": fake.refresh_token,
        "token_uri": fake.token_uri,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "scopes": list(SCOPES),
        "expiry": expiry.isoformat() + "Z",
    }
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    return path
