"""tests/fakes/fake_x.py driven by the real tweepy.Client (OAuth 1.0a and OAuth 2.0 user context).

tweepy always calls https://api.twitter.com; ``point_at`` mounts a URL-rewriting adapter on the client's
requests session so the calls reach the fake instead, and refuses any other destination.
"""
from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import tweepy
from oauthlib.oauth2.rfc6749.errors import OAuth2Error, UnauthorizedClientError
from requests.adapters import HTTPAdapter
from requests_oauthlib import OAuth1

from tests.conftest import wait_until
from tests.fakes.fake_x import (APP_ONLY_FORBIDDEN, BAD_REFRESH, DUPLICATE, OAUTH1_PERMISSIONS, REPLY_GONE, FakeX,
                                problem)

SCOPES = ["tweet.read", "tweet.write", "users.read", "offline.access"]
TOKEN_URL = "https://api.twitter.com/2/oauth2/token"
TWEET_FIELDS = ["public_metrics", "non_public_metrics", "organic_metrics", "created_at"]


class RewritingAdapter(HTTPAdapter):
    """Sends a prepared request for https://api.twitter.com/... to ``target`` (scheme and host swapped).

    By the time an adapter sees a request, requests has already applied ``auth``: an OAuth 1.0a signature
    covers the original https://api.twitter.com URL, which is what X itself would verify.
    """

    def __init__(self, target: str, tamper=None) -> None:
        super().__init__()
        self.target = urlsplit(target)
        self.tamper = tamper

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.url = urlunsplit((self.target.scheme, self.target.netloc, parts.path, parts.query, ""))
        if self.tamper is not None:
            self.tamper(request)
        kwargs["proxies"] = {}  # loopback only, whatever the environment says
        return super().send(request, **kwargs)


class RefusingAdapter(HTTPAdapter):
    def send(self, request, **kwargs):
        raise AssertionError(f"refused traffic to {request.url}: only the fake may be called")


def point_at(session: requests.Session, fake: FakeX, tamper=None) -> requests.Session:
    session.mount("https://", RefusingAdapter())
    session.mount("http://", RefusingAdapter())
    adapter = RewritingAdapter(fake.url, tamper)
    for host in ("https://api.twitter.com/", "https://api.x.com/"):
        session.mount(host, adapter)
    return session


def oauth1_client(fake: FakeX, *, consumer_secret: str | None = None, **kwargs) -> tweepy.Client:
    client = tweepy.Client(consumer_key=fake.consumer_key, consumer_secret=consumer_secret or fake.consumer_secret,
                           access_token=fake.access_token, access_token_secret=fake.access_token_secret, **kwargs)
    point_at(client.session, fake)
    return client


def oauth2_client(fake: FakeX, token: str | None = None, **kwargs) -> tweepy.Client:
    client = tweepy.Client(bearer_token=token or fake.issue_oauth2_token(), **kwargs)
    point_at(client.session, fake)
    return client


@pytest.fixture
def fake():
    with FakeX() as server:
        yield server


def test_oauth1_create_reply_delete_signed_over_the_original_url(fake):
    client = oauth1_client(fake)
    posted = client.create_tweet(text="Launch day at Acme")
    assert posted.data["text"] == "Launch day at Acme"
    assert posted.data["edit_history_tweet_ids"] == [posted.data["id"]]
    tweet_id = posted.data["id"]
    reply = client.create_tweet(text="More details below", in_reply_to_tweet_id=tweet_id)
    assert fake.tweet(reply.data["id"])["in_reply_to_tweet_id"] == tweet_id
    assert fake.requests[-1]["json"] == {"text": "More details below", "reply": {"in_reply_to_tweet_id": tweet_id}}

    assert client.delete_tweet(reply.data["id"]).data == {"deleted": True}
    assert fake.tweet(reply.data["id"])["deleted"] is True
    assert [t["id"] for t in fake.tweets()] == [tweet_id]
    assert fake.count("POST /2/tweets") == 2 and fake.count("DELETE /2/tweets/:id") == 1
    # Every signature was verified against the public URL, none against the fake's loopback address.
    assert fake.signed_base_urls == ["https://api.twitter.com/2/tweets"] * 2 + \
        [f"https://api.twitter.com/2/tweets/{reply.data['id']}"]


def test_signature_is_not_valid_for_the_rewritten_url(fake):
    fake.signature_bases = (fake.url,)  # verify as if the client had signed http://127.0.0.1:port/...
    with pytest.raises(tweepy.Unauthorized):
        oauth1_client(fake).create_tweet(text="never posted")
    assert fake.tweets() == []


