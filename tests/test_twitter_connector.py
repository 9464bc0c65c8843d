"""The X connector (social_media_integration.twitter_*) driven through tweepy against tests/fakes/fake_x."""
from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from core.errors import ConfigError, NotConfiguredError, ValidationError
from social_media_integration.twitter_config import OAuth2Token, XConfig, save_token
from social_media_integration.twitter_connector import XConnector, as_written, normalise_text, same_text
from social_media_integration.twitter_errors import (XAuthError, XConnectionError, XDuplicateError, XError,
                                                     XForbiddenError, XRateLimitError, XResponseError)
from social_media_integration.twitter_transport import endpoint_key
from tests.conftest import wait_until
from tests.fakes.fake_x import DUPLICATE, REPLY_GONE, FakeX


@pytest.fixture
def fake():
    with FakeX() as server:
        yield server


def oauth1_env(fake: FakeX, **overrides: str) -> dict[str, str]:
    return {"X_API_KEY": fake.consumer_key, "X_API_SECRET": fake.consumer_secret,
            "X_ACCESS_TOKEN": fake.access_token, "X_ACCESS_TOKEN_SECRET": fake.access_token_secret,
            "X_API_BASE_URL": fake.url, **overrides}


def write_token(path: Path, fake: FakeX, *, expires_in: float = 3600, access: str | None = None) -> Path:
    path.write_text(json.dumps({"token_type": "bearer", "access_token": access or fake.issue_oauth2_token(),
                                "refresh_token": fake.refresh_token, "expires_at": time.time() + expires_in,
                                "scope": fake.oauth2_scope}))
    os.chmod(path, 0o600)
    return path


def oauth2_env(fake: FakeX, token_file: Path, **overrides: str) -> dict[str, str]:
    return {"X_CLIENT_ID": fake.client_id, "X_CLIENT_SECRET": fake.client_secret, "X_TOKEN_FILE": str(token_file),
            "X_API_BASE_URL": fake.url, **overrides}


