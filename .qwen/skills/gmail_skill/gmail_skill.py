"""gmail_skill: send and reply through the email MCP server, and draft replies locally.

The parameter schema is the send_email tool's own input schema, checked in beside this file
(send_email.schema.json; a test pins it to the server's tools/list), so a plan that validates here is
a call the server accepts, and the loop never loads the server's code. The server binds the approval
grant to these exact parameters: they are sent verbatim (empty optional fields included; the server
reads "" as absent).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from core.engine.mcp_client import granted_write
from core.engine.skills import ActionContext, Skill

skill = Skill("gmail_skill")


def _strings_only(schema: dict, *, required: tuple[str, ...] = ()) -> dict:
    """The tool's schema with optional fields as plain strings: the server drops null fields before
    the approval binding is compared, so a null here could never match; "" is how a plan says "none"."""
    out = copy.deepcopy(schema)
    for name, prop in out["properties"].items():
        text = next((s for s in prop.pop("anyOf", []) if s.get("type") == "string"), None)
        if text is not None:
            prop.pop("default", None)
            prop.update(text)
        if name in required:
            prop["minLength"] = 1
    out["required"] = [*out.get("required", []), *required]
    return out


TOOL_SCHEMA = json.loads((Path(__file__).with_name("send_email.schema.json")).read_text("utf-8"))
SEND_SCHEMA = _strings_only(TOOL_SCHEMA)
# A reply names the message it answers: both threading fields are required and non-empty.
REPLY_SCHEMA = _strings_only(TOOL_SCHEMA, required=("in_reply_to", "thread_id"))


def _send(params: dict, ctx: ActionContext) -> dict:
    return granted_write(ctx, "email", "/send-email", params)


@skill.action(schema=SEND_SCHEMA, description="Send an email (plain text, optional HTML) through the email server.",
              channel="email", text_param="body", html_param="html", recipient_params=("to", "cc"), idempotent=True)
def send_email(params: dict, ctx: ActionContext) -> dict:
    return _send(params, ctx)


@skill.action(schema=REPLY_SCHEMA, description="Reply in the sender's thread (In-Reply-To, References, threadId).",
              channel="email", text_param="body", html_param="html", recipient_params=("to", "cc"), idempotent=True)
def reply(params: dict, ctx: ActionContext) -> dict:
    return _send(params, ctx)


@skill.action(schema=SEND_SCHEMA, description="Preview the email these parameters would send; touches nothing.",
              read_only=True)
def draft(params: dict, ctx: ActionContext) -> dict:
    headers = [("To", params["to"]), ("Cc", params.get("cc")), ("Subject", params["subject"]),
               ("In-Reply-To", params.get("in_reply_to")), ("References", params.get("references"))]
    text = "\n".join(f"{name}: {value}" for name, value in headers if value) + "\n\n" + params["body"]
    return {"to": params["to"], "subject": params["subject"], "body": params["body"], "preview": text}