def test_bad_signatures_are_refused(fake):
    with pytest.raises(tweepy.Unauthorized) as wrong_secret:
        oauth1_client(fake, consumer_secret="not-the-secret").create_tweet(text="nope")
    assert wrong_secret.value.response.json() == {"title": "Unauthorized", "detail": "Unauthorized",
                                                  "type": "about:blank", "status": 401}
    assert wrong_secret.value.response.headers["content-type"].startswith("application/problem+json")

    client = oauth1_client(fake)

    def add_query(request):  # a query parameter the signature does not cover
        request.url += "&max_results=100"

    point_at(client.session, fake, tamper=add_query)
    with pytest.raises(tweepy.Unauthorized):
        client.get_tweets(ids=["1"], user_auth=True)
    assert fake.tweets() == [] and fake.signed_base_urls == []


def test_get_me_and_get_user_with_public_metrics(fake):
    other = fake.add_user("TwitterDev", name="X Dev", public_metrics={"followers_count": 512, "listed_count": 7})
    fake.seed_tweet("hello")
    me = oauth1_client(fake).get_me(user_auth=True, user_fields=["public_metrics"])
    assert (me.data.id, me.data.username) == (int(fake.user_id), "acme_studio")
    assert me.data.public_metrics["tweet_count"] == 1

    client = oauth2_client(fake)
    user = client.get_user(username="twitterdev", user_fields=["public_metrics"])
    assert user.data.id == int(other)
    assert user.data.public_metrics == {"followers_count": 512, "following_count": 0, "tweet_count": 0,
                                        "listed_count": 7, "like_count": 0, "media_count": 0}
    missing = client.get_user(username="nobody_here")
    assert missing.data is None
    assert missing.errors[0]["detail"] == "Could not find user with username: [nobody_here]."
    assert missing.errors[0]["type"] == "https://api.twitter.com/2/problems/resource-not-found"


def test_get_tweets_100_ids_with_public_and_private_metrics(fake):
    now = datetime.now(timezone.utc)
    own = [fake.seed_tweet(f"post {i}", created_at=now - timedelta(hours=i),
                           public_metrics={"like_count": i, "impression_count": 10 * i},
                           non_public_metrics={"impression_count": 10 * i, "url_link_clicks": i},
                           organic_metrics={"impression_count": 10 * i, "like_count": i})
           for i in range(97)]
    old = fake.seed_tweet("from last quarter", created_at=now - timedelta(days=45))
    theirs = fake.seed_tweet("not ours", author_id=fake.add_user("someone"))
    gone = fake.seed_tweet("deleted later")
    oauth1_client(fake).delete_tweet(gone)
    ids = own + [old, theirs, gone]

    result = oauth2_client(fake).get_tweets(ids=ids, tweet_fields=TWEET_FIELDS)
    by_id = {t.id: t for t in result.data}
    assert len(result.data) == 99 and gone not in {str(i) for i in by_id}
    first = by_id[int(own[5])]
    assert first.public_metrics["like_count"] == 5 and first.public_metrics["impression_count"] == 50
    assert first.non_public_metrics == {"impression_count": 50, "url_link_clicks": 5, "user_profile_clicks": 0,
                                        "engagements": 0}
    assert first.organic_metrics["like_count"] == 5
    assert first.created_at <= now
    for refused in (old, theirs):  # not owned, or older than 30 days: the field is withheld, the Tweet is not
        assert by_id[int(refused)].non_public_metrics is None
        assert by_id[int(refused)].public_metrics is not None
    field_errors = [e for e in result.errors if e["title"] == "Field Authorization Error"]
    assert {e["resource_id"] for e in field_errors} == {old, theirs}
    assert f"Sorry, you are not authorized to access 'non_public_metrics.impression_count' on the Tweet with id : " \
           f"[{theirs}]." in {e["detail"] for e in field_errors}
    assert [e["detail"] for e in result.errors if e["title"] == "Not Found Error"] == \
        [f"Could not find tweet with ids: [{gone}]."]

    with pytest.raises(tweepy.BadRequest) as too_many:
        oauth2_client(fake).get_tweets(ids=ids + [own[0]])
    assert too_many.value.api_messages == [
        "The number of values in the `ids` query parameter list [101] is not between 1 and 100"]
    assert too_many.value.response.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"


