"""The X MCP server (8083) driven over HTTP and by the official `mcp` client against the fake X API:
posts behind the approval gate, each exactly once whatever X answered; a thread broken in the middle
resumes where it stopped; a 429 delays only the post it hit; the weekly summary; what /health shows."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import requests
from mcp.client import Client

from core.approval.approvals import Approvals
from core.config import Settings
from core.documents import Document
from core.state import StateStore
from core.vault import Vault
from social_media_integration.twitter_mcp_server import TOOLS, build_app
from tests.conftest import ROOT, md_files, wait_until
from tests.demo_service import ServerThread
from tests.fakes.fake_x import FakeX

pytestmark = pytest.mark.timeout(90)
POST = "POST /2/tweets"


def x_env(fake: FakeX, tmp_path, **overrides: str) -> dict[str, str]:
    return {"VAULT_PATH": str(tmp_path / "vault"), "DRY_RUN": "false", "TWITTER_MCP_PORT": "0",
            "X_API_KEY": fake.consumer_key, "X_API_SECRET": fake.consumer_secret,
            "X_ACCESS_TOKEN": fake.access_token, "X_ACCESS_TOKEN_SECRET": fake.access_token_secret,
            "X_API_BASE_URL": fake.url, **overrides}


@pytest.fixture
def x(tmp_path):
    with FakeX() as fake:
        settings = Settings.from_env(x_env(fake, tmp_path))
        with ServerThread(build_app(settings)) as server:
            vault, state = Vault(settings.vault_path), StateStore(settings.state_db)
            wait_until(lambda: requests.get(f"{server.url}/health", timeout=10).json()["checks"]["x"]
                       .get("state") == "ok", message="the start-up probe")
            yield SimpleNamespace(url=server.url, fake=fake, vault=vault, state=state, settings=settings,
                                  approvals=Approvals(vault, state))


_grants = iter(range(1, 10_000))


def owner_grant(s, action: str, params: dict) -> str:
    row = s.approvals.request(task_id=f"t-x-{next(_grants)}", step_no=1, skill="twitter_skill", action=action,
                              params=params, text_param="text" if action == "post_tweet" else None, risk="medium",
                              reason="test", subject=action)
    approved = s.vault.move(s.vault.root / "Pending_Approval" / row["file_name"], s.vault.folder("Approved"))
    return s.approvals.accept(approved).id


def post(s, path: str, body: dict) -> requests.Response:
    return requests.post(f"{s.url}{path}", json=body, timeout=30)


def now_due(s, grant: str) -> None:
    """A queued write's turn comes now rather than in 15 minutes (the outbox worker looks every second)."""
    with s.state.transaction() as db:
        db.execute("UPDATE outbox SET next_attempt=0 WHERE key=?", (f"twitter:{grant}",))


def settled(s, grant: str) -> dict:
    row = wait_until(lambda: (r := s.state.ledger_get(f"twitter:{grant}"))["status"] in ("succeeded", "failed") and r,
                     timeout=30, message="the queued write")
    assert row["status"] == "succeeded", row["error"]
    return json.loads(row["result"])


def assert_thread(s, texts: list[str], ids: list[str]) -> None:
    """Exactly these tweets exist, in order, each replying to the one before."""
    tweets = s.fake.tweets()
    assert [t["text"] for t in tweets] == texts and [t["id"] for t in tweets] == ids
    assert [t["in_reply_to_tweet_id"] for t in tweets] == [None, *ids[:-1]]


THREAD = [f"Part {n} of our launch story: what we learned in week {n}." for n in range(1, 6)]


def test_the_official_client_lists_and_calls_the_x_tools_and_a_post_without_a_grant_asks(x):
    async def scenario():
        async with Client(f"{x.url}/mcp") as client:
            listing = await client.list_tools()
            read = await client.call_tool("get_user_metrics", {})
            write = await client.call_tool("post_tweet", {"text": "Hello from the shop"})
            return listing, read, write
    listing, read, write = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert {t.name for t in listing.tools} == {t.name for t in TOOLS}
    assert read.is_error is False and set(read.structured_content["data"]) >= {"followers", "following", "tweets"}
    assert write.is_error is True and write.structured_content["error_code"] == "APPROVAL_REQUIRED"
    [request] = md_files(x.vault.root / "Pending_Approval")
    doc = Document.parse(request.read_text("utf-8"))
    assert doc.meta["skill"] == "twitter_skill" and doc.meta["action"] == "post_tweet"
    assert "## Message\nHello from the shop\n" in doc.body and x.fake.tweets() == []


