"""The Facebook + Instagram MCP server (8084) driven over HTTP and by the official `mcp` client against
the fake Graph API: posts behind the approval gate, each exactly once whatever Graph answered; an
Instagram container made before a failure resumed, never made twice; Meta's usage headers delay a post;
insights that drop a retired metric; the weekly summaries; what /health and the Dashboard show."""
from __future__ import annotations

import asyncio
import json
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
from social_media_integration.facebook_instagram_mcp_server import TOOLS, build_app
from tests.conftest import ROOT, md_files, wait_until
from tests.demo_service import ServerThread
from tests.fakes.fake_graph import FakeGraph

pytestmark = pytest.mark.timeout(90)
FEED, CONTAINERS, PUBLISH = "POST /{page-id}/feed", "POST /{ig-user-id}/media", "POST /{ig-user-id}/media_publish"
IMAGE = "https://cdn.example.com/spring.jpg"


def meta_env(graph: FakeGraph, tmp_path, **overrides: str) -> dict[str, str]:
    return {"VAULT_PATH": str(tmp_path / "vault"), "DRY_RUN": "false", "META_MCP_PORT": "0",
            "META_ACCESS_TOKEN": graph.user_token, "FACEBOOK_PAGE_ID": graph.page_id,
            "INSTAGRAM_ACCOUNT_ID": graph.ig_user_id, "META_GRAPH_URL": graph.url, **overrides}


@pytest.fixture
def meta(tmp_path):
    with FakeGraph(polls_in_progress=0) as graph:
        settings = Settings.from_env(meta_env(graph, tmp_path))
        with ServerThread(build_app(settings)) as server:
            vault, state = Vault(settings.vault_path), StateStore(settings.state_db)
            wait_until(lambda: requests.get(f"{server.url}/health", timeout=10).json()["checks"]["meta"]
                       .get("state") == "ok", message="the start-up probe")
            yield SimpleNamespace(url=server.url, graph=graph, vault=vault, state=state, settings=settings,
                                  approvals=Approvals(vault, state))


_grants = iter(range(1, 10_000))


def owner_grant(s, action: str, params: dict) -> str:
    row = s.approvals.request(task_id=f"t-meta-{next(_grants)}", step_no=1, skill="facebook_instagram_skill",
                              action=action, params=params,
                              text_param={"post_facebook": "message", "post_instagram": "caption"}[action],
                              risk="medium", reason="test", subject=action)
    approved = s.vault.move(s.vault.root / "Pending_Approval" / row["file_name"], s.vault.folder("Approved"))
    return s.approvals.accept(approved).id


def post(s, path: str, body: dict) -> requests.Response:
    return requests.post(f"{s.url}{path}", json=body, timeout=60)


def now_due(s, grant: str) -> None:
    with s.state.transaction() as db:
        db.execute("UPDATE outbox SET next_attempt=0 WHERE key=?", (f"meta:{grant}",))


def settled(s, grant: str) -> dict:
    row = wait_until(lambda: (r := s.state.ledger_get(f"meta:{grant}"))["status"] in ("succeeded", "failed") and r,
                     timeout=30, message="the queued write")
    assert row["status"] == "succeeded", row["error"]
    return json.loads(row["result"])


def test_the_official_client_lists_and_calls_the_meta_tools_and_a_post_without_a_grant_asks(meta):
    async def scenario():
        async with Client(f"{meta.url}/mcp") as client:
            listing = await client.list_tools()
            read = await client.call_tool("get_facebook_insights", {"days": 7})
            fb = await client.call_tool("post_facebook", {"message": "Spring is here"})
            ig = await client.call_tool("post_instagram", {"caption": "Spring is here", "image_url": IMAGE})
            return listing, read, fb, ig
    listing, read, fb, ig = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert {t.name for t in listing.tools} == {t.name for t in TOOLS}
    assert read.is_error is False and set(read.structured_content["data"]) >= {"metrics", "skipped"}
    assert {fb.structured_content["error_code"], ig.structured_content["error_code"]} == {"APPROVAL_REQUIRED"}
    requests_filed = [Document.parse(p.read_text("utf-8")) for p in md_files(meta.vault.root / "Pending_Approval")]
    assert sorted(d.meta["action"] for d in requests_filed) == ["post_facebook", "post_instagram"]
    assert all("## Message\nSpring is here\n" in d.body for d in requests_filed)
    assert meta.graph.posts() == [] and meta.graph.media() == []


