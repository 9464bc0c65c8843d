"""How the connector reaches X: tweepy's v2 ``Client`` on one requests session whose only adapter sends what
tweepy addresses to https://api.twitter.com to ``X_API_BASE_URL`` (and nowhere else), with our timeout; the
OAuth 2.0 token and its one-at-a-time refresher; the last x-rate-limit-* headers seen per endpoint; and the
one place where tweepy and requests exceptions become the XError family."""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import tweepy
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from core.config import is_loopback_host
from core.errors import NotConfiguredError
from social_media_integration.twitter_config import (REAUTH_HINT, OAuth2Token, XConfig, save_token)
from social_media_integration.twitter_errors import XAuthError, XConnectionError, XError, from_http

_LOGGER = logging.getLogger("social_media_integration.twitter")
# tweepy hard-codes api.twitter.com; api.x.com is X's newer name for the same API.
PUBLIC_ORIGINS = ("https://api.twitter.com", "https://api.x.com")
TOKEN_URL = "https://api.twitter.com/2/oauth2/token"


def endpoint_key(method: str, path: str) -> str:
    """X's own name for an endpoint, e.g. ``GET /2/users/:id/tweets``: rate limits are per endpoint, not per URL."""
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if i > 1 and segment.isdigit():  # not the API version ("/2/")
            segments[i] = ":id"
        elif i >= 2 and segments[i - 2:i] == ["by", "username"]:
            segments[i] = ":username"
    return f"{method.upper()} {'/'.join(segments)}"