class Recorder(requests.Session):
    """An injected session that records every URL it actually reached (after our adapter rewrote it)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.hooks["response"].append(lambda r, *a, **k: self.urls.append(r.url))


def connector(env: dict[str, str], **kwargs) -> XConnector:
    return XConnector(XConfig.from_env(env), **kwargs)


def all_secrets(fake: FakeX) -> list[str]:
    return [fake.consumer_secret, fake.access_token, fake.access_token_secret, fake.client_secret,
            fake.bearer_token] + ([fake.refresh_token] if fake.refresh_token else [])


# --- configuration ------------------------------------------------------------------------------------

def test_config_https_rule_modes_and_no_secret_in_repr(tmp_path):
    for bad in ("http://proxy.example.com", "ftp://api.twitter.com", "http://user:pw@127.0.0.1:9"):
        with pytest.raises(ConfigError) as refused:
            XConfig.from_env({"X_API_BASE_URL": bad})
        assert "X_API_BASE_URL" in str(refused.value) and "pw" not in str(refused.value)
    for ok in ("http://127.0.0.1:8999/", "http://localhost:1", "http://[::1]:2", "https://x-proxy.example.com/x/"):
        assert not XConfig.from_env({"X_API_BASE_URL": ok}).base_url.endswith("/")
    assert XConfig.from_env({}).base_url == "https://api.twitter.com"

    keys = {"X_API_KEY": "ck", "X_API_SECRET": "s3cret-api", "X_ACCESS_TOKEN": "1-tok", "X_ACCESS_TOKEN_SECRET": "s3cret-ats",
            "X_BEARER_TOKEN": "AAAA-bearer", "X_CLIENT_SECRET": "s3cret-client"}
    full = XConfig.from_env(keys)
    assert full.is_configured() and full.auth_mode == "oauth1"
    for secret in ("s3cret-api", "1-tok", "s3cret-ats", "AAAA-bearer", "s3cret-client"):
        assert secret not in repr(full)
    partial = XConfig.from_env({k: v for k, v in keys.items() if k != "X_ACCESS_TOKEN_SECRET"})
    assert not partial.is_configured() and partial.auth_mode == "app"  # the bearer alone: public reads only
    token_file = tmp_path / "x_token.json"
    assert not XConfig.from_env({"X_TOKEN_FILE": str(token_file)}).is_configured()
    save_token(token_file, OAuth2Token("at", "rt", time.time() + 60))
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    oauth2 = XConfig.from_env({"X_TOKEN_FILE": str(token_file), "X_CLIENT_ID": "cid"})
    assert oauth2.is_configured() and oauth2.auth_mode == "oauth2"
    assert OAuth2Token.from_json(token_file.read_text()).refresh_token == "rt"
    with pytest.raises(NotConfiguredError):
        XConnector(XConfig()).me()


# --- OAuth 1.0a, the base URL, posting ----------------------------------------------------------------

def test_oauth1_post_reply_delete_through_the_base_url_only(fake):
    session = Recorder()
    x = connector(oauth1_env(fake), session=session)
    assert x.is_configured()
    first = x.post("Launch day at Acme")
    assert first == {"id": fake.tweets()[0]["id"], "text": "Launch day at Acme"}
    reply = x.post("More details below", reply_to=first["id"])
    assert fake.tweet(reply["id"])["in_reply_to_tweet_id"] == first["id"]
    assert x.delete(reply["id"]) is True and x.delete(reply["id"]) is False
    assert [t["id"] for t in fake.tweets()] == [first["id"]]
    # Signed over X's public URL, delivered to the fake only.
    assert fake.signed_base_urls and all(u.startswith("https://api.twitter.com/2/") for u in fake.signed_base_urls)
    assert len(session.urls) == 4 and all(u.startswith(fake.url + "/2/") for u in session.urls)
    with pytest.raises(ValidationError):
        x.post("   ")
    with pytest.raises(ValidationError):
        x.delete("../users/me")
    assert fake.count("POST /2/tweets") == 2


def test_the_adapter_refuses_every_other_host(fake):
    for env in (oauth1_env(fake), oauth1_env(fake, X_API_BASE_URL="https://api.twitter.com")):
        session = connector(env)._transport.session
        for url in ("https://example.com/2/tweets", f"http://127.0.0.2:{fake.port}/2/users/me",
                    "https://api.twitter.com.evil.example/2/users/me"):
            with pytest.raises(XError, match="only talks to X_API_BASE_URL"):
                session.get(url)
    assert sum(fake.calls.values()) == 0


def test_me_is_cached_probe_asks_and_rate_limits_are_kept(fake):
    x = connector(oauth1_env(fake))
    assert x.me() == {"id": fake.user_id, "username": "acme_studio"} == x.me()
    assert fake.count("GET /2/users/me") == 1
    assert x.probe()["username"] == "acme_studio" and fake.count("GET /2/users/me") == 2
    assert x.rate_limits()["GET /2/users/me"] == fake.rate_limit("GET /2/users/me") | {"remaining": 73}
    assert endpoint_key("GET", f"/2/users/{fake.user_id}/tweets") == "GET /2/users/:id/tweets"
    assert endpoint_key("GET", "/2/users/by/username/acme") == "GET /2/users/by/username/:username"


# --- metrics and the timeline -------------------------------------------------------------------------

def test_user_metrics_own_and_by_username(fake):
    fake.set_user_metrics(followers_count=120, following_count=33, listed_count=4)
    fake.seed_tweet("one")
    other = fake.add_user("TwitterDev", public_metrics={"followers_count": 512})
    x = connector(oauth1_env(fake))
    assert x.user_metrics() == {"followers": 120, "following": 33, "tweets": 1, "listed": 4}
    assert x.user_metrics("@twitterdev")["followers"] == 512 and other
    with pytest.raises(XResponseError) as missing:
        x.user_metrics("nobody_here")
    assert missing.value.status == 404 and "nobody_here" in str(missing.value)
    with pytest.raises(ValidationError):
        x.user_metrics("no/such")


def test_tweet_metrics_250_ids_in_three_batches(fake):
    now = datetime.now(timezone.utc)
    ids = [fake.seed_tweet(f"post {i}", created_at=now - timedelta(minutes=i),
                           public_metrics={"like_count": i, "impression_count": 1, "retweet_count": 2,
                                           "reply_count": 3, "quote_count": 4, "bookmark_count": 5},
                           non_public_metrics={"impression_count": 10 * i})
           for i in range(248)]
    old = fake.seed_tweet("last quarter", created_at=now - timedelta(days=45),
                          public_metrics={"impression_count": 77}, non_public_metrics={"impression_count": 999})
    gone = fake.seed_tweet("deleted")
    x = connector(oauth1_env(fake))
    x.delete(gone)
    metrics = x.tweet_metrics(ids + [old, gone, ids[0]])  # 250 distinct ids, one repeated
    assert fake.count("GET /2/tweets") == 3
    sizes = [len(r["path_qs"].split("ids=")[1].split("&")[0].split("%2C")) for r in fake.requests
             if r["key"] == "GET /2/tweets"]
    assert sizes == [100, 100, 50]
    assert [m["id"] for m in metrics] == ids + [old]  # order kept, the deleted one left out
    assert metrics[7] == {"id": ids[7], "impressions": 70, "likes": 7, "replies": 3, "reposts": 2, "quotes": 4,
                          "bookmarks": 5}
    assert metrics[-1]["impressions"] == 77  # older than 30 days: X withholds private metrics, public used
    assert x.tweet_metrics([]) == [] and fake.count("GET /2/tweets") == 3


def test_recent_tweets_paginate_newest_first_from_since(fake):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ids = [fake.seed_tweet(f"update {i}", created_at=now - timedelta(minutes=200 - i)) for i in range(130)]
    fake.seed_tweet("someone else's", author_id=fake.add_user("other"))
    x = connector(oauth1_env(fake))
    tweets = x.recent_tweets(limit=120)
    assert [t["id"] for t in tweets] == ids[::-1][:120]
    assert fake.count("GET /2/users/:id/tweets") == 2  # 100 + 20
    assert tweets[0]["text"] == "update 129" and tweets[0]["reply_to"] is None and "likes" in tweets[0]
    since = now - timedelta(minutes=75, seconds=30)  # updates 125..129 are newer
    assert [t["text"] for t in x.recent_tweets(since=since)] == [f"update {i}" for i in range(129, 124, -1)]
    reply = x.post("a follow-up", reply_to=ids[-1])
    assert x.recent_tweets(limit=5)[0] | {"created_at": None} == {
        "id": reply["id"], "text": "a follow-up", "created_at": None, "reply_to": ids[-1], "impressions": 0,
        "likes": 0, "replies": 0, "reposts": 0, "quotes": 0, "bookmarks": 0}


# --- OAuth 2.0 user context ---------------------------------------------------------------------------

def test_oauth2_expiry_refreshes_first_and_saves_the_rotated_token_0600(fake, tmp_path):
    token_file = write_token(tmp_path / "x_token.json", fake, expires_in=-5)
    x = connector(oauth2_env(fake, token_file))
    assert x.me()["username"] == "acme_studio"
    assert fake.count("POST /2/oauth2/token") == 1 and fake.count("GET /2/users/me") == 1  # no 401 on the way
    saved = json.loads(token_file.read_text())
    assert saved["refresh_token"] == fake.refresh_token and saved["expires_at"] > time.time() + 3600
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    refresh = next(r for r in fake.requests if r["key"] == "POST /2/oauth2/token")
    assert refresh["form"]["grant_type"] == "refresh_token" and refresh["authorization"].startswith("Basic ")
    posted = x.post("via OAuth 2.0")
    assert fake.tweet(posted["id"])["author_id"] == fake.user_id


def test_oauth2_401_refreshes_once_and_retries_the_call_once(fake, tmp_path):
    token_file = write_token(tmp_path / "x_token.json", fake)
    before = token_file.read_text()
    x = connector(oauth2_env(fake, token_file))
    fake.expire_oauth2_tokens()  # the file says valid, X says 401
    posted = x.post("after a 401")
    assert [t["text"] for t in fake.tweets()] == ["after a 401"] and posted["id"] == fake.tweets()[0]["id"]
    assert fake.count("POST /2/tweets") == 2 and fake.count("POST /2/oauth2/token") == 1
    # A caller that found the old token stale after that refresh (it waited for the lock) takes the new one.
    stale = json.loads(before)["access_token"]
    assert x._transport._refresher.refresh(stale).refresh_token == fake.refresh_token
    assert fake.count("POST /2/oauth2/token") == 1
    fake.fail("GET /2/users/me", 401, times=2)  # still 401 after a good refresh: stop, do not loop
    with pytest.raises(XAuthError):
        x.me()
    assert fake.count("GET /2/users/me") == 2 and fake.count("POST /2/oauth2/token") == 2


def _frames_of(thread: threading.Thread) -> set[str]:
    frame, names = sys._current_frames().get(thread.ident), set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return names


def test_two_threads_needing_a_refresh_make_one(fake, tmp_path):
    token_file = write_token(tmp_path / "x_token.json", fake, expires_in=-5)
    x = connector(oauth2_env(fake, token_file))
    held = fake.hold("POST /2/oauth2/token")
    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            results[name] = x.user_metrics()
        except Exception as err:  # surfaced by the assertions below
            results[name] = err

    first = threading.Thread(target=run, args=("first",), daemon=True)
    first.start()
    assert held.arrived.wait(5)  # the first refresh is at X, holding the lock
    second = threading.Thread(target=run, args=("second",), daemon=True)
    second.start()
    # The first caller holds the refresher's lock until X answers, so the second one in there is waiting on it.
    wait_until(lambda: {"current", "refresh"} & _frames_of(second), timeout=5,
               message="the second caller to wait for the lock")
    held.release()
    first.join(5)
    second.join(5)
    assert isinstance(results["first"], dict) and results["first"] == results["second"]
    assert fake.count("POST /2/oauth2/token") == 1
    assert json.loads(token_file.read_text())["refresh_token"] == fake.refresh_token


def test_a_refresh_token_rotated_by_another_process_is_picked_up(fake, tmp_path):
    token_file = write_token(tmp_path / "x_token.json", fake)
    x = connector(oauth2_env(fake, token_file))
    x.me()
    other = connector(oauth2_env(fake, token_file))
    fake.expire_oauth2_tokens()
    other.probe()  # refreshes and rewrites the file
    assert x.probe()["id"] == fake.user_id  # x's token is dead; it reads the file rather than spend a refresh
    assert fake.count("POST /2/oauth2/token") == 1


def test_revoked_refresh_token_is_an_auth_error(fake, tmp_path):
    token_file = write_token(tmp_path / "x_token.json", fake)
    before = token_file.read_text()
    refresh_token = fake.refresh_token
    x = connector(oauth2_env(fake, token_file))
    fake.revoke_refresh_token()
    with pytest.raises(XAuthError) as revoked:
        x.post("never")
    message = str(revoked.value)
    assert "invalid_request" in message and "reconnect X" in message
    assert refresh_token not in message and json.loads(before)["access_token"] not in message
    assert token_file.read_text() == before and fake.tweets() == []
    with pytest.raises(XAuthError):  # X is not asked again with a refresh token it refused
        x.me()
    assert fake.count("POST /2/oauth2/token") == 1
    fake.refresh_token = "rt-after-the-owner-signed-in-again"
    write_token(token_file, fake, expires_in=-5)
    assert x.me()["id"] == fake.user_id  # a new refresh token in the file: X is asked again
    assert fake.count("POST /2/oauth2/token") == 2
    missing = connector(oauth2_env(fake, token_file, X_CLIENT_ID=""))
    fake.expire_oauth2_tokens()
    with pytest.raises(XAuthError, match="X_CLIENT_ID"):
        missing.probe()


# --- failures -----------------------------------------------------------------------------------------

def test_429_with_reset_two_seconds_ahead_is_surfaced_never_slept(fake, monkeypatch):
    def no_sleep(seconds):
        raise AssertionError(f"slept {seconds}s inside a request")

    monkeypatch.setattr(time, "sleep", no_sleep)
    x = connector(oauth1_env(fake))
    fake.set_rate_limit("POST /2/tweets", remaining=0, reset_in=2)
    started = time.monotonic()
    with pytest.raises(XRateLimitError) as limited:
        x.post("too soon")
    assert time.monotonic() - started < 1.0
    assert 1.0 < limited.value.retry_after <= 2.0 and limited.value.retryable
    assert x.rate_limits()["POST /2/tweets"]["remaining"] == 0 and fake.tweets() == []

    # The 24-hour posting cap answers 429 while the 15-minute window still has room: its reset wins.
    day = int(time.time()) + 20_000
    fake.set_rate_limit("POST /2/tweets", reset_in=-1)
    fake.fail("POST /2/tweets", 429, headers={"x-user-limit-24hour-limit": "17", "x-user-limit-24hour-remaining": "0",
                                              "x-user-limit-24hour-reset": str(day)})
    with pytest.raises(XRateLimitError) as capped:
        x.post("daily cap")
    assert 19_990 < capped.value.retry_after <= 20_000


def test_duplicate_forbidden_and_app_permission_403s(fake):
    x = connector(oauth1_env(fake))
    first = x.post("same words")
    with pytest.raises(XDuplicateError) as dup:
        x.post("same words")
    assert dup.value.status == 403 and dup.value.detail == DUPLICATE
    assert x.find_recent_by_text("same words", since=datetime.now(timezone.utc) - timedelta(minutes=5)) == first["id"]
    with pytest.raises(XForbiddenError) as gone:
        x.post("replying", reply_to="1234")
    assert not isinstance(gone.value, XDuplicateError) and REPLY_GONE in str(gone.value)
    with pytest.raises(XResponseError, match="too long"):
        x.post("x" * 281)
    fake.access_level = "read"  # the app was set to read-only: the owner must change it
    with pytest.raises(XAuthError, match="permissions"):
        x.post("read-only app")


def test_401_and_5xx_and_refused(fake):
    with pytest.raises(XAuthError) as unauthorized:
        connector(oauth1_env(fake, X_API_SECRET="wrong-secret-value")).me()
    assert unauthorized.value.status == 401 and "wrong-secret-value" not in str(unauthorized.value)

    x = connector(oauth1_env(fake))
    fake.fail("GET /2/users/me", 503)
    with pytest.raises(XConnectionError) as down:
        x.me()
    assert down.value.status == 503 and down.value.outcome_unknown is False and down.value.retryable
    fake.fail("POST /2/tweets", 503, after_accept=True)
    with pytest.raises(XConnectionError) as unknown:
        x.post("accepted, then 503")
    assert unknown.value.outcome_unknown is True and "reconcile" in str(unknown.value)
    assert fake.count("POST /2/tweets") == 1

    port = fake.port
    fake.stop()
    with pytest.raises(XConnectionError) as refused:
        connector(oauth1_env(fake, X_API_BASE_URL=f"http://127.0.0.1:{port}")).post("nobody listening")
    assert refused.value.outcome_unknown is False  # never left: nothing to reconcile


def test_a_held_post_times_out_is_not_retried_and_is_found_again(fake):
    x = connector(oauth1_env(fake, X_TIMEOUT_SECONDS="0.3"))
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    before = fake.hold("POST /2/tweets")
    with pytest.raises(XConnectionError) as timed_out:
        x.post("held at the door")
    assert timed_out.value.outcome_unknown is True and "timed out" in str(timed_out.value)
    assert fake.count("POST /2/tweets") == 1  # not retried
    before.release()
    wait_until(lambda: before.abandoned, timeout=5, message="the fake to drop the request whose client left")
    assert x.find_recent_by_text("held at the door", since=since) is None

    after = fake.hold("POST /2/tweets", after_accept=True)  # X took it; only the answer is late
    with pytest.raises(XConnectionError):
        x.post("Big news:  our  shop opens Monday\n")
    after.release()
    assert fake.count("POST /2/tweets") == 2
    went_out = fake.tweets()[-1]["id"]
    assert x.find_recent_by_text("Big news: our shop opens Monday", since=since) == went_out
    assert x.find_recent_by_text("Big news: our shop opens Tuesday", since=since) is None


def test_text_as_x_stores_it_is_matched():
    """What X sends back for a post (shape of a captured v2 timeline item): t.co links, HTML entities."""
    stored = {"id": "1", "text": "Tea &amp; cake at https://t.co/AbC123 &lt;3 and acme.com… no: https://t.co/Zz9",
              "entities": {"urls": [
                  {"start": 18, "end": 41, "url": "https://t.co/AbC123", "expanded_url": "https://acme.example/menu/",
                   "display_url": "acme.example/menu"},
                  {"start": 61, "end": 80, "url": "https://t.co/Zz9", "expanded_url": "http://acme.com",
                   "display_url": "acme.com"}]}}
    assert as_written(stored) == "Tea & cake at https://acme.example/menu/ <3 and acme.com… no: http://acme.com"
    wanted = normalise_text("Tea & cake at https://acme.example/menu <3 and acme.com… no: acme.com")
    assert same_text(wanted, as_written(stored))
    assert not same_text(normalise_text("Tea & cake at https://acme.example/other <3"), as_written(stored))
    assert same_text(normalise_text("thanks!"), "@someone @other thanks!")  # a reply's leading mentions
    assert same_text(normalise_text("Cafe\u0301  opens"), "Café opens\r\n")  # NFC, spaces, line ends
    long_post = {"id": "2", "text": "Long… https://t.co/n", "note_tweet": {"text": "Long post in full"}}
    assert as_written(long_post) == "Long post in full"


def test_no_secret_in_any_message(fake, tmp_path):
    messages: list[str] = []
    wrong = connector(oauth1_env(fake, X_ACCESS_TOKEN_SECRET="ats-not-the-right-one"))
    for call in (wrong.me, lambda: wrong.post("x")):
        with pytest.raises(XAuthError) as err:
            call()
        messages.append(str(err.value))
    x = connector(oauth1_env(fake))
    fake.fail("POST /2/tweets", 500)
    fake.set_rate_limit("GET /2/users/me", remaining=0, reset_in=60)
    for call in (lambda: x.post("y"), x.me):
        with pytest.raises(XError) as err:
            call()
        messages.append(str(err.value))
    token_file = write_token(tmp_path / "t.json", fake, expires_in=-5)
    fake.revoke_refresh_token()
    with pytest.raises(XAuthError) as err:
        connector(oauth2_env(fake, token_file)).me()
    messages.append(str(err.value))
    config = XConfig.from_env(oauth1_env(fake) | oauth2_env(fake, token_file) | {"X_BEARER_TOKEN": fake.bearer_token})
    messages.append(repr(config))
    secrets = all_secrets(fake) + ["ats-not-the-right-one", json.loads(token_file.read_text())["refresh_token"]]
    for message in messages:
        for secret in secrets:
            assert secret not in message, message