def test_an_approved_page_post_goes_out_once_whatever_is_repeated(meta):
    params = {"message": "We open at 9 tomorrow", "link": "https://acme.example/hours"}
    grant = owner_grant(meta, "post_facebook", params)
    first = post(meta, "/post/facebook", {**params, "grant_id": grant}).json()
    again = post(meta, "/post/facebook", {**params, "grant_id": grant}).json()
    assert first["success"] and again["data"]["id"] == first["data"]["id"]
    [only] = meta.graph.posts()
    assert only["message"] == params["message"] and only["link"] == params["link"]


def test_a_page_post_graph_took_without_answering_is_found_in_the_feed(meta):
    grant = owner_grant(meta, "post_facebook", {"message": "Lost answer, one post"})
    meta.graph.fail(FEED, None, after_accept=True)
    queued = post(meta, "/post/facebook", {"message": "Lost answer, one post", "grant_id": grant}).json()
    assert queued["queued"] is True and queued["retry_after"] >= 900
    now_due(meta, grant)
    result = settled(meta, grant)
    [only] = meta.graph.posts()
    assert result["id"] == only["id"] and result["reconciled"] is True and meta.graph.count(FEED) == 1


def test_a_duplicate_refusal_is_the_post_that_already_went_out(meta):
    already = meta.graph.seed_post("Same words again")
    grant = owner_grant(meta, "post_facebook", {"message": "Same words again"})
    answer = post(meta, "/post/facebook", {"message": "Same words again", "grant_id": grant}).json()
    assert answer["success"] and answer["data"]["id"] == already and len(meta.graph.posts()) == 1


def test_an_instagram_post_in_progress_then_finished_is_published_once_and_counts_against_the_quota(meta):
    meta.graph.next_container("FINISHED", polls=1)
    params = {"caption": "Spring collection", "image_url": IMAGE}
    grant = owner_grant(meta, "post_instagram", params)
    answer = post(meta, "/post/instagram", {**params, "grant_id": grant}).json()
    [media] = meta.graph.media()
    assert answer["success"] and answer["data"]["id"] == media["id"] and answer["data"]["permalink"]
    assert meta.graph.count(CONTAINERS) == 1 and meta.graph.count(PUBLISH) == 1
    checks = requests.get(f"{meta.url}/health", timeout=10).json()["checks"]["meta"]
    assert checks["instagram_posts_left_24h"] == meta.graph.quota_total - 1
    section = meta.state.cache_get("dashboard:meta")[0]
    assert f"{meta.graph.quota_total - 1} of {meta.graph.quota_total} posts left" in section["lines"][0]


def test_an_instagram_container_made_before_a_failure_is_resumed_never_made_twice(meta):
    params = {"caption": "Resumed, not doubled", "image_url": IMAGE}
    grant = owner_grant(meta, "post_instagram", params)
    meta.graph.fail(PUBLISH, None)  # the publish call dies: the container exists, nothing is published
    queued = post(meta, "/post/instagram", {**params, "grant_id": grant}).json()
    assert queued["queued"] is True and meta.graph.media() == [] and meta.graph.count(CONTAINERS) == 1
    now_due(meta, grant)
    result = settled(meta, grant)
    [media] = meta.graph.media()
    assert result["id"] == media["id"] and meta.graph.count(CONTAINERS) == 1


def test_a_container_that_ends_in_error_fails_the_post_with_the_reason_and_posts_nothing(meta):
    meta.graph.next_container("ERROR")
    params = {"caption": "Bad image", "image_url": IMAGE}
    grant = owner_grant(meta, "post_instagram", params)
    answer = post(meta, "/post/instagram", {**params, "grant_id": grant})
    assert answer.status_code == 502 and "ERROR" in answer.json()["error"] and meta.graph.media() == []


