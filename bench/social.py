"""Social summary benchmark (issue 9): the weekly summary over 10,000 posts with metrics, per platform.

    .venv/bin/python bench/social.py [--posts 10000] [--runs 3] [--platforms facebook,instagram,x]

Seeds, before any clock runs, the protocol-faithful fakes (tests/fakes/fake_graph for the Facebook Page and
the Instagram account, tests/fakes/fake_x for X) with --posts posts per platform spread over the fortnight the
summary reads (the week to today's midnight UTC and the week before), each with its own counts. Then times,
per platform, what the MCP server's summary does (the same function ``GET /summary`` runs), with a fresh
connector each run (so the one-off lookups, the Page token from me/accounts and X's users/me, are in every
run), on a temporary vault and state store:

- Facebook: ``facebook_instagram_mcp_server.platform_summary``: GET /{page-id}/posts, 100 posts a call, the
  counts and the post_media_view insight by field expansion;
- Instagram: the same for GET /{ig-user-id}/media, like_count, comments_count and
  insights.metric(views,reach,saved,shares) by field expansion;
- X: ``twitter_mcp_server.summary``: the account's timeline, 100 tweets a page with their public and
  private metrics, and the account's figures;

each summarised, written to Social_Media_Summaries/ and kept for the briefing. Reports, best of --runs: wall seconds (the fetch
and the summary apart), the CPU seconds of the fake's server thread (fake and client share one process and
the GIL: the rest of the wall time is the product's, its HTTP client and the loopback hop), the API calls
that reached the fake per run, by endpoint, and the posts per call. The figures are checked against the seeded
counts. Budget (issue 9): batched, never one call per post: at most ceil(posts / 100) calls per list (and per
100-id lookup) plus the one-off lookup. Exits 1 when over budget or when a figure is wrong.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from core.state import StateStore  # noqa: E402
from core.vault import Vault  # noqa: E402
from social_media_integration.facebook_instagram_connector import MetaConnector  # noqa: E402
from social_media_integration.facebook_instagram_mcp_server import Meta, platform_summary  # noqa: E402
from social_media_integration.twitter_mcp_server import X, summary  # noqa: E402
from social_media_integration.meta_config import MetaConfig  # noqa: E402
from social_media_integration.twitter_config import XConfig  # noqa: E402
from social_media_integration.twitter_connector import XConnector  # noqa: E402
from tests.fakes.fake_graph import FakeGraph  # noqa: E402
from tests.fakes.fake_x import FakeX  # noqa: E402

PLATFORMS = ("facebook", "instagram", "x")


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only, whatever the environment's proxies say
    return s


def moments(rnd: random.Random, count: int, start: datetime, end: datetime) -> list[datetime]:
    """``count`` whole-second times in [start, end), oldest first (as a real account accumulates them)."""
    span = int((end - start).total_seconds())
    return [start + timedelta(seconds=s) for s in sorted(rnd.randrange(span) for _ in range(count))]


def seed_facebook(graph: FakeGraph, rnd: random.Random, when: list[datetime]) -> tuple[int, int]:
    reach = engagement = 0
    for i, created in enumerate(when):
        c = {"reactions": rnd.randint(0, 400), "comments": rnd.randint(0, 60), "views": rnd.randint(50, 20_000),
             "shares": rnd.randint(0, 30) if rnd.random() < 0.6 else 0}  # many posts nobody shares
        c["reach"] = c["views"] * 3 // 4
        graph.seed_post(f"Post {i}: what Acme Studio did today", created=created, metrics=c)
        reach, engagement = reach + c["views"], engagement + c["reactions"] + c["comments"] + c["shares"]
    return reach, engagement


def seed_instagram(graph: FakeGraph, rnd: random.Random, when: list[datetime]) -> tuple[int, int]:
    reach = engagement = 0
    for i, created in enumerate(when):
        c = {"likes": rnd.randint(0, 900), "comments": rnd.randint(0, 80), "saves": rnd.randint(0, 120),
             "shares": rnd.randint(0, 50), "views": rnd.randint(100, 40_000)}
        c["reach"] = c["views"] * 2 // 3
        graph.seed_media(f"Caption {i} #acme", created=created, metrics=c)
        reach, engagement = reach + c["views"], engagement + c["likes"] + c["comments"] + c["saves"] + c["shares"]
    return reach, engagement


def seed_x(fake: FakeX, rnd: random.Random, when: list[datetime]) -> tuple[int, int]:
    reach = engagement = 0
    for i, created in enumerate(when):
        public = {"like_count": rnd.randint(0, 300), "reply_count": rnd.randint(0, 40),
                  "retweet_count": rnd.randint(0, 60), "quote_count": rnd.randint(0, 10),
                  "bookmark_count": rnd.randint(0, 25), "impression_count": rnd.randint(100, 30_000)}
        fake.seed_tweet(f"Tweet {i} from Acme Studio", created_at=created, public_metrics=public,
                        non_public_metrics={"impression_count": public["impression_count"]})
        reach += public["impression_count"]
        engagement += sum(public[k] for k in ("like_count", "reply_count", "retweet_count", "quote_count",
                                              "bookmark_count"))
    for key in ("GET /2/users/:id/tweets", "GET /2/tweets", "GET /2/users/me"):  # many runs in one window
        fake.set_rate_limit(key, limit=1_000_000, remaining=1_000_000)
    return reach, engagement


def meta_connector(graph: FakeGraph) -> MetaConnector:
    config = MetaConfig.from_env({"META_ACCESS_TOKEN": graph.user_token, "FACEBOOK_PAGE_ID": graph.page_id,
                                  "INSTAGRAM_ACCOUNT_ID": graph.ig_user_id, "META_GRAPH_URL": graph.url})
    return MetaConnector(config, session=session())


def x_connector(fake: FakeX) -> XConnector:
    config = XConfig.from_env({"X_API_KEY": fake.consumer_key, "X_API_SECRET": fake.consumer_secret,
                               "X_ACCESS_TOKEN": fake.access_token, "X_ACCESS_TOKEN_SECRET": fake.access_token_secret,
                               "X_API_BASE_URL": fake.url})
    return XConnector(config, session=session())


def meta_summary(graph: FakeGraph, platform: str, place: Path, end: datetime) -> dict[str, Any]:
    m = Meta(meta_connector(graph), StateStore(place / "state.db"), Vault(place / "vault"))
    try:
        return platform_summary(m, platform, 7, end=end)
    finally:
        m.meta.close()


def x_summary(fake: FakeX, place: Path, end: datetime) -> dict[str, Any]:
    return summary(X(x_connector(fake), StateStore(place / "state.db"), Vault(place / "vault")), 7, end=end)


def thread_cpu(server: Any) -> float:
    """CPU seconds the fake's server thread has used (Linux: its per-thread clock)."""
    return time.clock_gettime(time.pthread_getcpuclockid(server._thread.ident))


