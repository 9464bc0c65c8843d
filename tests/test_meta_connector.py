"""The Meta connector (social_media_integration/facebook_instagram_connector.py) against the Graph fake, over the wire.

No sleeps: the connector's clock and sleep are injected (a fake clock that jumps), Instagram containers advance by
status polls, and the fake's faults and holds make the failures.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from core.errors import AuthError, ConfigError, NotConfiguredError, RateLimitError, TransientError, UpstreamError, \
    ValidationError
from social_media_integration.facebook_instagram_connector import DEFAULT_IG_METRICS, DEFAULT_PAGE_METRICS, \
    MetaConnector
from social_media_integration.meta_config import MetaConfig
from social_media_integration.meta_errors import MetaAuthError, MetaConnectionError, MetaDuplicateError, MetaError, \
    MetaParameterError, MetaPolicyError, MetaRateLimitError, MetaResponseError
from tests.fakes.fake_graph import FakeGraph

FEED, PHOTOS = "POST /{page-id}/feed", "POST /{page-id}/photos"
CONTAINERS, PUBLISH = "POST /{ig-user-id}/media", "POST /{ig-user-id}/media_publish"


class Clock:
    """Wall time that moves only when the connector sleeps."""

    def __init__(self) -> None:
        self.now, self.sleeps = time.time(), []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Memory:
    """A ContainerMemory: what the state store would keep per post."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.history: list[str | None] = []

    def get(self) -> str | None:
        return self.value

    def set(self, container_id: str | None) -> None:
        self.value = container_id
        self.history.append(container_id)


class Crash(BaseException):
    """The process dying mid-call (BaseException: no handler in the connector may swallow it)."""


@pytest.fixture
def graph():
    with FakeGraph(polls_in_progress=1) as fake:
        yield fake


@pytest.fixture
def clock():
    return Clock()


def env(graph: FakeGraph, **overrides: str) -> dict[str, str]:
    return {"META_ACCESS_TOKEN": graph.user_token, "FACEBOOK_PAGE_ID": graph.page_id,
            "INSTAGRAM_ACCOUNT_ID": graph.ig_user_id, "META_GRAPH_URL": graph.url, **overrides}


def connect(graph: FakeGraph, clock: Clock, *, sleep=None, timeout: float = 5.0, **overrides: str) -> MetaConnector:
    session = requests.Session()
    session.trust_env = False  # loopback only, whatever the environment's proxies say
    config = dataclasses.replace(MetaConfig.from_env(env(graph, **overrides)), timeout=timeout)
    return MetaConnector(config, session=session, clock=clock, sleep=sleep or clock.sleep)


@pytest.fixture
def meta(graph, clock):
    return connect(graph, clock)


def assert_no_token(graph: FakeGraph, err: BaseException, *more: str) -> None:
    """Neither the error nor anything chained to it (what a traceback would print) holds a token."""
    texts, seen = [], err
    while seen is not None:
        texts += [str(seen), repr(seen), str(getattr(seen, "meta_message", ""))]
        seen = seen.__cause__ or seen.__context__
    for token in (graph.user_token, graph.page_token(), *more):
        assert all(token not in text for text in texts)


# -- configuration ------------------------------------------------------------------------------------------

def test_config_from_env_defaults_and_the_https_rule():
    config = MetaConfig.from_env({"META_ACCESS_TOKEN": "EAAGsecretsecretsecret", "FACEBOOK_PAGE_ID": "123"})
    assert (config.graph_url, config.graph_version) == ("https://graph.facebook.com", "v26.0")
    assert config.api_root == "https://graph.facebook.com/v26.0"
    assert config.is_configured() and config.facebook_configured() and not config.instagram_configured()
    assert "EAAGsecret" not in repr(config) and "access_token='<set>'" in repr(config)
    assert not MetaConfig.from_env({"FACEBOOK_PAGE_ID": "123"}).is_configured()
    assert not MetaConfig.from_env({"META_ACCESS_TOKEN": "EAAGsecret"}).is_configured()
    assert MetaConfig.from_env({"META_GRAPH_URL": "http://127.0.0.1:9/"}).graph_url == "http://127.0.0.1:9"
    for bad, variable in [({"META_GRAPH_URL": "http://graph.example.com"}, "META_GRAPH_URL"),
                          ({"META_GRAPH_URL": "https://graph.facebook.com/v26.0"}, "META_GRAPH_URL"),
                          ({"META_GRAPH_URL": "https://graph.facebook.com/?access_token=EAAGsecret"}, "META_GRAPH_URL"),
                          ({"META_GRAPH_VERSION": "26"}, "META_GRAPH_VERSION"),
                          ({"FACEBOOK_PAGE_ID": "../me"}, "FACEBOOK_PAGE_ID")]:
        with pytest.raises(ConfigError) as caught:
            MetaConfig.from_env(bad)
        assert variable in str(caught.value) and "EAAGsecret" not in str(caught.value)


