"""linkedin_skill: LinkedIn posts from the owner's logged-in browser profile, through the Browser MCP
server (8081), once the owner approves them.

The write schema is the server's tool input schema, checked in beside this file (tools.schema.json,
pinned to the server by a test).
"""
from __future__ import annotations

from core.engine.mcp_client import granted_write
from core.engine.skills import ActionContext, Skill, tool_schemas

skill = Skill("linkedin_skill")
SCHEMAS = tool_schemas(__file__)


@skill.action(schema=SCHEMAS["social_media_post"], channel="social", text_param="text", idempotent=True,
              description="Publish a post on LinkedIn.")
def social_media_post(params: dict, ctx: ActionContext) -> dict:
    # idempotent: one ledger entry per grant; an interrupted post is looked for on the owner's activity
    # page before anything is posted again.
    return granted_write(ctx, "browser", "/social-media-post", params)
