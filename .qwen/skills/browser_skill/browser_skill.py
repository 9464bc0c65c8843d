"""browser_skill: reading web pages, and running a bounded list of browser steps once the owner
approves it (an automation that clicks, fills or presses), through the Browser MCP server (8081).

The write schema is the server's tool input schema, checked in beside this file (tools.schema.json,
pinned to the server by a test).
"""
from __future__ import annotations

import json

from core.engine.mcp_client import McpClient, granted_write
from core.engine.skills import ActionContext, Skill, tool_schemas

skill = Skill("browser_skill")
SCHEMAS = tool_schemas(__file__)


def _client(ctx: ActionContext) -> McpClient:
    return McpClient.for_service(ctx.settings, "browser")


@skill.action(schema={"type": "object", "additionalProperties": False, "required": ["url"],
                      "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 4000},
                                     "screenshot": {"type": "boolean"}}},
              read_only=True, channel="web", description="Read a web page: title, final URL, readable text.")
def browse_web(params: dict, ctx: ActionContext) -> dict:
    return _client(ctx).post("/browse-web", params)


@skill.action(schema={"type": "object", "additionalProperties": False, "required": ["url", "selectors"],
                      "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 4000},
                                     "selectors": {"type": "object", "additionalProperties": {"type": "string"}}}},
              read_only=True, channel="web", description="The texts matching named CSS selectors on a page.")
def scrape_content(params: dict, ctx: ActionContext) -> dict:
    return _client(ctx).get("/scrape-content", {"url": params["url"], "selectors": json.dumps(params["selectors"])})


@skill.action(schema=SCHEMAS["automate_browser"], channel="web", idempotent=True,
              description="Run a bounded list of browser steps (goto, click, fill, press, wait_for, extract, "
                          "screenshot).")
def automate_browser(params: dict, ctx: ActionContext) -> dict:
    return granted_write(ctx, "browser", "/automate-browser", params)