def test_not_configured_channels_say_which_variable(graph, clock):
    bare = MetaConnector(MetaConfig(graph_url=graph.url), session=requests.Session(), clock=clock, sleep=clock.sleep)
    with pytest.raises(NotConfiguredError, match="META_ACCESS_TOKEN"):
        bare.probe()
    no_page = MetaConnector(MetaConfig(access_token=graph.user_token, graph_url=graph.url), clock=clock)
    with pytest.raises(NotConfiguredError, match="FACEBOOK_PAGE_ID"):
        no_page.post_page("hello")
    with pytest.raises(NotConfiguredError, match="INSTAGRAM_ACCOUNT_ID"):
        no_page.publishing_limit()
    assert graph.requests == []


# -- Facebook Page ------------------------------------------------------------------------------------------

def test_page_token_is_derived_once_from_the_user_token(graph, meta):
    info = meta.probe()
    assert info == {"graph_version": "v26.0", "account": "Owner of Acme", "account_id": "10000000000000001",
                    "page_id": graph.page_id, "instagram_account_id": graph.ig_user_id}
    assert meta.page_token() == graph.page_token()
    first = meta.post_page("Spring menu is live")
    second = meta.post_page("Summer menu is live")
    assert graph.count("GET /me/accounts") == 1  # derived once, then cached
    assert [p["id"] for p in graph.posts()] == [second["id"], first["id"]]
    assert all("access_token" not in r["params"] for r in graph.requests)  # tokens ride in the header only


def test_given_page_token_is_used_as_is(graph, clock):
    meta = connect(graph, clock, META_ACCESS_TOKEN="", META_PAGE_ACCESS_TOKEN=graph.page_token())
    meta.post_page("With the Page's own token")
    assert graph.count("GET /me/accounts") == 0 and graph.posts()[0]["message"] == "With the Page's own token"


def test_a_page_the_user_does_not_manage_is_an_auth_problem(graph, clock):
    meta = connect(graph, clock, FACEBOOK_PAGE_ID="4242")
    with pytest.raises(MetaAuthError, match="FACEBOOK_PAGE_ID") as caught:
        meta.post_page("hello")
    assert_no_token(graph, caught.value)


def test_text_link_and_photo_posts(graph, meta):
    text = meta.post_page("Doors open at 9")
    link = meta.post_page("Our new menu", link="https://acme.example/menu")
    photo = meta.post_page("Fresh from the oven", image_url="https://cdn.acme.example/a.jpg")
    posts = {p["id"]: p for p in graph.posts()}
    assert set(posts) == {text["id"], link["id"], photo["id"]}
    assert posts[link["id"]]["link"] == "https://acme.example/menu"
    assert posts[photo["id"]]["photo_id"] and posts[photo["id"]]["message"] == "Fresh from the oven"
    page, _, post = text["id"].partition("_")
    assert text["url"] == f"https://www.facebook.com/{page}/posts/{post}"
    assert graph.count(PHOTOS) == 1 and graph.count(FEED) == 2
    with pytest.raises(ValidationError):
        meta.post_page("both", link="https://acme.example", image_url="https://cdn.acme.example/a.jpg")
    with pytest.raises(ValidationError):
        meta.post_page("   ")


def test_a_dropped_answer_is_an_unknown_outcome_found_in_the_feed(graph, meta, clock):
    graph.fail(FEED, None, after_accept=True)  # posted, then the connection drops
    with pytest.raises(MetaConnectionError) as caught:
        meta.post_page("Did it land?")
    assert caught.value.outcome_unknown and isinstance(caught.value, TransientError)
    assert_no_token(graph, caught.value)
    assert graph.count(FEED) == 1  # never retried inside
    found = meta.find_page_post("Did it land?", since=clock() - 600)
    assert found == graph.posts()[0]["id"] and len(graph.posts()) == 1
    assert meta.find_page_post("Something never posted", since=clock() - 600) is None