def test_an_approved_tweet_goes_out_once_whatever_is_repeated(x):
    grant = owner_grant(x, "post_tweet", {"text": "Open on Sunday!"})
    first = post(x, "/post/tweet", {"text": "Open on Sunday!", "grant_id": grant}).json()
    assert first["success"] and first["data"]["url"].endswith(f"/acme_studio/status/{first['data']['id']}")
    again = post(x, "/post/tweet", {"text": "Open on Sunday!", "grant_id": grant}).json()
    assert again["data"]["id"] == first["data"]["id"] and len(x.fake.tweets()) == 1
    # The grant is for that text: another text with it is refused, and nothing goes out.
    other = post(x, "/post/tweet", {"text": "Closed on Sunday!", "grant_id": grant})
    assert other.status_code == 403 and len(x.fake.tweets()) == 1


def test_a_tweet_x_took_but_never_answered_is_found_on_the_timeline_not_posted_again(x):
    grant = owner_grant(x, "post_tweet", {"text": "New opening hours: 9 to 5."})
    x.fake.fail(POST, 503, after_accept=True)
    queued = post(x, "/post/tweet", {"text": "New opening hours: 9 to 5.", "grant_id": grant}).json()
    assert queued["error_code"] == "UPSTREAM_UNAVAILABLE" and queued["queued"] is True
    assert queued["retry_after"] >= 900  # X said nothing about when: the seed's 15 minutes
    now_due(x, grant)
    result = settled(x, grant)
    [tweet] = x.fake.tweets()
    assert result["id"] == tweet["id"] and result["reconciled"] is True and x.fake.count(POST) == 1


def test_a_duplicate_refusal_is_the_tweet_that_already_went_out(x):
    already = x.fake.seed_tweet("Spring sale starts today")  # posted, but its answer never recorded
    grant = owner_grant(x, "post_tweet", {"text": "Spring sale starts today"})
    answer = post(x, "/post/tweet", {"text": "Spring sale starts today", "grant_id": grant}).json()
    assert answer["success"] and answer["data"]["id"] == already and len(x.fake.tweets()) == 1


def test_a_thread_broken_by_a_503_at_the_third_tweet_resumes_where_it_stopped(x):
    grant = owner_grant(x, "post_thread", {"tweets": THREAD})
    x.fake.fail(POST, 503, nth=3)
    queued = post(x, "/post/thread", {"tweets": THREAD, "grant_id": grant}).json()
    assert queued["queued"] is True and len(x.fake.tweets()) == 2
    now_due(x, grant)
    result = settled(x, grant)
    assert_thread(x, THREAD, result["ids"])
    assert x.fake.count(POST) == 6  # five tweets and the one refused: none posted twice


def test_a_thread_whose_third_tweet_x_took_without_answering_is_not_posted_twice(x):
    grant = owner_grant(x, "post_thread", {"tweets": THREAD})
    x.fake.fail(POST, 503, nth=3, after_accept=True)
    assert post(x, "/post/thread", {"tweets": THREAD, "grant_id": grant}).json()["queued"] is True
    assert len(x.fake.tweets()) == 3  # the third went out; the server does not know it
    now_due(x, grant)
    result = settled(x, grant)
    assert_thread(x, THREAD, result["ids"])
    assert x.fake.count(POST) == 5


def test_a_429_delays_the_post_until_the_reset_and_nothing_else_waits(x):
    grant = owner_grant(x, "post_tweet", {"text": "Rate limited, then out"})
    x.fake.set_rate_limit(POST, remaining=0, reset_in=2)
    reset = x.fake.rate_limit(POST)["reset"]
    queued = post(x, "/post/tweet", {"text": "Rate limited, then out", "grant_id": grant}).json()
    assert queued["error_code"] == "RATE_LIMITED" and queued["queued"] is True and queued["retry_after"] <= 3
    # While the post waits, the server answers everything else at once.
    started = time.monotonic()
    assert requests.get(f"{x.url}/metrics/user", timeout=10).json()["success"]
    assert requests.get(f"{x.url}/health", timeout=10).status_code == 200
    assert time.monotonic() - started < 1.5 and x.fake.tweets() == []
    result = settled(x, grant)  # the outbox's own turn, after X's reset: nothing nudged it
    [tweet] = x.fake.tweets()
    assert result["id"] == tweet["id"] and tweet["created_at"].timestamp() >= reset - 1