def test_get_users_tweets_paginates_newest_first_from_start_time(fake):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    texts = [f"update {i}" for i in range(12)]
    for i, text in enumerate(texts):  # update 0 is the oldest
        fake.seed_tweet(text, created_at=now - timedelta(hours=12 - i))
    fake.seed_tweet("someone else's", author_id=fake.add_user("other"))
    client = oauth1_client(fake)
    start = now - timedelta(hours=10, minutes=30)  # excludes updates 0 and 1

    seen, pages = [], 0
    for page in tweepy.Paginator(client.get_users_tweets, fake.user_id, max_results=5, start_time=start,
                                 tweet_fields=["created_at"], user_auth=True):
        pages += 1
        assert page.meta["result_count"] == len(page.data)
        seen += [t.text for t in page.data]
    assert pages == 2 and seen == texts[:1:-1]
    assert fake.count("GET /2/users/:id/tweets") == 2
    with pytest.raises(tweepy.BadRequest) as small:
        client.get_users_tweets(fake.user_id, max_results=4, user_auth=True)
    assert small.value.api_messages == ["The `max_results` query parameter value [4] is not between 5 and 100"]


def test_oauth2_refresh_rotates_and_a_revoked_token_is_refused(fake):
    handler = tweepy.OAuth2UserHandler(client_id=fake.client_id, redirect_uri="https://example.com/callback",
                                       scope=SCOPES, client_secret=fake.client_secret)
    point_at(handler, fake)
    first = fake.refresh_token
    token = handler.refresh_token(TOKEN_URL, refresh_token=first)
    assert token["refresh_token"] not in (None, first) and token["token_type"].lower() == "bearer"
    assert oauth2_client(fake, token["access_token"]).get_me(user_auth=False).data.username == fake.username
    request = fake.requests[0]
    assert request["form"]["grant_type"] == "refresh_token" and request["authorization"].startswith("Basic ")

    with pytest.raises(OAuth2Error) as spent:  # rotation: the old refresh token is single-use
        handler.refresh_token(TOKEN_URL, refresh_token=first)
    assert (spent.value.error, spent.value.description) == ("invalid_request", BAD_REFRESH)
    fake.revoke_refresh_token()
    with pytest.raises(OAuth2Error) as revoked:
        handler.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
    assert revoked.value.description == BAD_REFRESH
    with pytest.raises(tweepy.Unauthorized):
        oauth2_client(fake, token["access_token"]).get_me(user_auth=False)

    wrong = tweepy.OAuth2UserHandler(client_id=fake.client_id, redirect_uri="https://example.com/callback",
                                     scope=SCOPES, client_secret="wrong")
    with pytest.raises(UnauthorizedClientError):
        point_at(wrong, fake).refresh_token(TOKEN_URL, refresh_token="anything")


def test_oauth2_user_context_posts_and_expired_tokens_401(fake):
    client = oauth2_client(fake)
    tweet_id = client.create_tweet(text="via OAuth 2.0", user_auth=False).data["id"]
    assert fake.tweet(tweet_id)["author_id"] == fake.user_id
    fake.expire_oauth2_tokens()
    with pytest.raises(tweepy.Unauthorized) as expired:
        client.get_me(user_auth=False)
    assert expired.value.response.json() == problem(401)


def test_error_mapping_duplicate_forbidden_reply_and_too_long(fake):
    client = oauth1_client(fake)
    client.create_tweet(text="same words")
    with pytest.raises(tweepy.Forbidden) as dup:
        client.create_tweet(text="same words")
    assert dup.value.api_messages == [DUPLICATE]
    assert dup.value.response.json() == {"detail": DUPLICATE, "type": "about:blank", "title": "Forbidden",
                                         "status": 403}
    with pytest.raises(tweepy.Forbidden) as gone:
        client.create_tweet(text="replying", in_reply_to_tweet_id="1234")
    assert gone.value.api_messages == [REPLY_GONE]
    with pytest.raises(tweepy.BadRequest) as long:
        client.create_tweet(text="x" * 281)
    assert "Your Tweet text is too long." in long.value.api_messages[0]
    client.create_tweet(text="https://example.com/" + "a" * 300)  # a URL weighs 23, whatever its length

    with pytest.raises(tweepy.Forbidden) as app_only:
        oauth2_client(fake, fake.bearer_token).get_me(user_auth=False)
    assert app_only.value.api_messages == [APP_ONLY_FORBIDDEN]
    fake.access_level = "read"
    with pytest.raises(tweepy.Forbidden) as read_only:
        client.create_tweet(text="read-only app")
    assert read_only.value.api_messages == [OAUTH1_PERMISSIONS]
    assert read_only.value.response.headers["x-access-level"] == "read"