def test_a_timeout_is_an_unknown_outcome(graph, clock):
    meta = connect(graph, clock, timeout=0.3)
    hold = graph.hold(FEED, after_accept=True)  # Graph did the work; the answer never comes in time
    try:
        with pytest.raises(MetaConnectionError, match="within 0.3 s") as caught:
            meta.post_page("Slow day at Graph")
        assert caught.value.outcome_unknown
        assert_no_token(graph, caught.value)
    finally:
        hold.release()
    assert meta.find_page_post("Slow day at Graph", since=datetime.now(timezone.utc) - timedelta(minutes=5))


def test_find_page_post_pages_through_the_feed_and_honours_since(graph, meta, clock):
    now = datetime.now(timezone.utc)
    target = graph.seed_post("The one we look for", created=now - timedelta(hours=5))
    graph.seed_post("Old twin", created=now - timedelta(days=3))
    for i in range(120):
        graph.seed_post(f"filler {i}", created=now - timedelta(hours=1, seconds=i))
    assert meta.find_page_post("The one we look for\n", since=now - timedelta(days=1)) == target
    assert graph.count("GET /{page-id}/feed") == 2  # 100 a page, stopped at the match
    assert meta.find_page_post("Old twin", since=now - timedelta(days=1)) is None  # older than since


def test_duplicate_refusal_is_distinct_and_reconciled(graph, meta, clock):
    first = meta.post_page("Same words twice")
    with pytest.raises(MetaDuplicateError) as caught:
        meta.post_page("Same words twice")
    assert isinstance(caught.value, UpstreamError) and not isinstance(caught.value, MetaResponseError)
    assert caught.value.graph_code == 506
    assert meta.find_page_post("Same words twice", since=clock() - 60) == first["id"]


# -- Instagram ----------------------------------------------------------------------------------------------

def test_instagram_in_progress_then_finished(clock):
    with FakeGraph(polls_in_progress=2) as graph:
        meta, memory = connect(graph, clock), Memory()
        result = meta.publish_instagram(image_url="https://cdn.acme.example/a.jpg", caption="Launch day",
                                        pending=memory)
        [media] = graph.media()
        assert result["id"] == media["id"] and media["caption"] == "Launch day"
        assert result["permalink"].startswith("https://www.instagram.com/p/")
        assert graph.container(result["container_id"])["status"] == "PUBLISHED"
        assert clock.sleeps == [2.0, 3.0]  # two IN_PROGRESS polls, waited through the injected sleep
        assert memory.history == [result["container_id"], None]
        assert graph.count(CONTAINERS) == 1 and graph.count(PUBLISH) == 1


def test_video_goes_out_as_a_reel(graph, meta):
    result = meta.publish_instagram(video_url="https://cdn.acme.example/r.mp4", caption="Behind the scenes",
                                    pending=Memory())
    assert graph.container(result["container_id"])["media_type"] == "REELS"
    with pytest.raises(ValidationError):
        meta.create_container(caption="no media")


@pytest.mark.parametrize("outcome", ["ERROR", "EXPIRED"])
def test_instagram_container_error_or_expiry(graph, meta, outcome):
    graph.next_container(outcome, polls=1, error_code=2207052)
    memory = Memory()
    with pytest.raises(MetaResponseError, match=f"ended {outcome}") as caught:
        meta.publish_instagram(image_url="https://cdn.acme.example/a.jpg", caption="Broken", pending=memory)
    if outcome == "ERROR":
        assert "2207052" in str(caught.value)
    assert memory.value is None  # nothing went out: the next attempt starts afresh
    assert graph.media() == [] and graph.count(PUBLISH) == 0


def test_crash_after_the_container_was_created_resumes_it(graph, clock):
    memory = Memory()

    def die(_seconds: float) -> None:
        raise Crash

    with pytest.raises(Crash):
        connect(graph, clock, sleep=die).publish_instagram(image_url="https://cdn.acme.example/a.jpg",
                                                           caption="Survives a crash", pending=memory)
    container = memory.value
    assert container and graph.count(CONTAINERS) == 1 and graph.media() == []

    result = connect(graph, clock).publish_instagram(image_url="https://cdn.acme.example/a.jpg",
                                                     caption="Survives a crash", pending=memory)
    assert result["container_id"] == container and graph.count(CONTAINERS) == 1  # no second container
    assert [m["id"] for m in graph.media()] == [result["id"]] and memory.value is None


