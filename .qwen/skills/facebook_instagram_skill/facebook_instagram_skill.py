"""facebook_instagram_skill: Page posts and Instagram posts through the Meta MCP server (8084),
after the owner's approval, and the weekly summaries.

The write schemas are the server's tool input schemas, checked in beside this file
(tools.schema.json, pinned to the server by a test).
"""
from __future__ import annotations

from core.engine.mcp_client import McpClient, granted_write
from core.engine.skills import ActionContext, Skill, tool_schemas

skill = Skill("facebook_instagram_skill")
SCHEMAS = tool_schemas(__file__)


def _client(ctx: ActionContext) -> McpClient:
    return McpClient.for_service(ctx.settings, "meta")


def _write(path: str, params: dict, ctx: ActionContext) -> dict:
    return granted_write(ctx, "meta", path, params)


@skill.action(schema=SCHEMAS["post_facebook"], channel="social", text_param="message", idempotent=True,
              description="Post on the Facebook Page (text, a link or a photo).")
def post_facebook(params: dict, ctx: ActionContext) -> dict:
    return _write("/post/facebook", params, ctx)


@skill.action(schema=SCHEMAS["post_instagram"], channel="social", text_param="caption", idempotent=True,
              description="Publish an image (or a video) with a caption on Instagram.")
def post_instagram(params: dict, ctx: ActionContext) -> dict:
    return _write("/post/instagram", params, ctx)


@skill.action(schema={"type": "object", "additionalProperties": False,
                      "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 31}}},
              read_only=True, channel="social",
              description="The week on the Page and on Instagram (written to Social_Media_Summaries/).")
def get_summary(params: dict, ctx: ActionContext) -> dict:
    return _client(ctx).get("/summary", params)
