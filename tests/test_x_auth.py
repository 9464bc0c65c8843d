"""The owner's first X sign-in (``python -m social_media_integration.x_auth``) against tests/fakes/fake_x.

The test plays the owner's browser: it reads the authorize URL the command prints, follows it to the fake's
consent page (``/i/oauth2/authorize``, with the owner's click already made) and on, through the 302, to the
command's loopback callback. Nothing sleeps: the test blocks on the command's output and its exit.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from social_media_integration import x_auth
from social_media_integration.twitter_config import XConfig
from social_media_integration.twitter_connector import XConnector
from tests.conftest import ROOT, free_port
from tests.fakes.fake_x import (AUTHORIZE_REFUSED, BAD_CODE, BAD_REDIRECT, BAD_VERIFIER, NO_CLIENT_AUTH, FakeX)

TOKEN = "POST /2/oauth2/token"


@pytest.fixture
def fake() -> Iterator[FakeX]:
    with FakeX() as server:
        yield server


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback only, whatever proxy the environment names
        yield session


def sign_in_env(fake: FakeX, token_file: Path, *, public: bool = False, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("X_")}
    env.update({"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "X_CLIENT_ID": fake.client_id,
                "X_CLIENT_SECRET": "" if public else fake.client_secret, "X_TOKEN_FILE": str(token_file),
                "X_API_BASE_URL": fake.url, "X_AUTHORIZE_URL": fake.url + "/i/oauth2/authorize"})
    env.update(overrides)
    return env


class SignIn:
    """The command as the owner runs it, in its own process."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int, *args: str) -> None:
        self.port = port
        self.proc = subprocess.Popen([sys.executable, "-m", "social_media_integration.x_auth", "--port", str(port),
                                      "--timeout", "30", *args], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.printed: list[str] = []

    def url(self, prefix: str) -> str:
        """The authorize URL, once printed: the callback server is listening by then."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # blocks on the command's output; EOF if it exits (or times out) first
            self.printed.append(line)
            if line.startswith(prefix):
                return line.strip()
        raise AssertionError(f"no authorize URL printed:\n{''.join(self.printed)}\n{self.proc.stderr.read()}")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, "".join(self.printed) + out, err


@pytest.fixture
def run(fake: FakeX, tmp_path: Path) -> Iterator:
    started: list[SignIn] = []

    def start(env: dict[str, str], *args: str) -> SignIn:
        port = free_port()
        fake.callback_urls.add(f"http://127.0.0.1:{port}/callback")
        started.append(SignIn(env, tmp_path, port, *args))
        return started[-1]

    yield start
    for sign_in in started:
        if sign_in.proc.poll() is None:
            sign_in.proc.kill()
        sign_in.proc.communicate(timeout=30)


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


# --- the happy path ------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["confidential", "public"])
def test_sign_in_saves_a_0600_token_the_connector_posts_with(fake, run, browser, tmp_path, client):
    public = client == "public"
    fake.client_type = client
    token_file = tmp_path / "secrets" / "x_token.json"  # the folder is created too
    env = sign_in_env(fake, token_file, public=public)
    sign_in = run(env)
    url = sign_in.url(fake.url + "/i/oauth2/authorize?")

    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["response_type"] == "code" and query["client_id"] == fake.client_id
    assert query["redirect_uri"] == f"http://127.0.0.1:{sign_in.port}/callback"
    assert query["scope"] == "tweet.read tweet.write users.read offline.access" and "%20" in url
    assert query["code_challenge_method"] == "S256" and len(query["state"]) >= 32

    page = browser.get(url, timeout=30)  # the consent page answers 302 to the command's callback
    assert page.status_code == 200 and "Return to the terminal" in page.text
    assert [r.status_code for r in page.history] == [302]
    code, out, err = sign_in.finish()
    assert code == 0, err
    assert str(token_file) in out and err == ""

    exchange = next(r for r in fake.requests if r["key"] == TOKEN)
    form = exchange["form"]
    assert form["grant_type"] == "authorization_code" and form["client_id"] == fake.client_id
    assert form["redirect_uri"] == query["redirect_uri"]
    assert challenge_of(form["code_verifier"]) == query["code_challenge"]  # the verifier behind the challenge
    assert exchange["authorization"].startswith("Basic ") is not public  # Basic only for a confidential client
    assert fake.pending_codes() == 0

    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    saved = json.loads(token_file.read_text())
    assert saved["refresh_token"] == fake.refresh_token and saved["scope"] == fake.oauth2_scope
    printed = out + err + page.text
    for secret in (saved["access_token"], saved["refresh_token"], form["code"], form["code_verifier"],
                   fake.client_secret):
        assert secret not in printed

    config = XConfig.from_env(env)
    assert config.auth_mode == "oauth2"
    x = XConnector(config)
    posted = x.post("Hello from the first sign-in")
    assert [t["text"] for t in fake.tweets()] == ["Hello from the first sign-in"]
    assert fake.tweet(posted["id"])["author_id"] == fake.user_id
    fake.expire_oauth2_tokens()  # the saved refresh token works too: the connector refreshes and posts again
    x.post("And after a refresh")
    assert fake.count(TOKEN) == 2 and len(fake.tweets()) == 2


# --- refusals: nothing is written ------------------------------------------------------------------


def test_a_wrong_state_is_refused_and_nothing_is_saved(fake, run, browser, tmp_path):
    token_file = tmp_path / "x_token.json"
    sign_in = run(sign_in_env(fake, token_file))
    url = sign_in.url(fake.url + "/i/oauth2/authorize?")
    # A forged (or stale) answer reaches the callback before X's: a real code, the wrong state.
    consent = browser.get(url, allow_redirects=False, timeout=30)
    assert consent.status_code == 302
    real = parse_qs(urlsplit(consent.headers["Location"]).query)
    forged = browser.get(f"http://127.0.0.1:{sign_in.port}/callback",
                         params={"code": real["code"][0], "state": "forged-state"}, timeout=30)
    assert forged.status_code == 400 and "state" in forged.text
    code, out, err = sign_in.finish()
    assert code == 1 and "state" in err and "Nothing was saved" in err
    assert not token_file.exists() and fake.count(TOKEN) == 0  # the code was never sent to X


def test_access_denied_is_reported_clearly(fake, run, browser, tmp_path):
    fake.consent = "deny"
    token_file = tmp_path / "x_token.json"
    sign_in = run(sign_in_env(fake, token_file))
    page = browser.get(sign_in.url(fake.url + "/i/oauth2/authorize?"), timeout=30)
    assert "not granted" in page.text
    code, out, err = sign_in.finish()
    assert code == 1
    assert "access was not granted" in err and "Nothing was saved" in err and "Traceback" not in err
    assert not token_file.exists() and fake.count(TOKEN) == 0


def test_wrong_client_secret_is_reported_without_the_secret(fake, run, browser, tmp_path):
    token_file = tmp_path / "x_token.json"
    sign_in = run(sign_in_env(fake, token_file, X_CLIENT_SECRET="csec-not-the-right-one"))
    browser.get(sign_in.url(fake.url + "/i/oauth2/authorize?"), timeout=30)
    code, out, err = sign_in.finish()
    assert code == 1 and "X refused the app's credentials" in err and NO_CLIENT_AUTH in err
    assert "X_CLIENT_SECRET" in err and "csec-not-the-right-one" not in out + err
    assert not token_file.exists()


def test_no_answer_within_the_timeout(fake, tmp_path):
    token_file = tmp_path / "x_token.json"
    proc = subprocess.run([sys.executable, "-m", "social_media_integration.x_auth", "--port", str(free_port()),
                           "--timeout", "0.2"], cwd=tmp_path, env=sign_in_env(fake, token_file),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "No answer from X within 0.2 s" in proc.stderr
    assert "registered exactly as a callback URL" in proc.stderr
    assert not token_file.exists() and fake.requests == []


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["X_CLIENT_ID", "X_TOKEN_FILE"])
def test_missing_settings_exit_2_before_anything_happens(fake, tmp_path, capsys, missing):
    env = sign_in_env(fake, tmp_path / "x_token.json")
    env[missing] = ""
    assert x_auth.main(["--port", str(free_port())], env) == x_auth.EXIT_NOT_CONFIGURED
    captured = capsys.readouterr()
    assert missing in captured.err and "Traceback" not in captured.err and captured.out == ""
    assert fake.requests == [] and not (tmp_path / "x_token.json").exists()


def test_missing_client_id_from_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("X_")}
    env.update({"PYTHONPATH": str(ROOT), "X_TOKEN_FILE": str(tmp_path / "x_token.json")})
    proc = subprocess.run([sys.executable, "-m", "social_media_integration.x_auth"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "X_CLIENT_ID is not set" in proc.stderr and "Traceback" not in proc.stderr
    assert "http://127.0.0.1:8765/callback" in proc.stderr  # what to register, on the default port


def test_bad_urls_and_a_busy_port_are_refused(fake, tmp_path, capsys):
    env = sign_in_env(fake, tmp_path / "x_token.json")
    for name, bad in (("X_AUTHORIZE_URL", "http://x.example.com/i/oauth2/authorize"),
                      ("X_AUTHORIZE_URL", "https://x.com/i/oauth2/authorize?client_id=1"),
                      ("X_API_BASE_URL", "http://api.example.com")):
        assert x_auth.main(["--port", str(free_port())], {**env, name: bad}) == x_auth.EXIT_NOT_CONFIGURED
        assert name in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert x_auth.main(["--port", str(busy.getsockname()[1])], env) == x_auth.EXIT_FAILED
    assert "--port" in capsys.readouterr().err
    assert fake.requests == [] and not (tmp_path / "x_token.json").exists()


# --- the fake checks what X checks -----------------------------------------------------------------


def authorize(fake: FakeX, browser: requests.Session, redirect_uri: str, challenge: str, **extra: str):
    params = {"response_type": "code", "client_id": fake.client_id, "redirect_uri": redirect_uri,
              "scope": "tweet.read tweet.write users.read offline.access", "state": "s-1",
              "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return browser.get(fake.url + "/i/oauth2/authorize", params=params, allow_redirects=False, timeout=30)


def code_from(response: requests.Response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def test_the_fake_checks_the_verifier_redirect_uri_code_and_client(fake, browser):
    redirect = "http://127.0.0.1:8765/callback"
    fake.callback_urls.add(redirect)
    verifier = "v" * 43

    def exchange(code: str, verifier: str, uri: str = redirect, auth=(fake.client_id, fake.client_secret)):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": uri, "code_verifier": verifier,
                "client_id": fake.client_id}
        return browser.post(fake.url + "/2/oauth2/token", data=form, auth=auth, timeout=30)

    wrong = exchange(code_from(authorize(fake, browser, redirect, challenge_of(verifier))), "w" * 43)
    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid_request", "error_description": BAD_VERIFIER})
    assert fake.authorizations[-1]["code_challenge"] == challenge_of(verifier)

    elsewhere = exchange(code_from(authorize(fake, browser, redirect, challenge_of(verifier))), verifier,
                         uri="http://127.0.0.1:9999/callback")
    assert elsewhere.json()["error_description"] == BAD_REDIRECT
    unknown = exchange("not-a-code", verifier)
    assert (unknown.status_code, unknown.json()["error_description"]) == (400, BAD_CODE)
    missing = exchange(code_from(authorize(fake, browser, redirect, challenge_of(verifier))), "")
    assert missing.json()["error_description"] == "Missing required parameter [code_verifier]."

    code = code_from(authorize(fake, browser, redirect, challenge_of(verifier)))
    no_basic = exchange(code, verifier, auth=None)  # a confidential client must authenticate
    assert no_basic.status_code == 401 and no_basic.json()["error"] == "unauthorized_client"
    good_code = code_from(authorize(fake, browser, redirect, challenge_of(verifier)))
    good = exchange(good_code, verifier)
    assert good.status_code == 200 and good.json()["refresh_token"] == fake.refresh_token
    assert set(good.json()) == {"token_type", "expires_in", "access_token", "scope", "refresh_token"}
    again = exchange(good_code, verifier)  # a code works once
    assert again.json()["error_description"] == BAD_CODE

    fake.code_lifetime = 0.0  # X: a code is valid for 30 seconds
    late = exchange(code_from(authorize(fake, browser, redirect, challenge_of(verifier))), verifier)
    assert late.json()["error_description"] == BAD_CODE

    fake.code_lifetime = 30.0
    plain = code_from(authorize(fake, browser, redirect, verifier, code_challenge_method="plain"))
    assert exchange(plain, verifier).status_code == 200

    fake.client_type = "public"
    public = exchange(code_from(authorize(fake, browser, redirect, challenge_of(verifier))), verifier, auth=None)
    assert public.status_code == 200
    no_offline = code_from(authorize(fake, browser, redirect, challenge_of(verifier), scope="tweet.read users.read"))
    assert "refresh_token" not in exchange(no_offline, verifier, auth=None).json()  # offline.access gives one


def test_the_fake_consent_page_never_redirects_where_it_should_not(fake, browser):
    fake.callback_urls.add("http://127.0.0.1:8765/callback")
    challenge = challenge_of("v" * 43)
    for uri, extra in (("http://127.0.0.1:8766/callback", {}),  # not registered exactly
                       ("http://127.0.0.1:8765/callback", {"client_id": "someone-else"}),
                       ("http://127.0.0.1:8765/callback", {"code_challenge": ""}),
                       ("http://127.0.0.1:8765/callback", {"code_challenge_method": "S512"})):
        refused = authorize(fake, browser, uri, challenge, **extra)
        assert refused.status_code == 400 and "Location" not in refused.headers
        assert AUTHORIZE_REFUSED in refused.text
    assert fake.pending_codes() == 0
    fake.consent = "deny"
    denied = authorize(fake, browser, "http://127.0.0.1:8765/callback", challenge)
    assert denied.status_code == 302
    assert parse_qs(urlsplit(denied.headers["Location"]).query) == {"error": ["access_denied"], "state": ["s-1"]}