def test_a_remembered_container_graph_does_not_know_is_replaced(graph, meta):
    memory = Memory()
    memory.value = "424242"  # e.g. a store restored from an old backup
    result = meta.publish_instagram(image_url="https://cdn.acme.example/a.jpg", caption="Fresh start", pending=memory)
    assert result["container_id"] != "424242" and graph.count(CONTAINERS) == 1 and len(graph.media()) == 1


def test_a_lost_publish_answer_is_found_not_published_again(graph, meta, clock):
    memory = Memory()
    graph.fail(PUBLISH, None, after_accept=True)
    with pytest.raises(MetaConnectionError) as caught:
        meta.publish_instagram(image_url="https://cdn.acme.example/a.jpg", caption="Exactly once", pending=memory)
    assert caught.value.outcome_unknown and memory.value  # kept: the next attempt reconciles
    again = meta.publish_instagram(image_url="https://cdn.acme.example/a.jpg", caption="Exactly once", pending=memory)
    assert [m["id"] for m in graph.media()] == [again["id"]]
    assert graph.count(PUBLISH) == 1 and graph.count(CONTAINERS) == 1 and memory.value is None


def test_publishing_deadline_keeps_the_container_for_later(graph, meta, clock):
    graph.next_container("FINISHED", polls=8)
    memory = Memory()
    with pytest.raises(MetaConnectionError, match="still IN_PROGRESS after 20 s"):
        meta.publish_instagram(image_url="https://cdn.acme.example/v.jpg", caption="Slow", pending=memory,
                               deadline_s=20)
    assert sum(clock.sleeps) == 20 and memory.value and graph.media() == []
    result = meta.publish_instagram(image_url="https://cdn.acme.example/v.jpg", caption="Slow", pending=memory)
    assert result["container_id"] == memory.history[0] and graph.count(CONTAINERS) == 1
    assert len(graph.media()) == 1


def test_find_instagram_media_by_caption_since(graph, meta, clock):
    now = datetime.now(timezone.utc)
    old = graph.seed_media("Old caption", created=now - timedelta(days=10))
    recent = graph.seed_media("Recent caption", created=now - timedelta(hours=2))
    assert meta.find_instagram_media("Recent caption", since=now - timedelta(days=1)) == recent
    assert meta.find_instagram_media("Old caption", since=now - timedelta(days=1)) is None
    assert meta.find_instagram_media("Old caption", since=now - timedelta(days=30)) == old


def test_publishing_limit_and_a_spent_quota(graph, meta):
    graph.set_quota_usage(3)
    assert meta.publishing_limit() == {"used": 3, "limit": 50, "remaining": 47, "window_s": 86400}
    graph.set_quota_usage(50)
    with pytest.raises(MetaRateLimitError) as caught:
        meta.publish_instagram(image_url="https://cdn.acme.example/a.jpg", caption="Too many", pending=Memory())
    assert (caught.value.graph_code, caught.value.subcode) == (9, 2207042)


# -- insights -----------------------------------------------------------------------------------------------

def test_page_insights_drop_a_retired_metric_and_keep_the_rest(graph, meta, caplog):
    today = datetime.now(timezone.utc).date()
    graph.set_insight(graph.page_id, "page_media_view", {today - timedelta(days=2): 40, today - timedelta(days=1): 55})
    graph.set_insight(graph.page_id, "page_follows", {today - timedelta(days=2): 300, today - timedelta(days=1): 302})
    with caplog.at_level(logging.WARNING, "social_media_integration.meta"):
        report = meta.page_insights(["page_media_view", "page_impressions", "page_follows"], days=7)
    assert report == {"metrics": {"page_media_view": 95, "page_follows": 302}, "skipped": ["page_impressions"]}
    # Graph's Page error does not name the metric: one call with all, then one per metric (1 + 3)
    assert graph.count("GET /{page-id}/insights") == 4
    assert "page_impressions" in caplog.text and "page_media_view" in caplog.text  # the replacement is named
    assert graph.user_token not in caplog.text and graph.page_token() not in caplog.text

    clean = meta.page_insights(days=7)
    assert set(clean["metrics"]) == set(DEFAULT_PAGE_METRICS) and clean["skipped"] == []
    assert graph.count("GET /{page-id}/insights") == 5  # the accepted defaults: one call