class RateLimits:
    """The last x-rate-limit-* headers seen per endpoint, for /health and the Dashboard."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, int]] = {}

    def record(self, method: str, path: str, headers: Mapping[str, str]) -> None:
        try:
            window = {name: int(headers[f"x-rate-limit-{name}"]) for name in ("limit", "remaining", "reset")}
        except (KeyError, ValueError):
            return  # the token endpoint, a proxy's error page: nothing to learn
        with self._lock:
            self._seen[endpoint_key(method, path)] = window

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {key: dict(window) for key, window in self._seen.items()}


class BaseURLAdapter(HTTPAdapter):
    """Sends requests for X's public origins to the configured base URL and refuses every other destination
    (defence in depth: a redirect or a future tweepy call must not carry our credentials elsewhere).

    By the time an adapter sees a request, requests has applied ``auth``: an OAuth 1.0a signature covers the
    original https://api.twitter.com URL, which is what X (behind any proxy) verifies.
    """

    def __init__(self, base_url: str, timeout: float, on_response: Callable[[str, str, Mapping[str, str]], None]):
        super().__init__(max_retries=0)  # never resend on our own: a resent POST is a second post
        self._base_url = base_url
        self._base = urlsplit(base_url)
        self._timeout = timeout
        self._on_response = on_response
        self._direct = is_loopback_host((self._base.hostname or "").lower())

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if origin in PUBLIC_ORIGINS:
            path = parts.path
        elif (request.url or "").startswith(self._base_url + "/"):  # already ours (a redirect within the base)
            path = parts.path[len(self._base.path):]
        else:
            raise XError(f"refused to send a request to {parts.hostname or 'an unknown host'}: the X connector only "
                         "talks to X_API_BASE_URL")
        request.url = urlunsplit((self._base.scheme, self._base.netloc, self._base.path + path, parts.query, ""))
        if kwargs.get("timeout") is None:  # tweepy passes none: without ours a dead peer hangs the caller
            kwargs["timeout"] = self._timeout
        if self._direct:
            kwargs["proxies"] = {}  # a loopback base (a test fake, a local proxy) is never reached via a proxy
        response = super().send(request, **kwargs)
        self._on_response(request.method or "GET", path, response.headers)
        return response


class TokenRefresher:
    """The OAuth 2.0 user token, refreshed by one caller at a time.

    X rotates refresh tokens: each refresh spends the one it used. Two refreshes racing would leave one caller
    with a spent token and, if it saved last, the file too. So a refresh runs under a lock (a thread lock plus
    an flock on ``<X_TOKEN_FILE>.lock`` for other processes), and a caller that waited for the lock first
    re-reads the token: when it is no longer the one the caller found stale, someone else refreshed, and that
    result is used instead of refreshing again.
    """

    def __init__(self, config: XConfig, session: requests.Session, clock: Callable[[], float]) -> None:
        assert config.token_file is not None
        self._config = config
        self._path = config.token_file
        self._session = session
        self._clock = clock
        self._lock = threading.Lock()
        self._token: OAuth2Token | None = None
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file as we last read or wrote it
        # The refresh token X last refused, and how: asked again, X would only refuse again, so until the owner
        # signs in (a new token in the file) the refusal is repeated without calling X.
        self._refused: tuple[str, XAuthError] | None = None

    def current(self) -> OAuth2Token:
        """A token that has not expired by its own clock, refreshed first when it has."""
        with self._lock:
            token = self._load()
        return self.refresh(token.access_token) if token.expired(self._clock()) else token

    def refresh(self, stale_access_token: str) -> OAuth2Token:
        """Replace ``stale_access_token`` (expired, or answered 401), unless someone already did."""
        with self._lock, self._file_lock():
            token = self._load()  # another process may have refreshed and rewritten the file meanwhile
            if token.access_token != stale_access_token and not token.expired(self._clock()):
                return token
            if self._refused is not None and self._refused[0] == token.refresh_token:
                raise XAuthError(str(self._refused[1]), status=self._refused[1].status)
            try:
                fresh = self._exchange(token)
            except XAuthError as err:
                self._refused = (token.refresh_token or "", err)
                raise
            try:
                save_token(self._path, fresh)
                st = self._path.stat()
                self._stamp = (st.st_mtime_ns, st.st_size)
            except OSError as err:
                # The new tokens live in memory until the process ends; after that the owner must sign in again.
                _LOGGER.error("Could not save the refreshed X token to %s: %s", self._path, err.strerror)
            self._token = fresh
            _LOGGER.info("X OAuth 2.0 access token refreshed")
            return fresh

    def _load(self) -> OAuth2Token:
        """The token, re-read when the file changed under us; caller holds the lock."""
        try:
            st = self._path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if self._token is not None and stamp == self._stamp:
                return self._token
            token = OAuth2Token.from_json(self._path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as err:
            raise XAuthError(f"X token file {self._path} is missing or unreadable; {REAUTH_HINT}") from err
        if token is None:
            raise XAuthError(f"X token file {self._path} holds no access token; {REAUTH_HINT}")
        self._token, self._stamp = token, stamp
        return token

    def _exchange(self, token: OAuth2Token) -> OAuth2Token:
        client_id, secret = self._config.client_id, self._config.client_secret
        if not client_id:
            raise XAuthError(f"the X OAuth 2.0 token expired and X_CLIENT_ID is not set to refresh it; {REAUTH_HINT}")
        if not token.refresh_token:
            raise XAuthError(f"the X OAuth 2.0 token expired and X_TOKEN_FILE has no refresh token (sign in with "
                             f"the offline.access scope); {REAUTH_HINT}")
        where = "POST /2/oauth2/token"
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token, "client_id": client_id}
        try:  # a confidential client authenticates with HTTP Basic; a public one by client_id alone
            response = self._session.post(TOKEN_URL, data=form, auth=(client_id, secret) if secret else None)
        except XError:
            raise
        except requests.RequestException as err:
            # A timeout here may still have rotated the token at X; nothing to do but report it.
            raise XConnectionError(f"X's token endpoint is unreachable ({type(err).__name__})") from err
        try:
            body = response.json()
        except ValueError:
            body = None  # never chain the decode error: its .doc would be the body, tokens included
        if response.status_code != 200:
            raise from_http(response.status_code, response.headers, body, where=where, now=self._clock(),
                            secrets=self._config.secrets + (token.refresh_token,))
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise XConnectionError("X's token endpoint sent an answer without an access token")
        expires_in = body.get("expires_in")
        rotated = body.get("refresh_token")
        return OAuth2Token(
            access_token=body["access_token"],
            refresh_token=rotated if isinstance(rotated, str) and rotated else token.refresh_token,
            expires_at=self._clock() + float(expires_in) if isinstance(expires_in, (int, float)) else None,
            scope=body.get("scope") if isinstance(body.get("scope"), str) else token.scope,
        )

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        lock_path = self._path.with_name(self._path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # a read-only folder: still serialised within this process
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process dies mid-refresh
            yield
        finally:
            os.close(fd)


class XTransport:
    """Thread-safe. ``call`` runs one tweepy call and is the only place its failures are translated."""

    def __init__(self, config: XConfig, *, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self.limits = RateLimits()
        self.session = session if session is not None else requests.Session()
        adapter = BaseURLAdapter(config.base_url, config.timeout, self.limits.record)
        self.session.adapters.clear()  # ours is the only way out, whatever the session had mounted
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.mode = config.auth_mode
        self.user_auth = self.mode == "oauth1"  # tweepy's switch: True signs OAuth 1.0a, False sends the bearer
        self._refresher = TokenRefresher(config, self.session, clock) if self.mode == "oauth2" else None
        self._fixed = self._client(config.bearer_token) if self.mode in ("oauth1", "app") else None
        self._by_token: tuple[str, tweepy.Client] | None = None
        self._secrets = config.secrets

    def call(self, fn: Callable[[tweepy.Client], Any], *, where: str, write: bool = False) -> Any:
        """``fn(client)`` once; after a 401 on OAuth 2.0, once more with a refreshed token (a 401 means X did
        not act on the request, so even a post is safe to send again). Nothing else is ever retried here."""
        for attempt in (0, 1):
            client, token = self._ready()
            try:
                return fn(client)
            except tweepy.Unauthorized as err:
                if self._refresher is None or token is None or attempt == 1:
                    raise self._translate(err, where, write) from err
                self._refresher.refresh(token)  # XAuthError when X refuses the refresh token
            except tweepy.HTTPException as err:
                raise self._translate(err, where, write) from err
            except XError:
                raise
            except requests.JSONDecodeError as err:  # a 2xx that is not JSON: a proxy's page, a cut answer
                raise XConnectionError(f"X sent an unreadable answer to {where}", outcome_unknown=write) from err
            except requests.RequestException as err:
                raise _connection_error(err, where, write) from err
        raise AssertionError("unreachable")

    def rate_limits(self) -> dict[str, dict[str, int]]:
        return self.limits.snapshot()

    def _ready(self) -> tuple[tweepy.Client, str | None]:
        if self._fixed is not None:
            return self._fixed, None
        if self._refresher is None:
            raise NotConfiguredError("X is not configured: set X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and "
                                     "X_ACCESS_TOKEN_SECRET, or X_TOKEN_FILE (with X_CLIENT_ID)")
        token = self._refresher.current().access_token
        current = self._by_token
        if current is None or current[0] != token:
            # One client per access token rather than mutating client.bearer_token under concurrent callers.
            current = self._by_token = (token, self._client(token))
        return current[1], token

    def _client(self, bearer: str | None) -> tweepy.Client:
        c = self.config
        client = tweepy.Client(bearer_token=bearer, consumer_key=c.api_key, consumer_secret=c.api_secret,
                               access_token=c.access_token, access_token_secret=c.access_token_secret,
                               return_type=dict, wait_on_rate_limit=False)  # a 429 is raised, never slept on
        client.session = self.session
        return client

    def _translate(self, err: tweepy.HTTPException, where: str, write: bool) -> XError:
        response = err.response
        try:
            body = response.json()
        except ValueError:
            body = None
        return from_http(response.status_code, response.headers, body, where=where, now=self._clock(),
                         secrets=self._secrets, write=write)


def _connection_error(err: requests.RequestException, where: str, write: bool) -> XConnectionError:
    # A request that never left (refused, no route, connect timeout) did not post; anything later might have.
    reason = err.args[0].reason if err.args and isinstance(err.args[0], MaxRetryError) else None
    never_sent = isinstance(err, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)
    unknown = write and not never_sent
    kind = "timed out" if isinstance(err, requests.Timeout) else f"is unreachable ({type(err).__name__})"
    doubt = "; X may have acted on it: reconcile before retrying" if unknown else ""
    return XConnectionError(f"X {kind} for {where}{doubt}", outcome_unknown=unknown)
