"""One-time X sign-in (OAuth 2.0): ``python -m social_media_integration.x_auth``.

Runs X's Authorization Code flow with PKCE (S256) on a loopback port and stores the token as JSON (mode 0600) at
``X_TOKEN_FILE``, where the X connector reads and refreshes it. The callback URL, ``http://127.0.0.1:<port>/callback``
(port 8765 unless ``--port`` says otherwise), must be registered exactly in the app's User authentication settings.
No token, code, verifier or secret is ever printed.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import os
import secrets
import sys
import threading
import time
import webbrowser
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests

from core.config import PROJECT_ROOT, check_base_url, is_loopback_host
from core.errors import ConfigError
from core.redact import scrub
from social_media_integration.twitter_config import OAuth2Token, XConfig, save_token

SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_BASE_URL = "https://api.x.com"
CALLBACK_PATH = "/callback"
DEFAULT_PORT = 8765
DEFAULT_TIMEOUT = 300.0
EXIT_FAILED = 1
EXIT_NOT_CONFIGURED = 2


class SignInError(Exception):
    """The sign-in produced no token; the message says why and what to do, and never carries a secret."""


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, code_challenge): 86 characters of [A-Za-z0-9_-] (RFC 7636 allows 43-128) and its S256."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(base: str, client_id: str, redirect_uri: str, state: str, challenge: str) -> str:
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                       "scope": " ".join(SCOPES), "state": state, "code_challenge": challenge,
                       "code_challenge_method": "S256"}, quote_via=quote)  # spaces as %20, as X's docs show
    return f"{base}?{query}"


def check_authorize_url(url: str) -> str:
    """X_AUTHORIZE_URL (a test fake, a proxy): https, or plain http on loopback only; no query or credentials."""
    check_base_url(url, "X_AUTHORIZE_URL", AUTHORIZE_URL)
    return url


# --- the loopback callback -------------------------------------------------------------------------


class _CallbackServer(ThreadingHTTPServer):
    """Waits for X to send the browser back with a code. The first answer on /callback decides; any later one
    is turned away."""

    daemon_threads = True

    def __init__(self, port: int, state: str) -> None:
        super().__init__(("127.0.0.1", port), _CallbackHandler)
        self.state = state
        self._claim = threading.Lock()
        self._claimed = False
        self._done = threading.Event()
        self._outcome: str | SignInError | None = None  # the code, or why there is none

    def classify(self, params: Mapping[str, str]) -> str | SignInError:
        if "error" in params:  # the owner cancelled, or X refused: nothing to exchange, whatever the state says
            error = _printable(params["error"])
            detail = _printable(params.get("error_description", ""))
            if error == "access_denied":
                why = "access was not granted (the consent page was cancelled, or the app was not authorised)"
            else:
                why = f"X answered {error}" + (f": {detail}" if detail else "")
            return SignInError(f"X sign-in did not complete: {why}. Nothing was saved; run the command again to "
                               "retry.")
        if not hmac.compare_digest(params.get("state", "").encode(), self.state.encode()):
            return SignInError("X's answer did not carry this sign-in's state (an answer to an older attempt, or a "
                               "forged request), so it was refused. Nothing was saved; run the command again.")
        code = params.get("code", "")
        if not code:
            return SignInError("X's answer carried no authorization code. Nothing was saved; run the command "
                               "again.")
        return code

    def claim(self) -> bool:
        with self._claim:
            first, self._claimed = not self._claimed, True
            return first

    def deliver(self, outcome: str | SignInError) -> None:
        self._outcome = outcome
        self._done.set()

    def wait(self, timeout: float) -> str | SignInError | None:
        """The code or the refusal; None when nothing came within ``timeout`` seconds."""
        thread = threading.Thread(target=self.serve_forever, name="x-auth-callback", daemon=True)
        thread.start()
        try:
            self._done.wait(timeout)
        finally:
            self.shutdown()
            self.server_close()
        return self._outcome


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 10  # a browser's idle pre-connection must not hold a thread for ever

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self._page(404, "Not found", "This address only receives X's answer to the sign-in.")
            return
        if not self.server.claim():
            self._page(409, "Already answered", "This sign-in already received X's answer. Return to the terminal.")
            return
        outcome = self.server.classify(dict(parse_qsl(parts.query, keep_blank_values=True)))
        if isinstance(outcome, SignInError):
            self._page(400, "X sign-in not completed", f"{outcome} The terminal says the same.")
        else:
            self._page(200, "X answered", "Return to the terminal: it finishes the sign-in and says whether the "
                                          "token was saved. You can close this tab.")
        self.server.deliver(outcome)  # after the page went out: the process may end as soon as this is set

    def _page(self, status: int, title: str, text: str) -> None:
        body = (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
                f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the address bar holds the code
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the request line holds the code
        pass


def _printable(value: str, limit: int = 200) -> str:
    return "".join(ch for ch in value if ch.isprintable())[:limit]


# --- the token exchange ----------------------------------------------------------------------------


def exchange_code(config: XConfig, token_url: str, code: str, redirect_uri: str, verifier: str,
                  *, clock=time.time) -> OAuth2Token:
    """POST the code with its verifier; HTTP Basic for a confidential client (X_CLIENT_SECRET set)."""
    assert config.client_id
    client_id, secret = config.client_id, config.client_secret
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, "client_id": client_id}
    hidden = [secret, code, verifier]
    session = requests.Session()
    session.trust_env = not is_loopback_host((urlsplit(token_url).hostname or "").lower())  # a fake: never via a proxy
    try:
        with session:
            response = session.post(token_url, data=form, auth=(client_id, secret) if secret else None,
                                    timeout=config.timeout, allow_redirects=False)
    except requests.RequestException as err:
        raise SignInError(f"X's token endpoint ({token_url}) is unreachable ({type(err).__name__}). Nothing was "
                          "saved; check the connection and run the command again.") from None
    try:
        body = response.json()
    except ValueError:
        body = None  # never chained: a decode error keeps the whole body
    if response.status_code != 200:
        raise SignInError(_refusal(response.status_code, body, hidden, has_secret=bool(secret)))
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise SignInError("X's token endpoint answered without an access token. Nothing was saved; run the command "
                          "again.")
    expires_in, refresh, scope = body.get("expires_in"), body.get("refresh_token"), body.get("scope")
    return OAuth2Token(access_token=body["access_token"],
                       refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                       expires_at=clock() + float(expires_in) if isinstance(expires_in, (int, float)) else None,
                       scope=scope if isinstance(scope, str) else None)


def _refusal(status: int, body: object, hidden: list[str | None], *, has_secret: bool) -> str:
    error = description = ""
    if isinstance(body, dict):
        error = _printable(str(body.get("error") or ""), 60)
        description = _printable(str(body.get("error_description") or ""))
    said = scrub(f"HTTP {status}" + (f" {error}" if error else "") + (f": {description}" if description else ""),
                 hidden)
    if status == 401 or error in ("unauthorized_client", "invalid_client"):
        kind = ("check X_CLIENT_ID and X_CLIENT_SECRET against the app's OAuth 2.0 Client ID and Client Secret "
                "(Keys and tokens)" if has_secret else
                "X_CLIENT_SECRET is not set: a confidential client (a web app, automated app or bot) needs it; "
                "only a public client (a native app) signs in with X_CLIENT_ID alone")
        return f"X refused the app's credentials ({said}): {kind}. Nothing was saved."
    if status == 400:
        return (f"X refused the authorization code ({said}). A code is valid for 30 seconds and only once; run the "
                "command again. Nothing was saved.")
    return f"X's token endpoint answered {said}. Nothing was saved; run the command again."


# --- the command -----------------------------------------------------------------------------------


def _writable(path: Path) -> bool:
    """Whether save_token can create ``path``: its nearest existing folder is writable."""
    if path.is_dir():
        return False
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK | os.X_OK)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m social_media_integration.x_auth",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"loopback port of the callback URL registered in the X app (default {DEFAULT_PORT})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds to wait for X's answer (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--open", action="store_true", help="open the consent page in a local browser")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error("--port must be between 1 and 65535")
    if not args.timeout > 0:
        parser.error("--timeout must be a positive number of seconds")
    env = os.environ if environ is None else environ

    try:
        config = XConfig.from_env(env)
        authorize_base = check_authorize_url((env.get("X_AUTHORIZE_URL") or "").strip() or AUTHORIZE_URL)
    except ConfigError as err:
        print(f"{err}. Fix it in .env or the environment, then run this command again.", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    if not config.client_id:
        print("X_CLIENT_ID is not set. In the X developer portal, enable OAuth 2.0 in the app's User authentication "
              "settings (Read and write), register the callback URL http://127.0.0.1:"
              f"{args.port}{CALLBACK_PATH}, then set X_CLIENT_ID (and X_CLIENT_SECRET for a confidential client) "
              "from Keys and tokens. Then run this command again.", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    if config.token_file is None:
        print("X_TOKEN_FILE is not set: set it to where the token should be kept (e.g. x_token.json; the X server "
              "reads it from there). Then run this command again.", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    token_file = config.token_file.absolute()
    if not _writable(token_file):
        print(f"X_TOKEN_FILE cannot be written: {token_file} (a folder, or no write permission). Point it at a "
              "file you can write, then run this command again.", file=sys.stderr)
        return EXIT_NOT_CONFIGURED

    base = config.base_url if (env.get("X_API_BASE_URL") or "").strip() else TOKEN_BASE_URL
    token_url = f"{base}/2/oauth2/token"
    redirect_uri = f"http://127.0.0.1:{args.port}{CALLBACK_PATH}"
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(32)
    try:
        server = _CallbackServer(args.port, state)  # listening before the URL is shown
    except OSError as err:
        print(f"Cannot listen on 127.0.0.1:{args.port} ({err.strerror or err}). Stop what uses that port, or pass "
              "--port with another port whose callback URL is registered in the X app.", file=sys.stderr)
        return EXIT_FAILED
    url = authorize_url(authorize_base, config.client_id, redirect_uri, state, challenge)
    kind = "confidential" if config.client_secret else "public"
    print(f"Signing in to X (scopes: {' '.join(SCOPES)}; {kind} client). The X app must list {redirect_uri} "
          "exactly as a callback URL.")
    print(f"Open this URL in a browser on this machine, sign in as the account to post from and allow access:\n"
          f"{url}\n", flush=True)
    if args.open:
        webbrowser.open(url)
    try:
        outcome = server.wait(args.timeout)
    except KeyboardInterrupt:
        print("Sign-in interrupted. Nothing was saved.", file=sys.stderr)
        return EXIT_FAILED
    if outcome is None:
        print(f"No answer from X within {args.timeout:g} s. If X showed 'Something went wrong', check that "
              f"{redirect_uri} is registered exactly as a callback URL and that OAuth 2.0 is enabled for the app. "
              "Nothing was saved; run the command again.", file=sys.stderr)
        return EXIT_FAILED
    try:
        if isinstance(outcome, SignInError):
            raise outcome
        token = exchange_code(config, token_url, outcome, redirect_uri, verifier)
    except SignInError as err:
        print(str(err), file=sys.stderr)
        return EXIT_FAILED

    try:
        save_token(token_file, token)
    except OSError as err:
        print(f"X granted access but the token could not be saved to {token_file} ({err.strerror or err}). "
              "Nothing usable was saved; fix the folder and run the command again.", file=sys.stderr)
        return EXIT_FAILED
    granted = set((token.scope or "").split())
    if token.refresh_token is None:
        print("Warning: X sent no refresh token (offline.access was not granted): the token stops working in about "
              "two hours, after which this sign-in is needed again.", file=sys.stderr)
    if token.scope is not None and "tweet.write" not in granted:
        print("Warning: X did not grant tweet.write: the X server can read but not post. Check that the app has "
              "Read and write permission, then sign in again.", file=sys.stderr)
    print(f"Saved the X token to {token_file} (readable by you only). X is ready: restart the suite so the X "
          "server (port 8083) uses it.")
    if not config.token_file.is_absolute() and Path.cwd().resolve() != PROJECT_ROOT:
        print(f"Note: X_TOKEN_FILE is relative to this folder; the suite, started from {PROJECT_ROOT}, looks for "
              f"{PROJECT_ROOT / config.token_file}.")
    return 0


if __name__ == "__main__":
    from dotenv import load_dotenv

    load_dotenv(PROJECT_ROOT / ".env", override=False)  # as Settings.from_env: the environment wins
    sys.exit(main())