def test_instagram_insights_drop_the_named_metric(graph, meta):
    graph.set_insight(graph.ig_user_id, "views", 30)
    graph.set_insight(graph.ig_user_id, "reach", {datetime.now(timezone.utc).date() - timedelta(days=1): 12})
    report = meta.instagram_insights(["views", "impressions", "reach", "video_views"], days=7)
    assert report == {"metrics": {"views": 210, "reach": 12}, "skipped": ["impressions", "video_views"]}
    assert graph.count("GET /{ig-user-id}/insights") == 3  # Instagram names each refusal: 1 + 2 calls
    assert meta.instagram_insights(days=7)["skipped"] == [] and graph.count("GET /{ig-user-id}/insights") == 4
    assert set(meta.instagram_insights()["metrics"]) == set(DEFAULT_IG_METRICS)


def test_insights_window_and_non_metric_refusals(graph, meta):
    with pytest.raises(ValidationError):
        meta.instagram_insights(days=31)
    with pytest.raises(ValidationError):
        meta.page_insights(days=0)
    graph.fail("GET /{page-id}/insights", "invalid_parameter")  # a refusal about something else: not hidden
    with pytest.raises(MetaParameterError):
        meta.page_insights(days=7)


# -- errors -------------------------------------------------------------------------------------------------

def test_expired_and_invalidated_tokens(graph, clock):
    expired = graph.issue_user_token()
    graph.expire_token(expired)
    changed = graph.issue_user_token()
    graph.invalidate_token(changed)
    for token, subcode, word in [(expired, 463, "expired"), (changed, 460, "invalidated"),
                                 ("EAAGnotarealtokenatall1234", None, "rejected")]:
        with pytest.raises(MetaAuthError) as caught:
            connect(graph, clock, META_ACCESS_TOKEN=token).probe()
        err = caught.value
        assert isinstance(err, AuthError) and (err.graph_code, err.subcode) == (190, subcode)
        assert word in str(err) and "META_ACCESS_TOKEN" in str(err)
        assert_no_token(graph, err, token)


def test_a_revoked_page_token_is_derived_again(graph, meta):
    meta.post_page("before")
    graph.invalidate_token(graph.page_token())
    with pytest.raises(MetaAuthError):
        meta.post_page("after")
    with pytest.raises(MetaAuthError):  # the old token is not reused: me/accounts is asked again
        meta.post_page("again")
    assert graph.count("GET /me/accounts") == 2


@pytest.mark.parametrize("name, code, retry_after", [
    ("app_rate_limit", 4, None),        # X-App-Usage carries no estimate: the caller's default wait applies
    ("user_rate_limit", 17, None),
    ("page_rate_limit", 32, 420.0),     # X-Page-Usage: estimated_time_to_regain_access = 7 min
    ("custom_rate_limit", 613, 420.0),  # X-Business-Use-Case-Usage
])
def test_rate_limits_wait_as_the_usage_headers_say(graph, meta, name, code, retry_after):
    graph.fail(FEED, name, minutes=7)
    with pytest.raises(MetaRateLimitError) as caught:
        meta.post_page("throttled")
    err = caught.value
    assert isinstance(err, RateLimitError) and err.retryable and err.graph_code == code
    assert err.retry_after == retry_after
    assert_no_token(graph, err)
    kind = {4: "app", 17: "app", 32: "page", 613: "business_use_case"}[code]
    seen = meta.usage()[kind]["value"]
    seen = next(iter(seen.values()))[0] if kind == "business_use_case" else seen
    assert seen["call_count"] == 100  # the usage record shows the limit that was hit
    assert graph.posts() == []


def test_a_throttled_page_and_the_usage_record(graph, meta):
    meta.post_page("fine")
    usage = meta.usage()
    assert {"app", "page", "business_use_case"} <= set(usage)
    assert set(usage["app"]["value"]) == {"call_count", "total_time", "total_cputime"}
    graph.throttle(32, minutes=15)
    with pytest.raises(MetaRateLimitError) as caught:
        meta.page_insights(days=7)
    assert caught.value.retry_after == 900.0
    assert meta.usage()["page"]["value"]["estimated_time_to_regain_access"] == 15


