"""The Facebook + Instagram MCP server (META_MCP_PORT, default 8084).

    python -m social_media_integration.facebook_instagram_mcp_server          # PM2 app `mcp-meta`

Posts are writes behind the approval gate, exactly once through the base's ledger: an interrupted
post is looked for on the Page feed or in the Instagram media by its exact text before anything is
posted again, and an Instagram container made before a crash is resumed, never made twice. A
platform that says "wait" (Meta's usage headers), or is down, delays a post in the outbox: by what it
says, else 15 minutes. Insights drop a retired metric instead of blanking the report; the weekly
summary is written to ``Social_Media_Summaries/``. Everything else is the builder's.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from dataclasses import dataclass
from typing import Any

from core.approval.gate import SkillBinding
from core.errors import AIEmployeeError
from core.state import StateStore
from mcp_servers.ledger import PLATFORM_RETRY
from mcp_servers.server import Deps, Vertical, build_app as build_server, main as serve
from mcp_servers.tools import NEEDS_APPROVAL, Tool, ToolContext
from social_media_integration import summaries
from social_media_integration.facebook_instagram_connector import MetaConnector
from social_media_integration.meta_config import MetaConfig
from social_media_integration.meta_errors import MetaDuplicateError
from social_media_integration.social_schema import (IG_POSTED_SCHEMA, INSIGHTS_SCHEMA, META_SUMMARY_SCHEMA,
                                                    POSTED_SCHEMA, InsightsInput, PostFacebookInput,
                                                    PostInstagramInput, SummaryInput)
from core.vault import Vault

log = logging.getLogger(__name__)
SKILLS = {"post_facebook": SkillBinding("facebook_instagram_skill", text_param="message"),
          "post_instagram": SkillBinding("facebook_instagram_skill", text_param="caption")}
RECONCILE_HOURS = 48  # how far back an interrupted post is looked for
QUOTA_KEY = "meta:publishing_limit"


@dataclass
class Meta:
    meta: MetaConnector
    state: StateStore
    vault: Vault


def connect(deps: Deps, *, meta: MetaConnector | None = None) -> Meta:
    return Meta(meta or MetaConnector(MetaConfig.from_env(deps.settings.env)), deps.state, deps.vault)


class ContainerInStore:
    """An Instagram container being published, kept per grant in the state store (survives a crash)."""

    def __init__(self, state: StateStore, grant_key: str) -> None:
        self.state, self.key = state, f"meta:ig_container:{grant_key}"

    def get(self) -> str | None:
        hit = self.state.cache_get(self.key)
        return hit[0] if hit else None

    def set(self, container_id: str | None) -> None:
        self.state.cache_put(self.key, container_id)


def _since() -> float:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=RECONCILE_HOURS)).timestamp()


def _post_facebook(m: Meta, args: PostFacebookInput) -> dict:
    try:
        return m.meta.post_page(args.message, link=args.link, image_url=args.image_url)
    except MetaDuplicateError:  # Meta says it has it: that is the post that went out
        found = m.meta.find_page_post(args.message, since=_since())
        if found is None:
            raise
        return {"id": found, "url": None, "reconciled": True}


async def post_facebook(ctx: ToolContext, args: PostFacebookInput) -> dict:
    return await asyncio.to_thread(_post_facebook, ctx.resources, args)


async def facebook_post_found(ctx: ToolContext, args: PostFacebookInput) -> dict | None:
    found = await asyncio.to_thread(ctx.resources.meta.find_page_post, args.message, since=_since())
    return None if found is None else {"id": found, "url": None, "reconciled": True}


async def post_instagram(ctx: ToolContext, args: PostInstagramInput) -> dict:
    assert ctx.grant is not None
    m: Meta = ctx.resources
    result = await asyncio.to_thread(m.meta.publish_instagram, image_url=args.image_url, video_url=args.video_url,
                                     caption=args.caption, pending=ContainerInStore(m.state, ctx.grant.idempotency_key))
    try:  # one post less in the quota: shown at once, not at the next refresh
        await asyncio.to_thread(_note_quota, m)
    except AIEmployeeError as err:
        log.info("publishing quota not read", extra={"error": str(err)})
    return {"id": result["id"], "permalink": result.get("permalink")}


async def instagram_post_found(ctx: ToolContext, args: PostInstagramInput) -> dict | None:
    assert ctx.grant is not None
    m: Meta = ctx.resources
    if ContainerInStore(m.state, ctx.grant.idempotency_key).get():
        return None  # a container is pending: publishing it again resumes it (never a second one)
    found = await asyncio.to_thread(m.meta.find_instagram_media, args.caption, since=_since())
    return None if found is None else {"id": found, "permalink": None, "reconciled": True}


async def get_facebook_insights(ctx: ToolContext, args: InsightsInput) -> dict:
    return await asyncio.to_thread(ctx.resources.meta.page_insights, days=args.days)


async def get_instagram_insights(ctx: ToolContext, args: InsightsInput) -> dict:
    return await asyncio.to_thread(ctx.resources.meta.instagram_insights, days=args.days)


def platform_summary(m: Meta, platform: str, days: int, *, end: dt.datetime | None = None) -> dict[str, Any]:
    """One platform's period (the Page's posts or the Instagram media, 100 a call with their metrics),
    summarised and written."""
    end = end or summaries.period_end()
    fetch = m.meta.page_posts if platform == "facebook" else m.meta.instagram_media
    posts = [summaries.Post(p["id"], p["text"], p["created"], int(p["reach"]), int(p["engagement"]), p.get("url"))
             for p in fetch(since=end - dt.timedelta(days=2 * days), until=end)]
    return summaries.report(m.vault, m.state, platform, posts, end=end, days=days)


def _summary(m: Meta, days: int) -> dict[str, Any]:
    config, end = m.meta.config, summaries.period_end()
    out: dict[str, Any] = {"facebook": None, "instagram": None, "paths": []}
    for platform, configured in (("facebook", config.facebook_configured()),
                                 ("instagram", config.instagram_configured())):
        if configured:
            out[platform] = platform_summary(m, platform, days, end=end)
            out["paths"].append(out[platform]["path"])
    out["path"] = out["paths"][0] if out["paths"] else None
    return out


async def get_meta_summary(ctx: ToolContext, args: SummaryInput) -> dict:
    return await asyncio.to_thread(_summary, ctx.resources, args.days)


TOOLS = [
    Tool(name="post_facebook", title="Post on Facebook", handler=post_facebook, method="POST", path="/post/facebook",
         input_model=PostFacebookInput, output_schema=POSTED_SCHEMA, read_only=False, idempotent=True,
         write_action="post_facebook", target_param="message", reconcile=facebook_post_found,
         description=f"Post on the Facebook Page (text, a link, or a photo), exactly once. {NEEDS_APPROVAL}",
         summary=lambda p: f"post on the Facebook Page: {str(p.get('message'))[:60]!r}"),
    Tool(name="post_instagram", title="Post on Instagram", handler=post_instagram, method="POST",
         path="/post/instagram", input_model=PostInstagramInput, output_schema=IG_POSTED_SCHEMA, read_only=False,
         idempotent=True, write_action="post_instagram", target_param="caption", reconcile=instagram_post_found,
         description=f"Publish an image (or a video as a Reel) with a caption on Instagram, exactly once. {NEEDS_APPROVAL}",
         summary=lambda p: f"post on Instagram: {str(p.get('caption'))[:60]!r}"),
    Tool(name="get_facebook_insights", title="Facebook insights", handler=get_facebook_insights, method="GET",
         path="/insights/facebook", input_model=InsightsInput, output_schema=INSIGHTS_SCHEMA, idempotent=True,
         cached=True, description="The Page's figures over the last days; a metric the API no longer has is "
                                  "listed in skipped instead of failing the report."),
    Tool(name="get_instagram_insights", title="Instagram insights", handler=get_instagram_insights, method="GET",
         path="/insights/instagram", input_model=InsightsInput, output_schema=INSIGHTS_SCHEMA, idempotent=True,
         cached=True, description="The Instagram account's figures over the last days (views, reach, engagement)."),
    Tool(name="get_meta_summary", title="Facebook and Instagram summary", handler=get_meta_summary, method="GET",
         path="/summary", input_model=SummaryInput, output_schema=META_SUMMARY_SCHEMA, idempotent=True,
         description="The week's posts, reach, engagement, best post and change against the week before, for "
                     "the Page and for Instagram; also written to Social_Media_Summaries/ (inside the vault)."),
]


def describe(m: Meta) -> dict:
    """What the platform counts against the owner, for /health and the Dashboard."""
    info: dict[str, Any] = {"usage": m.meta.usage()}
    hit = m.state.cache_get(QUOTA_KEY)
    if hit:
        info["instagram_posts_left_24h"] = hit[0].get("remaining")
    return info


def _note_quota(m: Meta) -> None:
    """Instagram's 24-hour publishing quota, kept for /health and the Dashboard."""
    quota = m.meta.publishing_limit()
    m.state.cache_put(QUOTA_KEY, quota)
    usage = m.meta.usage()
    lines = [f"- Instagram: {quota['remaining'] if quota['remaining'] is not None else '?'} of "
             f"{quota['limit'] if quota['limit'] is not None else '?'} posts left in the 24-hour publishing quota"]
    for name, figures in sorted(usage.items()):
        lines.append(f"- Graph API usage ({name.replace('_', ' ')}): {_usage_text(figures)}")
    m.state.cache_put("dashboard:meta", {"title": "Facebook and Instagram", "lines": lines})


def _usage_text(figures: Any) -> str:
    if isinstance(figures, dict):
        return ", ".join(f"{k.replace('_', ' ')} {v}%" if isinstance(v, (int, float)) else f"{k} {v}"
                         for k, v in figures.items()) or "none"
    return str(figures)[:120]


def refresh(m: Meta, deps: Deps) -> None:
    if m.meta.config.instagram_configured():
        _note_quota(m)


VERTICAL = Vertical(
    service="meta", version="1.0.0", channel="meta", tools=TOOLS, skills=SKILLS, connect=connect,
    configured=lambda m: m.meta.is_configured(),
    setup_hint="set META_ACCESS_TOKEN (and FACEBOOK_PAGE_ID, INSTAGRAM_ACCOUNT_ID)",
    probe=lambda m: m.meta.probe(), describe=describe, refresh=refresh, refresh_seconds=900.0, retry=PLATFORM_RETRY)


def build_app(settings, *, meta: MetaConnector | None = None):  # noqa: ANN001, ANN201 - as the builder's
    return build_server(settings, VERTICAL, meta=meta)


if __name__ == "__main__":
    sys.exit(serve(VERTICAL))
