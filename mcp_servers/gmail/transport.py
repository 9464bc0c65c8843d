"""How the connector reaches Gmail: the token file's credentials (reloaded when gmail_auth rewrites
it, refreshed with our timeout), one httplib2 connection per thread, the API client, and the one
place where library and transport errors become the connector's error family."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from core.errors import NotConfiguredError
from mcp_servers.gmail.config import REAUTH_HINT, GmailConfig, parse_token, save_token
from mcp_servers.gmail.errors import GmailAuthError, GmailConnectionError, translate_http_error

_LOGGER = logging.getLogger("mcp_servers.gmail")


class _TimeoutRequest(google.auth.transport.requests.Request):
    """google-auth refreshes without a timeout argument; give the token endpoint ours."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):  # type: ignore[override]
        return super().__call__(url, method, body, headers, timeout=timeout or self._timeout, **kwargs)


class GmailTransport:
    """Thread-safe: each thread gets its own httplib2 connection."""

    def __init__(self, config: GmailConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._local = threading.local()
        self._credentials: Credentials | None = None
        self._token_stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file we loaded/wrote
        self._saved_token: str | None = None
        self._service: Any = None

    def execute(self, build_request: Callable[[Any], Any], *, history: bool = False) -> dict[str, Any]:
        """Run one API call; the only place that translates library and transport errors.

        ``build_request`` maps the service to a request so a 401 can be retried once after a refresh
        (a rejected request was not processed, so retrying even a send is safe).
        """
        for attempt in (0, 1):
            service, http = self._ready(force_refresh=attempt == 1)
            try:
                return build_request(service).execute(http=http, num_retries=0)
            except HttpError as err:
                if int(err.resp.status) == 401 and attempt == 0:
                    continue
                raise translate_http_error(err, history=history) from err
            except google.auth.exceptions.RefreshError as err:
                raise GmailAuthError(f"Gmail authorization expired or was revoked; {REAUTH_HINT}") from err
            except (google.auth.exceptions.TransportError, httplib2.HttpLib2Error, OSError) as err:
                # OSError covers refused/reset connections and socket timeouts (TimeoutError).
                raise GmailConnectionError(f"Gmail unreachable: {type(err).__name__}") from err
        raise AssertionError("unreachable")

    # -- credentials ------------------------------------------------------------------------------
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
        info = parse_token(text)
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
        # httplib2.Http is not thread-safe, so one per thread. Refresh-on-401 is ours (see execute).
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
