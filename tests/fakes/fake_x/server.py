"""FakeX: the fake's state, its test controls and request authentication (OAuth 1.0a, OAuth 2.0 bearer)."""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from tests.fakes.fake_x.protocol import (ENDPOINTS, METRIC_FIELDS, SIGNATURE_BASES, TWITTER_EPOCH_MS, WINDOW,
                                         XError, _pct, problem)
from tests.fakes.threaded import Hold, ThreadedServer


@dataclass
class Tweet:
    id: str
    text: str
    author_id: str
    created_at: datetime
    public_metrics: dict[str, int]
    non_public_metrics: dict[str, int]
    organic_metrics: dict[str, int]
    in_reply_to_tweet_id: str | None = None
    deleted: bool = False


@dataclass
class User:
    id: str
    username: str
    name: str
    public_metrics: dict[str, int] = field(default_factory=dict)


@dataclass
class _Bucket:
    limit: int
    remaining: int
    reset: int


@dataclass
class _Fault:
    key: str
    countdown: int
    times: int
    status: int | None  # None: close the connection without answering
    body: dict[str, Any] | None
    headers: dict[str, str]
    after_accept: bool


@dataclass
class _Grant:
    """An authorization code the consent page issued: what the token endpoint checks it against."""
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str  # "S256" or "plain"
    expires_at: float


@dataclass
class _Auth:
    kind: str  # "oauth1" | "oauth2" | "app"
    user_id: str | None