def test_policy_parameter_server_and_version_errors(graph, meta, clock):
    graph.blocked_terms.add("scam.example")
    errors: list[MetaError] = []
    with pytest.raises(MetaPolicyError, match="policy") as caught:
        meta.post_page("win", link="https://scam.example")
    errors.append(caught.value)
    assert caught.value.graph_code == 368 and isinstance(caught.value, UpstreamError)

    with pytest.raises(MetaParameterError, match="Object with ID '424242' does not exist") as caught:
        meta.container_status("424242")
    errors.append(caught.value)
    assert (caught.value.graph_code, caught.value.subcode) == (100, 33)

    for status, code in [(500, 1), (503, 2)]:
        graph.fail(FEED, status)
        with pytest.raises(MetaConnectionError) as caught:
            meta.post_page("down")
        errors.append(caught.value)
        assert caught.value.status == status and caught.value.graph_code == code and caught.value.retryable

    graph.fail(FEED, "invalid_parameter", message="(#100) Invalid parameter near " + graph.page_token())
    with pytest.raises(MetaParameterError) as caught:
        meta.post_page("refused")
    errors.append(caught.value)
    assert "**REDACTED**" in str(caught.value)  # Graph echoing a token is cut out

    with pytest.raises(MetaResponseError, match="Unknown path components"):
        connect(graph, clock, META_GRAPH_VERSION="v19.0").probe()
    with pytest.raises(ValidationError):
        meta.container_status("../me/accounts")
    for err in errors:
        assert_no_token(graph, err)
    assert [p["message"] for p in graph.posts()] == []


def test_refused_and_unreachable_graph(clock):
    with FakeGraph() as graph:
        url = graph.url
        meta = connect(graph, clock)
    with pytest.raises(MetaConnectionError, match="unreachable") as caught:  # the fake is gone: refused
        meta.probe()
    assert url not in str(caught.value)


# -- posts and media with their metrics (the weekly summary) ------------------------------------------------

POSTS, MEDIA = "GET /{page-id}/posts", "GET /{ig-user-id}/media"


def fortnight() -> tuple[datetime, datetime]:
    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=14), end


def seed_page(graph: FakeGraph, start: datetime, end: datetime, count: int) -> dict[str, dict]:
    """``count`` posts spread over [start, end) with counts (every third one never shared), and 8 outside it."""
    seeded = {}
    for i in range(count):
        counts = {"reactions": i % 7, "comments": i % 5, "shares": i % 3, "views": 10 * i + 1, "reach": 5 * i}
        created = start + (end - start) * i / count
        seeded[graph.seed_post(f"post {i}", created=created, metrics=counts)] = {"created": created, **counts}
    for when in (start - timedelta(seconds=1), start - timedelta(days=3), end, end + timedelta(hours=5)) * 2:
        graph.seed_post(f"outside {when}", created=when, metrics={"reactions": 1000, "views": 1000})
    return seeded


@pytest.mark.parametrize("paging", ["cursor", "time"])
def test_page_posts_250_in_the_window_take_three_list_calls(graph, meta, paging):
    graph.feed_paging = paging  # Page feeds may page by until + __paging_token, with no cursor at all
    start, end = fortnight()
    seeded = seed_page(graph, start, end, 250)
    posts = meta.page_posts(since=start, until=end)

    assert {p["id"] for p in posts} == set(seeded)  # the window honoured: start included, end excluded
    assert graph.count(POSTS) == 3 and graph.count("GET /{post-id}") == 0  # 100 + 100 + 50 (+ 4 after the end)
    calls = [r["params"] for r in graph.requests if r["key"] == POSTS]
    assert [c["limit"] for c in calls] == ["100"] * 3 and calls[0]["since"] == str(int(start.timestamp()))
    assert [bool(c.get("after") or c.get("__paging_token")) for c in calls] == [False, True, True]
    assert all("access_token" not in c and "insights.metric(post_media_view)" in c["fields"] for c in calls)
    first = next(p for p in posts if p["id"] == next(iter(seeded)))
    assert first["text"] == "post 0" and first["created"] == start and first["created"].tzinfo == timezone.utc
    assert first["url"].startswith("https://www.facebook.com/") and first["details"] == {
        "reactions": 0, "comments": 0, "shares": 0, "views": 1}
    assert sum(p["reach"] for p in posts) == sum(s["views"] for s in seeded.values())
    assert sum(p["engagement"] for p in posts) == sum(s["reactions"] + s["comments"] + s["shares"]
                                                      for s in seeded.values())
    for p in posts:
        s = seeded[p["id"]]
        assert p["details"] == {k: s[k] for k in ("reactions", "comments", "shares", "views")}

    from social_media_integration import summaries
    figures = summaries.summarise("facebook", [summaries.Post(p["id"], p["text"], p["created"], p["reach"],
                                                              p["engagement"], p["url"]) for p in posts], end=end)
    assert figures["posts"] + figures["previous"]["posts"] == 250
    assert figures["reach"] + figures["previous"]["reach"] == sum(s["views"] for s in seeded.values())


