"""The X (Twitter) MCP server (TWITTER_MCP_PORT, default 8083).

    python -m social_media_integration.twitter_mcp_server          # PM2 app `mcp-twitter`

Tweets and threads are writes behind the approval gate, exactly once through the base's ledger: an
interrupted tweet is looked for on the account's own timeline by its exact text before anything is
posted again, a "duplicate content" refusal is a reason to look for the tweet that went out, and a
thread records each tweet as it is posted so that, broken in the middle, it resumes where it stopped,
each tweet replying to the one before. A 429 delays the post until X's reset (never a sleep inside a
request), an outage by 15 minutes and then longer, in the outbox. Everything else is the builder's.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from dataclasses import dataclass
from typing import Any

from core.approval.gate import SkillBinding
from core.state import StateStore
from core.vault import Vault
from mcp_servers.server import Deps, Vertical, build_app as build_server, main as serve
from mcp_servers.tools import NEEDS_APPROVAL, Tool, ToolContext
from social_media_integration import summaries
from mcp_servers.ledger import PLATFORM_RETRY
from social_media_integration.social_schema import (POSTED_SCHEMA, SUMMARY_SCHEMA, THREAD_SCHEMA, TWEET_METRICS_SCHEMA,
                                                    USER_METRICS_SCHEMA, PostThreadInput, PostTweetInput,
                                                    SummaryInput, TweetMetricsInput, UserMetricsInput)
from social_media_integration.twitter_config import XConfig
from social_media_integration.twitter_connector import XConnector, normalise_text, same_text
from social_media_integration.twitter_errors import XDuplicateError

SKILLS = {"post_tweet": SkillBinding("twitter_skill", text_param="text"),
          "post_thread": SkillBinding("twitter_skill")}
RECONCILE_HOURS = 48


@dataclass
class X:
    x: XConnector
    state: StateStore
    vault: Vault


def connect(deps: Deps, *, x: XConnector | None = None) -> X:
    return X(x or XConnector(XConfig.from_env(deps.settings.env)), deps.state, deps.vault)


def _since() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=RECONCILE_HOURS)


def _url(m: X, tweet_id: str) -> str:
    return f"https://x.com/{m.x.me()['username'] or 'i'}/status/{tweet_id}"


def _post_tweet(m: X, args: PostTweetInput) -> dict:
    try:
        posted = m.x.post(args.text, reply_to=args.reply_to)
    except XDuplicateError:  # X says it has it: that is the tweet that went out
        found = m.x.find_recent_by_text(args.text, since=_since())
        if found is None:
            raise
        return {"id": found, "url": _url(m, found), "reconciled": True}
    return {"id": posted["id"], "url": _url(m, posted["id"])}


async def post_tweet(ctx: ToolContext, args: PostTweetInput) -> dict:
    return await asyncio.to_thread(_post_tweet, ctx.resources, args)


async def tweet_found(ctx: ToolContext, args: PostTweetInput) -> dict | None:
    m: X = ctx.resources
    found = await asyncio.to_thread(m.x.find_recent_by_text, args.text, since=_since())
    return None if found is None else {"id": found, "url": _url(m, found), "reconciled": True}


class ThreadProgress:
    """The ids of a thread's tweets as they go out, per grant, in the state store: a thread broken in
    the middle (an outage, a crash) resumes after the last tweet that went out."""

    def __init__(self, state: StateStore, grant_key: str) -> None:
        self.state, self.key = state, f"twitter:thread:{grant_key}"

    def ids(self) -> list[str]:
        hit = self.state.cache_get(self.key)
        return list(hit[0]) if hit else []

    def add(self, ids: list[str], tweet_id: str) -> list[str]:
        ids = [*ids, tweet_id]
        self.state.cache_put(self.key, ids)
        return ids


def _post_thread(m: X, args: PostThreadInput, progress: ThreadProgress) -> dict:
    ids = progress.ids()
    for text in args.tweets[len(ids):]:
        parent = ids[-1] if ids else None
        try:
            tweet_id = m.x.post(text, reply_to=parent)["id"]  # a failure leaves the progress as it is
        except XDuplicateError:  # X has it already: the tweet went out, unrecorded
            tweet_id = _in_thread(_timeline(m), text, parent, ids)
            if tweet_id is None:
                raise
        ids = progress.add(ids, tweet_id)
    return {"ids": ids, "url": _url(m, ids[0])}


def _timeline(m: X) -> list[dict]:
    return m.x.recent_tweets(since=_since(), limit=400)[::-1]  # oldest first


def _in_thread(timeline: list[dict], text: str, parent: str | None, ids: list[str]) -> str | None:
    """The tweet with this text replying to ``parent`` (the thread's start: replying to nothing)."""
    wanted = normalise_text(text)
    return next((t["id"] for t in timeline if t["reply_to"] == parent and t["id"] not in ids
                 and same_text(wanted, t["text"])), None)


def _thread_found(m: X, args: PostThreadInput, progress: ThreadProgress) -> dict | None:
    """After an unknown outcome: the tweets that went out without being recorded, found on the timeline
    in order (the next one's text, replying to the last one recorded); the whole thread if complete."""
    ids = progress.ids()
    if len(ids) < len(args.tweets):
        timeline = _timeline(m)
        for text in args.tweets[len(ids):]:
            found = _in_thread(timeline, text, ids[-1] if ids else None, ids)
            if found is None:
                break
            ids = progress.add(ids, found)
    if len(ids) == len(args.tweets):
        return {"ids": ids, "url": _url(m, ids[0]), "reconciled": True}
    return None  # posting again continues after the last tweet found


async def post_thread(ctx: ToolContext, args: PostThreadInput) -> dict:
    assert ctx.grant is not None
    m: X = ctx.resources
    return await asyncio.to_thread(_post_thread, m, args, ThreadProgress(m.state, ctx.grant.idempotency_key))


async def thread_found(ctx: ToolContext, args: PostThreadInput) -> dict | None:
    assert ctx.grant is not None
    m: X = ctx.resources
    return await asyncio.to_thread(_thread_found, m, args, ThreadProgress(m.state, ctx.grant.idempotency_key))


async def get_user_metrics(ctx: ToolContext, args: UserMetricsInput) -> dict:
    return await asyncio.to_thread(ctx.resources.x.user_metrics, args.username)


async def get_tweet_metrics(ctx: ToolContext, args: TweetMetricsInput) -> dict:
    return {"tweets": await asyncio.to_thread(ctx.resources.x.tweet_metrics, args.ids)}


def summary(m: X, days: int, *, end: dt.datetime | None = None) -> dict[str, Any]:
    """The period's tweets from the timeline (100 a call, metrics included), summarised and written."""
    end = end or summaries.period_end()
    tweets = m.x.recent_tweets(since=end - dt.timedelta(days=2 * days), limit=20_000)
    posts = [summaries.Post(t["id"], t["text"], _when(t["created_at"]), int(t.get("impressions") or 0),
                            sum(int(t.get(k) or 0) for k in ("likes", "replies", "reposts", "quotes", "bookmarks")),
                            _url(m, t["id"])) for t in tweets]
    return summaries.report(m.vault, m.state, "twitter", posts, end=end, days=days, account=m.x.user_metrics())


def _when(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


async def get_twitter_summary(ctx: ToolContext, args: SummaryInput) -> dict:
    return await asyncio.to_thread(summary, ctx.resources, args.days)


TOOLS = [
    Tool(name="post_tweet", title="Post a tweet", handler=post_tweet, method="POST", path="/post/tweet",
         input_model=PostTweetInput, output_schema=POSTED_SCHEMA, read_only=False, idempotent=True,
         write_action="post_tweet", target_param="text", reconcile=tweet_found,
         description=f"Post one tweet (or a reply), exactly once. {NEEDS_APPROVAL}",
         summary=lambda p: f"tweet {str(p.get('text'))[:60]!r}"),
    Tool(name="post_thread", title="Post a thread", handler=post_thread, method="POST", path="/post/thread",
         input_model=PostThreadInput, output_schema=THREAD_SCHEMA, read_only=False, idempotent=True,
         write_action="post_thread", reconcile=thread_found,
         description="Post a thread in order, each tweet replying to the one before; broken in the middle, it "
                     f"resumes where it stopped. {NEEDS_APPROVAL}",
         summary=lambda p: f"post a thread of {len(p.get('tweets') or [])} tweets"),
    Tool(name="get_user_metrics", title="Account metrics", handler=get_user_metrics, method="GET",
         path="/metrics/user", input_model=UserMetricsInput, output_schema=USER_METRICS_SCHEMA, idempotent=True,
         cached=True, description="Followers, following, tweets and lists of the account (or another user)."),
    Tool(name="get_tweet_metrics", title="Tweet metrics", handler=get_tweet_metrics, method="GET",
         path="/metrics/tweet", input_model=TweetMetricsInput, output_schema=TWEET_METRICS_SCHEMA, idempotent=True,
         cached=True, description="Impressions, likes, replies, reposts, quotes and bookmarks, 100 tweets per call."),
    Tool(name="get_twitter_summary", title="X summary", handler=get_twitter_summary, method="GET", path="/summary",
         input_model=SummaryInput, output_schema=SUMMARY_SCHEMA, idempotent=True,
         description="The week's tweets, impressions, engagement, best tweet and change against the week before; "
                     "also written to Social_Media_Summaries/ (inside the vault)."),
]


def describe(m: X) -> dict:
    """What X counts against the owner, for /health and the Dashboard: requests left per window."""
    limits = m.x.rate_limits()
    return {"rate_limits": {endpoint: {"remaining": v.get("remaining"), "limit": v.get("limit"),
                                       "reset": v.get("reset")} for endpoint, v in limits.items()}}


def refresh(m: X, deps: Deps) -> None:
    """The Dashboard's X section: the followers (one call) and the requests left in X's windows."""
    account = m.x.user_metrics()
    lines = [f"- Followers: {account['followers']:,}; following {account['following']:,}; "
             f"tweets {account['tweets']:,}"]
    lines += [f"- `{endpoint}`: {v.get('remaining')} of {v.get('limit')} requests left until "
              f"{time.strftime('%H:%M UTC', time.gmtime(v['reset'])) if v.get('reset') else 'the window resets'}"
              for endpoint, v in sorted(m.x.rate_limits().items())]
    deps.state.cache_put("dashboard:x", {"title": "X", "lines": lines})


VERTICAL = Vertical(
    service="twitter", version="1.0.0", channel="x", tools=TOOLS, skills=SKILLS, connect=connect,
    configured=lambda m: m.x.is_configured(),
    setup_hint="set X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET (or X_CLIENT_ID and X_TOKEN_FILE)",
    probe=lambda m: m.x.probe(), describe=describe, refresh=refresh, refresh_seconds=600.0,
    retry=PLATFORM_RETRY)


def build_app(settings, *, x: XConnector | None = None):  # noqa: ANN001, ANN201 - as the builder's
    return build_server(settings, VERTICAL, x=x)


if __name__ == "__main__":
    sys.exit(serve(VERTICAL))