def test_health_and_the_dashboard_show_the_requests_left(x):
    grant = owner_grant(x, "post_tweet", {"text": "Counting requests"})
    post(x, "/post/tweet", {"text": "Counting requests", "grant_id": grant})
    limits = requests.get(f"{x.url}/health", timeout=10).json()["checks"]["x"]["rate_limits"]
    assert limits[POST]["remaining"] == x.fake.rate_limit(POST)["remaining"] and limits[POST]["limit"] == 200
    # The Dashboard's section, written at start-up (and every 10 minutes): the followers and the windows.
    section = wait_until(lambda: x.state.cache_get("dashboard:x"), message="the dashboard section")[0]
    assert section["title"] == "X" and section["lines"][0].startswith("- Followers: ")
    assert any("GET /2/users/me" in line and "requests left" in line for line in section["lines"])


def test_the_weekly_summary_hand_computed_and_written_to_the_vault(x):
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    seed = x.fake.seed_tweet
    seed("This week A", created_at=today - timedelta(days=1, hours=-3),
         public_metrics={"like_count": 10, "reply_count": 2, "retweet_count": 3},
         non_public_metrics={"impression_count": 1000})
    seed("This week B, the best", created_at=today - timedelta(days=6),
         public_metrics={"like_count": 40, "quote_count": 5, "bookmark_count": 5},
         non_public_metrics={"impression_count": 3000})
    seed("Last week", created_at=today - timedelta(days=9),
         public_metrics={"like_count": 20}, non_public_metrics={"impression_count": 2000})
    seed("Today, counted next week", created_at=today + timedelta(hours=1),
         public_metrics={"like_count": 99}, non_public_metrics={"impression_count": 9999})
    data = requests.get(f"{x.url}/summary", timeout=30).json()["data"]
    assert (data["posts"], data["reach"], data["engagement"]) == (2, 4000, 65)
    assert data["previous"] == {"posts": 1, "reach": 2000, "engagement": 20, "engagement_rate": 0.01}
    assert data["change_percent"] == {"posts": 100.0, "reach": 100.0, "engagement": 225.0}
    assert data["best_post"]["text"] == "This week B, the best" and data["best_post"]["engagement"] == 50
    assert data["path"] == f"Social_Media_Summaries/{today.date().isoformat()}_twitter.md"
    written = Document.parse((x.vault.root / data["path"]).read_text("utf-8"))
    assert written.meta["platform"] == "twitter" and written.meta["reach"] == 4000
    assert "This week B, the best" in written.body and "+225.0%" in written.body
    assert x.state.cache_get("summary:twitter")[0]["engagement"] == 65  # what the CEO briefing reads


def test_revoked_credentials_pause_x_and_say_how_to_reconnect(tmp_path):
    with FakeX() as fake:
        env = x_env(fake, tmp_path, X_ACCESS_TOKEN_SECRET="not-the-secret")
        with ServerThread(build_app(Settings.from_env(env))) as server:
            health = wait_until(lambda: (h := requests.get(f"{server.url}/health", timeout=10).json())["checks"]
                                ["x"].get("state") == "auth_error" and h, message="the auth error")
            assert health["status"] == "degraded" and "reconnect X" in health["checks"]["x"]["detail"]
            assert "not-the-secret" not in json.dumps(health)
            answer = requests.get(f"{server.url}/metrics/user", timeout=10)
            assert answer.status_code == 502 and answer.json()["error_code"] == "AUTH_ERROR"


def test_twitter_skills_checked_in_schemas_are_the_servers(x):
    shipped = json.loads((ROOT / ".qwen" / "skills" / "twitter_skill" / "tools.schema.json").read_text("utf-8"))
    listed = {t["name"]: t["inputSchema"] for t in requests.post(
        f"{x.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10).json()["result"]["tools"]}
    for name, schema in shipped.items():
        assert schema["properties"] == {k: v for k, v in listed[name]["properties"].items()
                                        if k not in ("grant_id", "task_id")}, name
        assert schema.get("required") == listed[name].get("required")