class FakeX(ThreadedServer):
    """The fake's state plus a background thread running the aiohttp app."""

    name = "fake-x"

    def __init__(self, username: str = "acme_studio", *, name: str = "Acme Studio",
                 user_id: str = "1500000000000000001", access_level: str = "read-write",
                 client_type: str = "confidential") -> None:
        self.consumer_key = "ck-" + secrets.token_hex(8)
        self.consumer_secret = "cs-" + secrets.token_hex(16)
        self.access_token = f"{user_id}-" + secrets.token_hex(12)
        self.access_token_secret = "ats-" + secrets.token_hex(16)
        self.bearer_token = "AAAAAAAAAAAAAAAAAAAAA" + secrets.token_hex(16)  # app-only
        self.client_id = "cid-" + secrets.token_hex(8)
        self.client_secret = "csec-" + secrets.token_hex(16)
        # "confidential": the token endpoint wants HTTP Basic (client id, secret); "public": client_id in the body
        self.client_type = client_type
        self.callback_urls: set[str] = set()  # the app's registered callback URIs, matched exactly
        self.consent = "allow"  # what the owner clicks on the consent page: "allow" or "deny"
        self.code_lifetime = 30.0  # X: an authorization code is valid for 30 seconds, once
        self.authorizations: list[dict[str, str]] = []  # the query of each authorize request, as received
        self.oauth2_scope = "tweet.read tweet.write users.read offline.access"
        self.token_lifetime = 7200
        self.access_level = access_level  # "read" makes OAuth 1.0a writes 403 oauth1-permissions
        self.signature_bases: tuple[str, ...] = SIGNATURE_BASES
        self.signed_base_urls: list[str] = []
        self.timestamp_skew = 300
        self.duplicate_window = 86400.0
        self.max_weighted_length = 280
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.user_id = user_id
        self._lock = threading.Lock()
        self._users: dict[str, User] = {user_id: User(user_id, username, name)}
        self._tweets: dict[str, Tweet] = {}
        self._seq = itertools.count(1)
        self._nonces: set[tuple[str, str]] = set()
        self._oauth2: dict[str, float] = {}
        self._codes: dict[str, _Grant] = {}
        self.refresh_token: str | None = "rt-" + secrets.token_urlsafe(24)
        self._buckets: dict[str, _Bucket] = {}
        self._faults: list[_Fault] = []
        super().__init__()

    def build_app(self) -> web.Application:
        from tests.fakes.fake_x.wire import create_app  # the wire module imports this one

        return create_app(self)

    @property
    def username(self) -> str:
        return self._users[self.user_id].username

    # --- test controls (thread-safe) -------------------------------------------------------------

    def add_user(self, username: str, *, name: str | None = None, public_metrics: dict[str, int] | None = None,
                 user_id: str | None = None) -> str:
        with self._lock:
            uid = user_id or str(2_000_000_000 + len(self._users))
            self._users[uid] = User(uid, username, name or username, dict(public_metrics or {}))
            return uid

    def set_user_metrics(self, user_id: str | None = None, **metrics: int) -> None:
        with self._lock:
            self._users[user_id or self.user_id].public_metrics.update(metrics)

    def seed_tweet(self, text: str, *, author_id: str | None = None, created_at: datetime | None = None,
                   public_metrics: dict[str, int] | None = None, non_public_metrics: dict[str, int] | None = None,
                   organic_metrics: dict[str, int] | None = None, in_reply_to: str | None = None) -> str:
        """Store a Tweet as if posted at ``created_at`` (default now); returns its snowflake id."""
        with self._lock:
            return self._store(text, author_id or self.user_id, created_at, in_reply_to,
                               public_metrics, non_public_metrics, organic_metrics).id

    def set_metrics(self, tweet_id: str, **groups: dict[str, int]) -> None:
        """E.g. ``set_metrics(id, public_metrics={"like_count": 3}, non_public_metrics={...})``."""
        with self._lock:
            for name, values in groups.items():
                getattr(self._tweets[tweet_id], name).update(values)

    def tweet(self, tweet_id: str) -> dict[str, Any] | None:
        with self._lock:
            t = self._tweets.get(tweet_id)
            return None if t is None else copy.deepcopy(t.__dict__)

    def tweets(self, author_id: str | None = None, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Stored Tweets, oldest first."""
        with self._lock:
            return [copy.deepcopy(t.__dict__) for t in sorted(self._tweets.values(), key=lambda t: int(t.id))
                    if (author_id is None or t.author_id == author_id) and (include_deleted or not t.deleted)]

    def count(self, key: str) -> int:
        return self.calls[self._check_key(key)]

    def fail(self, key: str, status: int | None, *, nth: int = 1, times: int = 1,
             body: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
             after_accept: bool = False) -> None:
        """Answer the ``nth`` next call to ``key`` (and ``times - 1`` after it) with ``status``.

        ``body`` defaults to X's generic problem for the status; ``status=None`` closes the connection
        without any answer. ``after_accept=True`` lets the request take effect first (the Tweet is stored),
        then fails: an outcome the client cannot know.
        """
        with self._lock:
            self._faults.append(_Fault(self._check_key(key), nth, times, status, body, dict(headers or {}),
                                       after_accept))

    def hold(self, key: str, *, after_accept: bool = False, nth: int = 1) -> Hold:
        """Hold the next call to ``key`` at a barrier: before the fake accepts it (a request whose client
        disconnected meanwhile is then ``abandoned``: nothing is stored), or with ``after_accept=True`` once
        the Tweet is stored, so only the answer waits. ``body`` is the held request's JSON body."""
        return self._add_hold(Hold(self._check_key(key), after=after_accept, skip=nth - 1))

    def set_rate_limit(self, key: str, *, limit: int | None = None, remaining: int | None = None,
                       reset_in: float | None = None) -> None:
        """Shape an endpoint's window; ``remaining=0, reset_in=N`` makes the next call 429 until N s from now."""
        with self._lock:
            bucket = self._bucket(self._check_key(key))
            if limit is not None:
                bucket.limit = limit
                bucket.remaining = min(bucket.remaining, limit)
            if remaining is not None:
                bucket.remaining = remaining
            if reset_in is not None:
                bucket.reset = int(time.time() + reset_in)

    def rate_limit(self, key: str) -> dict[str, int]:
        with self._lock:
            b = self._bucket(self._check_key(key))
            return {"limit": b.limit, "remaining": b.remaining, "reset": b.reset}

    def issue_oauth2_token(self, lifetime: float | None = None) -> str:
        with self._lock:
            return self._issue(lifetime)

    def expire_oauth2_tokens(self) -> None:
        with self._lock:
            for token in self._oauth2:
                self._oauth2[token] = 0.0

    def pending_codes(self) -> int:
        """Authorization codes issued and not yet presented at the token endpoint."""
        with self._lock:
            return len(self._codes)

    def revoke_refresh_token(self) -> None:
        """The owner revoked the app: refresh answers 400 invalid_request and access tokens stop working."""
        with self._lock:
            self.refresh_token = None
            self._oauth2.clear()

    # --- internals (callers hold the lock) -------------------------------------------------------

    @staticmethod
    def _check_key(key: str) -> str:
        if key not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {key!r}; one of {sorted(ENDPOINTS)}")
        return key

    def _issue(self, lifetime: float | None) -> str:
        token = secrets.token_urlsafe(40)
        self._oauth2[token] = time.time() + (self.token_lifetime if lifetime is None else lifetime)
        return token

    def _store(self, text: str, author_id: str, created_at: datetime | None, in_reply_to: str | None,
               public: dict[str, int] | None = None, non_public: dict[str, int] | None = None,
               organic: dict[str, int] | None = None) -> Tweet:
        created = (created_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        ms = int(created.timestamp() * 1000)
        tid = str(((ms - TWITTER_EPOCH_MS) << 22) | (next(self._seq) & 0x3FFFFF))  # a real snowflake
        metrics = {name: dict.fromkeys(fields, 0) for name, fields in METRIC_FIELDS.items()}
        metrics["public_metrics"].update(public or {})
        metrics["non_public_metrics"].update(non_public or {})
        metrics["organic_metrics"].update(organic or {})
        tweet = Tweet(tid, text, author_id, created, metrics["public_metrics"], metrics["non_public_metrics"],
                      metrics["organic_metrics"], in_reply_to)
        self._tweets[tid] = tweet
        return tweet

    def _bucket(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        now = time.time()
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(ENDPOINTS[key], ENDPOINTS[key], int(now + WINDOW))
        elif now >= bucket.reset:
            bucket.remaining, bucket.reset = bucket.limit, int(now + WINDOW)
        return bucket

    def _rate_headers(self, key: str) -> dict[str, str]:
        if not ENDPOINTS[key]:
            return {}
        with self._lock:
            b = self._bucket(key)
            return {"x-rate-limit-limit": str(b.limit), "x-rate-limit-remaining": str(b.remaining),
                    "x-rate-limit-reset": str(b.reset)}

    def _consume(self, key: str) -> None:
        with self._lock:
            bucket = self._bucket(key)
            if bucket.remaining <= 0:
                raise XError(429, problem(429))
            bucket.remaining -= 1

    def _take_fault(self, key: str) -> _Fault | None:
        with self._lock:
            fired = None
            for fault in self._faults:
                if fault.key != key or fault.times <= 0:
                    continue
                fault.countdown -= 1
                if fault.countdown <= 0 and fired is None:
                    fault.times -= 1
                    fired = fault
            self._faults = [f for f in self._faults if f.times > 0]
            return fired

    # --- authentication --------------------------------------------------------------------------

    def _authenticate(self, request: web.Request, form: dict[str, str]) -> _Auth:
        header = request.headers.get("Authorization", "")
        if header.startswith("OAuth "):
            return self._verify_oauth1(request, header[6:], form)
        if header.startswith("Bearer "):
            token = header[7:].strip()
            if hmac.compare_digest(token, self.bearer_token):
                return _Auth("app", None)
            with self._lock:
                expiry = self._oauth2.get(token)
            if expiry is not None and expiry > time.time():
                return _Auth("oauth2", self.user_id)
        raise XError(401, problem(401))

    def _verify_oauth1(self, request: web.Request, header: str, form: dict[str, str]) -> _Auth:
        oauth = {urllib.parse.unquote(k): urllib.parse.unquote(v)
                 for k, v in re.findall(r'([A-Za-z0-9_]+)="([^"]*)"', header)}
        oauth.pop("realm", None)
        signature = oauth.pop("oauth_signature", "")
        unauthorized = XError(401, problem(401))
        if (oauth.get("oauth_consumer_key") != self.consumer_key or oauth.get("oauth_token") != self.access_token
                or oauth.get("oauth_signature_method") != "HMAC-SHA1" or oauth.get("oauth_version", "1.0") != "1.0"):
            raise unauthorized
        try:
            stamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            raise unauthorized from None
        if abs(time.time() - stamp) > self.timestamp_skew:
            raise unauthorized
        params = list(oauth.items())
        params += urllib.parse.parse_qsl(request.query_string, keep_blank_values=True)
        params += list(form.items())
        normalized = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in params))
        key = f"{_pct(self.consumer_secret)}&{_pct(self.access_token_secret)}".encode()
        for base in self.signature_bases:
            uri = base.lower() + request.rel_url.raw_path
            text = "&".join((request.method.upper(), _pct(uri), _pct(normalized)))
            expected = base64.b64encode(hmac.new(key, text.encode(), hashlib.sha1).digest()).decode()
            if hmac.compare_digest(expected, signature):
                with self._lock:
                    nonce = (oauth.get("oauth_nonce", ""), str(stamp))
                    if nonce in self._nonces:  # a replayed request
                        raise unauthorized
                    self._nonces.add(nonce)
                    self.signed_base_urls.append(uri)
                return _Auth("oauth1", self.user_id)
        raise unauthorized