def test_instagram_media_250_in_the_window_take_three_list_calls(graph, meta):
    start, end = fortnight()
    seeded = {}
    for i in range(250):
        counts = {"likes": i % 11, "comments": i % 4, "saves": i % 3, "shares": i % 2, "views": 20 * i, "reach": 9 * i}
        created = start + (end - start) * i / 250
        seeded[graph.seed_media(f"caption {i}", created=created, metrics=counts)] = counts
    for when in (start - timedelta(seconds=1), end, end + timedelta(days=1)):
        graph.seed_media(f"outside {when}", created=when, metrics={"likes": 1000, "views": 1000})
    media = meta.instagram_media(since=start, until=end)

    assert {m["id"] for m in media} == set(seeded) and graph.count(MEDIA) == 3
    calls = [r["params"] for r in graph.requests if r["key"] == MEDIA]
    assert all(c["limit"] == "100" and "insights.metric(views,reach,saved,shares)" in c["fields"] for c in calls)
    assert sum(m["reach"] for m in media) == sum(s["views"] for s in seeded.values())
    assert sum(m["engagement"] for m in media) == sum(s["likes"] + s["comments"] + s["saves"] + s["shares"]
                                                      for s in seeded.values())
    for m in media:
        assert m["details"] == seeded[m["id"]] and m["url"].startswith("https://www.instagram.com/p/")
    assert all(m["created"].tzinfo == timezone.utc and start <= m["created"] < end for m in media)


def test_a_refused_post_metric_costs_one_call_and_keeps_the_counts(graph, meta, caplog):
    start, end = fortnight()
    seeded = seed_page(graph, start, end, 30)
    graph.post_metrics.discard("post_media_view")  # a version that no longer knows it: the Page names nothing
    with caplog.at_level(logging.WARNING, "social_media_integration.meta"):
        posts = meta.page_posts(since=start, until=end)
    assert graph.count(POSTS) == 2 and len(posts) == 30 and all(p["reach"] == 0 for p in posts)
    assert sum(p["engagement"] for p in posts) == sum(s["reactions"] + s["comments"] + s["shares"]
                                                      for s in seeded.values())
    assert "post_media_view" in caplog.text and graph.refused_metrics[0][1:] == ("post_media_view", "unknown")

    graph.ig_media_metrics.remove("saved")  # Instagram names it by its index: only that one is dropped
    ids = [graph.seed_media(f"m{i}", created=start + timedelta(hours=i),
                            metrics={"views": 7, "saves": 3, "likes": 1}) for i in range(3)]
    media = meta.instagram_media(since=start, until=end)
    assert graph.count(MEDIA) == 2 and {m["id"] for m in media} == set(ids)
    assert all(m["details"] == {"likes": 1, "comments": 0, "saves": 0, "shares": 0, "views": 7, "reach": 0}
               for m in media)


def test_the_lists_are_bounded_and_check_their_window(graph, meta, monkeypatch):
    from social_media_integration import meta_lists
    start, end = fortnight()
    seed_page(graph, start, end, 250)
    monkeypatch.setattr(meta_lists, "MAX_PAGES", 2)
    with pytest.raises(MetaResponseError, match="more than 200 Page posts between .* shorter period"):
        meta.page_posts(since=start, until=end)
    assert graph.count(POSTS) == 2
    with pytest.raises(ValidationError):
        meta.instagram_media(since=end, until=start)
    assert meta.instagram_media(since=start, until=end) == [] and graph.count(MEDIA) == 1