def measure(runs: int, server: Any, run_summary: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    best: dict[str, Any] | None = None
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as place:
            before, cpu = Counter(server.calls), thread_cpu(server)
            started = time.perf_counter()
            figures = run_summary(Path(place))
            run = {"total_s": time.perf_counter() - started, "fake_cpu_s": thread_cpu(server) - cpu,
                   "calls": Counter(server.calls) - before,
                   "posts": figures["posts"] + figures["previous"]["posts"], "figures": figures}
        if best is None or run["total_s"] < best["total_s"]:
            best = run
    assert best is not None
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000, help="posts per platform over the fortnight")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; the best is reported")
    parser.add_argument("--platforms", default=",".join(PLATFORMS), help="comma-separated: facebook,instagram,x")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    platforms = [p for p in args.platforms.split(",") if p]
    if not platforms or set(platforms) - set(PLATFORMS):
        parser.error(f"--platforms takes {', '.join(PLATFORMS)}")

    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=14)
    rnd = random.Random(args.seed)
    results, expected = {}, {}
    seeding_started = time.perf_counter()
    with FakeGraph() as graph, FakeX() as fake_x:
        seeders = {"facebook": (graph, seed_facebook), "instagram": (graph, seed_instagram), "x": (fake_x, seed_x)}
        for platform in platforms:
            server, seed = seeders[platform]
            expected[platform] = seed(server, rnd, moments(rnd, args.posts, start, end))
        seeding_s = time.perf_counter() - seeding_started
        for platform in platforms:
            if platform == "x":
                run_summary = lambda place: x_summary(fake_x, place, end)  # noqa: E731
            else:
                run_summary = lambda place, platform=platform: meta_summary(graph, platform, place, end)  # noqa: E731
            results[platform] = measure(args.runs, seeders[platform][0], run_summary)

    pages = math.ceil(args.posts / 100)
    lists = {"facebook": {"GET /{page-id}/posts": pages}, "instagram": {"GET /{ig-user-id}/media": pages},
             "x": {"GET /2/users/:id/tweets": pages}}
    one_off = {"facebook": 1, "instagram": 0, "x": 2}  # the Page token; X's account and its figures
    print(f"Social summaries: {args.posts:,} posts with metrics per platform over the fortnight to {end:%Y-%m-%d} "
          f"(seeded in {seeding_s:.1f} s); {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"best of {args.runs}, a fresh connector each run")
    print("| platform | posts | total s | fake CPU s | API calls | by endpoint | posts per call |\n"
          "|---|---:|---:|---:|---:|---|---:|")
    ok = True
    for platform in platforms:
        r = results[platform]
        figures, calls = r["figures"], r["calls"]
        total_calls = sum(calls.values())
        endpoints = ", ".join(f"{k} × {v}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]))
        print(f"| {platform} | {r['posts']:,} | {r['total_s']:.3f} | {r['fake_cpu_s']:.3f} | {total_calls} "
              f"| {endpoints} | {r['posts'] / max(1, total_calls):.0f} |")
        reach, engagement = expected[platform]
        right = (args.posts == r["posts"]
                 and figures["reach"] + figures["previous"]["reach"] == reach
                 and figures["engagement"] + figures["previous"]["engagement"] == engagement)
        batched = all(calls.get(key, 0) <= n for key, n in lists[platform].items()) \
            and total_calls <= sum(lists[platform].values()) + one_off[platform]
        if not right:
            print(f"  {platform}: the figures do not add up to the seeded counts")
        if not batched:
            print(f"  {platform}: {total_calls} calls, over the budget of "
                  f"{sum(lists[platform].values()) + one_off[platform]}")
        ok = ok and right and batched
    print(f"\nAt most ceil(posts / 100) = {pages} calls per list, plus the one-off lookups; figures equal to the "
          f"seeded counts: {'ok' if ok else 'OVER BUDGET or WRONG'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