def test_rate_limits_headers_429_and_reset(fake):
    client = oauth1_client(fake, return_type=requests.Response)
    first = client.get_me(user_auth=True)
    limit, remaining = int(first.headers["x-rate-limit-limit"]), int(first.headers["x-rate-limit-remaining"])
    assert (limit, remaining) == (75, 74) and int(first.headers["x-rate-limit-reset"]) > time.time()
    assert int(client.get_me(user_auth=True).headers["x-rate-limit-remaining"]) == 73
    with pytest.raises(tweepy.Unauthorized) as refused:  # errors carry the headers too
        oauth1_client(fake, consumer_secret="bad").get_me(user_auth=True)
    assert "x-rate-limit-reset" in refused.value.response.headers

    fake.set_rate_limit("POST /2/tweets", remaining=0, reset_in=120)
    with pytest.raises(tweepy.TooManyRequests) as limited:
        client.create_tweet(text="too soon")
    headers = limited.value.response.headers
    assert headers["x-rate-limit-remaining"] == "0"
    assert limited.value.reset_time == int(headers["x-rate-limit-reset"]) == fake.rate_limit("POST /2/tweets")["reset"]
    assert 110 < limited.value.reset_time - time.time() <= 121
    assert limited.value.response.json() == problem(429)
    assert fake.tweets() == []
    fake.set_rate_limit("POST /2/tweets", reset_in=-1)  # the window has rolled over
    assert client.create_tweet(text="now it fits").status_code == 201


def test_fail_the_nth_call_and_server_errors(fake):
    client = oauth1_client(fake)
    fake.fail("POST /2/tweets", 503, nth=2)
    client.create_tweet(text="one")
    with pytest.raises(tweepy.TwitterServerError) as down:
        client.create_tweet(text="two")
    assert down.value.response.status_code == 503
    assert down.value.response.json() == problem(503)
    client.create_tweet(text="three")
    assert [t["text"] for t in fake.tweets()] == ["one", "three"] and fake.count("POST /2/tweets") == 3

    fake.fail("POST /2/tweets", 500, after_accept=True)  # taken, but the client is told it failed
    with pytest.raises(tweepy.TwitterServerError):
        client.create_tweet(text="four")
    fake.fail("POST /2/tweets", None, after_accept=True)  # taken, and the connection drops
    with pytest.raises(requests.ConnectionError):
        client.create_tweet(text="five")
    timeline = client.get_users_tweets(fake.user_id, user_auth=True)
    assert [t.text for t in timeline.data][:2] == ["five", "four"]


def _post_in_thread(client: tweepy.Client, text: str, **kwargs) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["response"] = client.create_tweet(text=text, **kwargs)
        except Exception as err:  # surfaced to the test through ``outcome``
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_hold_before_and_after_acceptance(fake):
    client = oauth1_client(fake)
    before = fake.hold("POST /2/tweets")
    thread, outcome = _post_in_thread(client, "held at the door")
    assert before.arrived.wait(5)
    assert before.body == {"text": "held at the door"} and fake.tweets() == []
    before.release()
    thread.join(5)
    assert outcome["response"].data["text"] == "held at the door" and len(fake.tweets()) == 1

    after = fake.hold("POST /2/tweets", after_accept=True)
    thread, outcome = _post_in_thread(client, "accepted, answer held")
    assert after.arrived.wait(5)
    assert [t["text"] for t in fake.tweets()] == ["held at the door", "accepted, answer held"]
    assert thread.is_alive() and outcome == {}
    after.release()
    thread.join(5)
    assert outcome["response"].data["id"] == fake.tweets()[-1]["id"]


def test_a_client_that_dies_while_held_before_acceptance_posts_nothing(fake):
    """A signed request sent over a raw socket that is then closed, as a killed client process leaves it."""
    prepared = requests.Request("POST", "https://api.twitter.com/2/tweets", json={"text": "never lands"},
                                auth=OAuth1(fake.consumer_key, fake.consumer_secret, fake.access_token,
                                            fake.access_token_secret)).prepare()
    headers = "".join(f"{k}: {v.decode() if isinstance(v, bytes) else v}\r\n" for k, v in prepared.headers.items())
    hold = fake.hold("POST /2/tweets")
    sock = socket.create_connection(("127.0.0.1", fake.port))
    sock.sendall(f"POST /2/tweets HTTP/1.1\r\nHost: 127.0.0.1:{fake.port}\r\n{headers}\r\n".encode()
                 + prepared.body)
    assert hold.arrived.wait(5) and hold.body == {"text": "never lands"}
    sock.close()
    wait_until(hold.client_gone, timeout=5, message="the fake to see the client go")
    hold.release()
    wait_until(lambda: hold.abandoned, timeout=5, message="the held request to be abandoned")
    assert fake.tweets() == [] and fake.signed_base_urls == ["https://api.twitter.com/2/tweets"]