def test_fake_graph_answers_field_expansion_as_graph_does(graph):
    session = requests.Session()
    session.trust_env = False
    page_token = graph.page_token()
    shared = graph.seed_post("shared", metrics={"reactions": 30, "comments": 4, "shares": 2, "views": 90})
    graph.seed_post("nobody shared it", created=datetime.now(timezone.utc) - timedelta(days=1))

    def get(path: str, token: str, **params) -> dict:
        return session.get(f"{graph.base_url}/{path}", params=params, headers={"Authorization": f"Bearer {token}"},
                           timeout=5).json()

    fields = ("message,shares,reactions.summary(total_count).limit(0),comments.summary(true).limit(2),"
              "insights.metric(post_media_view,post_total_media_view_unique)")
    body = get(f"{graph.page_id}/posts", page_token, fields=fields, limit=1)
    [post] = body["data"]
    assert post["id"] == shared and post["shares"] == {"count": 2}
    assert post["reactions"] == {"data": [], "summary": {"total_count": 30}}
    assert post["comments"]["summary"] == {"order": "ranked", "total_count": 4, "can_comment": True}
    assert len(post["comments"]["data"]) == 2 and post["comments"]["paging"]["next"]
    assert [(i["name"], i["period"], i["values"]) for i in post["insights"]["data"]] == [
        ("post_media_view", "lifetime", [{"value": 90}]),
        ("post_total_media_view_unique", "lifetime", [{"value": 0}])]
    assert f"access_token={page_token}" in body["paging"]["next"]  # why the connector follows the cursor instead
    after = get(f"{graph.page_id}/feed", page_token, fields=fields, limit=1,
                after=body["paging"]["cursors"]["after"])
    assert "shares" not in after["data"][0] and "next" not in after["paging"]

    assert get(f"{graph.page_id}/posts", graph.user_token, fields=fields)["error"]["code"] == 190  # a Page token
    refused = get(f"{graph.page_id}/posts", page_token, fields="insights.metric(post_impressions)")["error"]
    assert refused["message"] == "(#100) The value must be a valid insights metric"
    nonexisting = get(f"{graph.page_id}/posts", page_token, fields="message,reaction.summary(true)")["error"]
    assert nonexisting["message"] == "(#100) Tried accessing nonexisting field (reaction) on node type (PagePost)"
    assert get(f"{graph.page_id}/posts", page_token, fields="insights.metric(a")["error"]["code"] == 2500
    now = int(time.time())
    window = get(f"{graph.page_id}/posts", page_token, fields="id", since=now - 3600, until=now + 60)
    assert window["data"] == [{"id": shared}]

    media = graph.seed_media("m", metrics={"likes": 5, "comments": 1, "saves": 2, "shares": 3, "views": 40,
                                           "reach": 30})
    [item] = get(f"{graph.ig_user_id}/media", graph.user_token,
                 fields="like_count,comments_count,insights.metric(views,reach,saved,shares)")["data"]
    assert item["id"] == media and (item["like_count"], item["comments_count"]) == (5, 1)
    assert {i["name"]: i["values"][0]["value"] for i in item["insights"]["data"]} == {
        "views": 40, "reach": 30, "saved": 2, "shares": 3}
    plays = get(f"{graph.ig_user_id}/media", graph.user_token, fields="insights.metric(views,plays)")["error"]
    assert plays["message"].startswith("(#100) metric[1] must be one of the following values: views, reach")
    session.close()


def test_find_page_post_follows_a_time_paged_feed(graph, meta):
    graph.feed_paging = "time"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    target = graph.seed_post("Deep in the feed", created=now - timedelta(hours=5))
    for i in range(230):  # many in the same second: the paging token, not the time, says where to go on
        graph.seed_post(f"filler {i}", created=now - timedelta(hours=1, seconds=i // 50))
    assert meta.find_page_post("Deep in the feed", since=now - timedelta(days=1)) == target
    calls = [r["params"] for r in graph.requests if r["key"] == "GET /{page-id}/feed"]
    assert len(calls) == 3 and all("access_token" not in c for c in calls) and calls[2]["__paging_token"]
    listed = [p["id"] for p in meta.page_posts(since=now - timedelta(days=1), until=now)]
    assert len(listed) == len(set(listed)) == 231 and graph.count(POSTS) == 3  # none twice, none lost

