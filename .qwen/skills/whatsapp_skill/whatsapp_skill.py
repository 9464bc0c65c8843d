"""whatsapp_skill: replies typed into WhatsApp Web through the Browser MCP server (8081), once the owner
approves them. The server owns the browser; this skill never launches one.

The write schema is the server's tool input schema, checked in beside this file (tools.schema.json,
pinned to the server by a test).
"""
from __future__ import annotations

from core.engine.mcp_client import McpClient, granted_write
from core.engine.skills import ActionContext, Skill, tool_schemas

skill = Skill("whatsapp_skill")
SCHEMAS = tool_schemas(__file__)


@skill.action(schema=SCHEMAS["send_whatsapp_message"], channel="message", text_param="text",
              recipient_params=("chat",), recipient_kind="chat", idempotent=True,
              description="Send a message in a WhatsApp chat (a reply to the message that made the task).")
def send_whatsapp_message(params: dict, ctx: ActionContext) -> dict:
    # idempotent: one ledger entry per grant on the server; an interrupted send is looked for in the
    # chat before anything is typed again.
    return granted_write(ctx, "browser", "/whatsapp/send", params)


@skill.action(schema={"type": "object", "additionalProperties": False, "properties": {}}, read_only=True,
              channel="message", description="The chats with unread messages and those messages.")
def get_unread(params: dict, ctx: ActionContext) -> dict:
    return McpClient.for_service(ctx.settings, "browser").get("/whatsapp/unread")