def test_meta_usage_headers_say_when_a_throttled_post_goes_out(meta):
    grant = owner_grant(meta, "post_facebook", {"message": "Throttled, then out"})
    meta.graph.fail(FEED, "page_rate_limit", minutes=2)
    queued = post(meta, "/post/facebook", {"message": "Throttled, then out", "grant_id": grant}).json()
    assert queued["error_code"] == "RATE_LIMITED" and queued["queued"] is True
    assert 100 <= queued["retry_after"] <= 125  # what Meta said (2 minutes), not the blind 15
    assert meta.graph.posts() == []
    now_due(meta, grant)
    settled(meta, grant)
    assert len(meta.graph.posts()) == 1


def test_insights_drop_a_retired_metric_and_keep_the_rest(meta):
    meta.graph.page_metrics.discard("page_post_engagements")  # as a new Graph version retires a metric
    meta.graph.retired_page_metrics.add("page_post_engagements")
    data = requests.get(f"{meta.url}/insights/facebook", params={"days": 7}, timeout=30).json()["data"]
    assert "page_post_engagements" in " ".join(data["skipped"])
    assert data["metrics"] and "page_post_engagements" not in data["metrics"]


def test_an_invalidated_token_pauses_meta_and_says_how_to_reconnect(tmp_path):
    with FakeGraph() as graph:
        graph.invalidate_token(graph.user_token)
        with ServerThread(build_app(Settings.from_env(meta_env(graph, tmp_path)))) as server:
            health = wait_until(lambda: (h := requests.get(f"{server.url}/health", timeout=10).json())["checks"]
                                ["meta"].get("state") == "auth_error" and h, message="the auth error")
            assert health["status"] == "degraded" and "META_ACCESS_TOKEN" in health["checks"]["meta"]["detail"]
            assert graph.user_token not in json.dumps(health)


def test_facebook_instagram_skills_checked_in_schemas_are_the_servers(meta):
    shipped = json.loads((ROOT / ".qwen" / "skills" / "facebook_instagram_skill" / "tools.schema.json")
                         .read_text("utf-8"))
    listed = {t["name"]: t["inputSchema"] for t in requests.post(
        f"{meta.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10).json()["result"]["tools"]}
    for name, schema in shipped.items():
        assert schema["properties"] == {k: v for k, v in listed[name]["properties"].items()
                                        if k not in ("grant_id", "task_id")}, name
        assert schema.get("required") == listed[name].get("required")


def test_the_weekly_summaries_hand_computed_and_written_for_the_page_and_instagram(meta):
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    g = meta.graph
    g.seed_post("Page, this week", created=today - timedelta(days=2),
                metrics={"views": 800, "reactions": 30, "comments": 5, "shares": 5})
    g.seed_post("Page, the best of the week", created=today - timedelta(days=5),
                metrics={"views": 1200, "reactions": 90, "comments": 10})
    g.seed_post("Page, the week before", created=today - timedelta(days=10), metrics={"views": 500, "reactions": 20})
    g.seed_post("Page, today: next week's", created=today + timedelta(hours=1), metrics={"views": 9999})
    g.seed_media("Instagram, this week", created=today - timedelta(days=1),
                 metrics={"views": 3000, "likes": 200, "comments": 20, "saves": 15, "shares": 5})
    data = requests.get(f"{meta.url}/summary", timeout=60).json()["data"]
    fb, ig = data["facebook"], data["instagram"]
    assert (fb["posts"], fb["reach"], fb["engagement"]) == (2, 2000, 140)
    assert (fb["previous"]["posts"], fb["previous"]["reach"], fb["previous"]["engagement"]) == (1, 500, 20)
    assert fb["change_percent"] == {"posts": 100.0, "reach": 300.0, "engagement": 600.0}
    assert fb["best_post"]["text"] == "Page, the best of the week"
    assert (ig["posts"], ig["reach"], ig["engagement"]) == (1, 3000, 240) and ig["change_percent"]["reach"] is None
    day = today.date().isoformat()
    assert data["paths"] == [f"Social_Media_Summaries/{day}_facebook.md", f"Social_Media_Summaries/{day}_instagram.md"]
    written = Document.parse((meta.vault.root / data["paths"][1]).read_text("utf-8"))
    assert written.meta["platform"] == "instagram" and "| reach | 3,000 | 0 | new |" in written.body
    assert meta.state.cache_get("summary:facebook")[0]["engagement"] == 140  # what the CEO briefing reads
