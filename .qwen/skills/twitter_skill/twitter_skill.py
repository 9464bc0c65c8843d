"""twitter_skill: tweets and threads through the X MCP server (8083), after the owner's approval.

The write schemas are the server's tool input schemas, checked in beside this file
(tools.schema.json, pinned to the server by a test): a plan that validates here is a call the
server accepts, and the engine never loads the server's code.
"""
from __future__ import annotations

from core.engine.mcp_client import McpClient, granted_write
from core.engine.skills import ActionContext, Skill, tool_schemas

skill = Skill("twitter_skill")
SCHEMAS = tool_schemas(__file__)


def _client(ctx: ActionContext) -> McpClient:
    return McpClient.for_service(ctx.settings, "twitter")


def _write(path: str, params: dict, ctx: ActionContext) -> dict:
    return granted_write(ctx, "twitter", path, params)


@skill.action(schema=SCHEMAS["post_tweet"], channel="social", text_param="text", idempotent=True,
              description="Post one tweet (or a reply) on X.")
def post_tweet(params: dict, ctx: ActionContext) -> dict:
    return _write("/post/tweet", params, ctx)


@skill.action(schema=SCHEMAS["post_thread"], channel="social", idempotent=True,
              description="Post a thread on X, each tweet replying to the one before.")
def post_thread(params: dict, ctx: ActionContext) -> dict:
    return _write("/post/thread", params, ctx)


@skill.action(schema={"type": "object", "additionalProperties": False,
                      "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 31}}},
              read_only=True, channel="social",
              description="The week on X (written to Social_Media_Summaries/).")
def get_summary(params: dict, ctx: ActionContext) -> dict:
    return _client(ctx).get("/summary", params)


@skill.action(schema={"type": "object", "additionalProperties": False,
                      "properties": {"username": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,15}$"}}},
              read_only=True, channel="social", description="Followers, following, tweets and lists.")
def get_user_metrics(params: dict, ctx: ActionContext) -> dict:
    return _client(ctx).get("/metrics/user", params)
