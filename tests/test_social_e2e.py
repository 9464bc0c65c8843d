"""The public voice end to end, as real processes on a temporary vault against the fake X and Graph
APIs, with the shipped handbook: a "post about ..." note becomes one request per platform, each fitted
to it and editable; approved, each appears exactly once, also when the agent interface is killed -9
while the platform has the post and its answer is on the way; a thread note becomes one thread, in
order, across a kill -9 right after its third tweet was accepted."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from core.documents import Document
from tests.conftest import ROOT, Suite, free_port, make_env, md_files, wait_until
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.fake_x import FakeX

pytestmark = pytest.mark.timeout(240)
IMAGE = "https://cdn.example.com/spring.jpg"
NOTE = f"Please post about our spring sale\n\n20% off everything until Sunday at https://acme.example/sale\n\nimage: {IMAGE}\n"
FEED, PUBLISH = "POST /{page-id}/feed", "POST /{ig-user-id}/media_publish"


@pytest.fixture
def social(tmp_path: Path):
    with contextlib.ExitStack() as stack:
        x = stack.enter_context(FakeX())
        graph = stack.enter_context(FakeGraph(polls_in_progress=0))
        ports = {"twitter": free_port(), "meta": free_port()}
        env = make_env(tmp_path, handbook=(ROOT / "core" / "defaults" / "Company_Handbook.md").read_text("utf-8"),
                       DRY_RUN="false", TWITTER_MCP_PORT=str(ports["twitter"]), META_MCP_PORT=str(ports["meta"]),
                       X_API_KEY=x.consumer_key, X_API_SECRET=x.consumer_secret, X_ACCESS_TOKEN=x.access_token,
                       X_ACCESS_TOKEN_SECRET=x.access_token_secret, X_API_BASE_URL=x.url,
                       META_ACCESS_TOKEN=graph.user_token, FACEBOOK_PAGE_ID=graph.page_id,
                       INSTAGRAM_ACCOUNT_ID=graph.ig_user_id, META_GRAPH_URL=graph.url)
        for skill in ("social_skill", "twitter_skill", "facebook_instagram_skill"):
            shutil.copytree(ROOT / ".qwen" / "skills" / skill, tmp_path / "skills" / skill)
        suite = Suite(tmp_path, env)
        stack.callback(suite.stop_all)
        s = SimpleNamespace(suite=suite, x=x, graph=graph, urls={k: f"http://127.0.0.1:{p}" for k, p in ports.items()})
        for name in ("twitter", "meta"):
            suite.start(name)
            wait_until(lambda: _health(s.urls[name]), timeout=20, message=f"the {name} server to answer")
        for name in ("watcher", "loop", "agent"):
            suite.start(name)
        yield s


def _health(url: str) -> dict | None:
    with contextlib.suppress(requests.ConnectionError):
        return requests.get(f"{url}/health", timeout=2).json()
    return None


def requests_by_action(s, count: int) -> dict[str, Path]:
    files = wait_until(lambda: len(found := md_files(s.suite.folder("Pending_Approval"))) >= count and found,
                       timeout=60, message=f"{count} approval requests")
    by_action = {Document.parse(p.read_text("utf-8")).meta["action"]: p for p in files}
    assert len(by_action) == len(files) == count, files
    return by_action


def approve_through_a_kill(s, request: Path, held) -> None:
    """Approve; the platform takes the post and holds its answer; the agent interface dies -9 right
    then; the answer goes out to nobody; a new agent interface picks the approval up again."""
    s.suite.cli("approve", Document.parse(request.read_text("utf-8")).meta["id"])
    assert held.arrived.wait(60), "the post never reached the platform"
    s.suite.kill9("agent")
    held.release()
    s.suite.start("agent")


def test_a_post_about_note_goes_out_once_per_platform_across_kill9_of_the_agent(social):
    s = social
    s.suite.drop("spring sale.txt", NOTE)
    by_action = requests_by_action(s, 3)
    assert set(by_action) == {"post_tweet", "post_facebook", "post_instagram"}
    task_id = Document.parse(by_action["post_tweet"].read_text("utf-8")).meta["task_id"]
    text = "20% off everything until Sunday at https://acme.example/sale"
    for request in by_action.values():
        assert f"## Message\n{text}\n" in request.read_text("utf-8")
    # The owner edits the tweet before approving: what goes out is their text.
    tweet = by_action["post_tweet"]
    tweet.write_text(tweet.read_text("utf-8").replace(f"## Message\n{text}\n", "## Message\nSpring sale: 20% off "
                                                      "until Sunday https://acme.example/sale\n"), "utf-8")
    approve_through_a_kill(s, tweet, s.x.hold("POST /2/tweets", after_accept=True))
    approve_through_a_kill(s, by_action["post_facebook"], s.graph.hold(FEED, after_accept=True))
    approve_through_a_kill(s, by_action["post_instagram"], s.graph.hold(PUBLISH, after_accept=True))
    wait_until(lambda: (s.suite.folder("Completed") / f"{task_id}.md").exists(), timeout=90, message="the task done")
    [posted] = s.x.tweets()
    assert posted["text"] == "Spring sale: 20% off until Sunday https://acme.example/sale"
    [page_post] = s.graph.posts()
    assert page_post["message"] == text and page_post["link"] == "https://acme.example/sale"
    [media] = s.graph.media()
    assert media["caption"] == text
    assert s.x.count("POST /2/tweets") == 1 and s.graph.count(FEED) == 1 and s.graph.count(PUBLISH) == 1


THREAD_NOTE = "Post a thread about our first year\n\n" + "\n\n".join(
    f"Month {n}: what we learned, part {n} of five." for n in range(1, 6)) + "\n"


def test_a_thread_goes_out_once_in_order_across_kill9_right_after_its_third_tweet(social):
    s = social
    s.suite.drop("first year.md", THREAD_NOTE)
    request = requests_by_action(s, 1)["post_thread"]
    meta = Document.parse(request.read_text("utf-8")).meta
    assert meta["params"]["tweets"] == [f"Month {n}: what we learned, part {n} of five." for n in range(1, 6)]
    approve_through_a_kill(s, request, s.x.hold("POST /2/tweets", after_accept=True, nth=3))
    wait_until(lambda: (s.suite.folder("Completed") / f"{meta['task_id']}.md").exists(), timeout=90,
               message="the task done after the restart")
    tweets = s.x.tweets()
    assert [t["text"] for t in tweets] == meta["params"]["tweets"]
    assert [t["in_reply_to_tweet_id"] for t in tweets] == [None, *[t["id"] for t in tweets[:-1]]]
    assert s.x.count("POST /2/tweets") == 5
