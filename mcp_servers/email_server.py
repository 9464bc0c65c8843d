"""The email MCP server (EMAIL_MCP_PORT, default 8080): Gmail for skills and MCP clients.

    python -m mcp_servers.email_server          # PM2 app `mcp-email`

Tools (REST route = MCP tool): POST /send-email = send_email (approval-gated, exactly once),
GET /receive-email = receive_email, POST /process-email = process_email (a message → a vault task,
the intake the Gmail watcher uses too), GET /gmail-watch = gmail_watch (the watcher's durable state).
Without a Gmail token the server still starts, reports ``not_configured`` and every tool answers
NOT_CONFIGURED. Everything else (gate, ledger, outbox, health, main) is the builder's.
"""
from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from core.approval.gate import SkillBinding
from mcp_servers.email_schema import (PROCESSED_SCHEMA, RECEIVED_SCHEMA, SENT_SCHEMA, WATCH_SCHEMA, GmailWatchInput,
                                      ProcessEmailInput, ReceiveEmailInput, SendEmailInput, blank_to_none)
from mcp_servers.gmail import GmailConnector
from mcp_servers.gmail.intake import GmailIntake
from mcp_servers.server import Deps, Vertical, build_app as build_server, main as serve
from mcp_servers.tools import NEEDS_APPROVAL, Tool, ToolContext

# Approved send_email requests are executed by gmail_skill; its `reply` is a send_email with threading
# fields, so the grant of an approved reply (the planner's default for email tasks) covers this tool too.
SKILLS = {"send_email": SkillBinding("gmail_skill", text_param="body", html_param="html", aliases=("reply",))}


@dataclass(frozen=True)
class Email:
    gmail: GmailConnector
    intake: GmailIntake


def connect(deps: Deps, *, gmail: GmailConnector | None = None) -> Email:
    intake = GmailIntake(deps.settings, deps.vault, deps.state, deps.audit, gmail=gmail)
    return Email(intake.gmail, intake)


async def send_email(ctx: ToolContext, args: SendEmailInput) -> dict:
    assert ctx.grant is not None, "the base runs write handlers only with a grant"
    return await asyncio.to_thread(
        ctx.resources.gmail.send, args.to, args.subject, args.body, cc=blank_to_none(args.cc),
        html=blank_to_none(args.html), in_reply_to=blank_to_none(args.in_reply_to),
        references=blank_to_none(args.references), thread_id=blank_to_none(args.thread_id),
        idempotency_key=ctx.grant.idempotency_key)


async def find_sent_email(ctx: ToolContext, args: SendEmailInput) -> dict | None:
    """The connector stamps the grant's key into the Message-ID and a header: Gmail is searched for it."""
    assert ctx.grant is not None
    found = await asyncio.to_thread(ctx.resources.gmail.find_sent_by_key, ctx.grant.idempotency_key)
    return None if found is None else {"id": found, "thread_id": blank_to_none(args.thread_id), "reconciled": True}


async def receive_email(ctx: ToolContext, args: ReceiveEmailInput) -> dict:
    gmail = ctx.resources.gmail

    def fetch() -> dict:
        page = gmail.list_messages(args.query, page_token=args.page_token, max_results=args.max_results)
        return {"messages": [gmail.get_message(m["id"]) for m in page["messages"]],
                "next_page_token": page["next_page_token"]}
    return await asyncio.to_thread(fetch)


async def process_email(ctx: ToolContext, args: ProcessEmailInput) -> dict:
    return await asyncio.to_thread(ctx.resources.intake.take, args.message_id)


async def gmail_watch(ctx: ToolContext, args: GmailWatchInput) -> dict:
    return await asyncio.to_thread(ctx.resources.intake.watch_state)


TOOLS = [
    Tool(name="send_email", title="Send email", handler=send_email, method="POST", path="/send-email",
         description="Send a plain-text (optionally HTML) email, or a threaded reply with in_reply_to, references "
                     f"and thread_id. {NEEDS_APPROVAL} Repeating a call with the same grant never sends twice.",
         input_model=SendEmailInput, output_schema=SENT_SCHEMA, read_only=False, idempotent=True,
         write_action="send_email", target_param="to", reconcile=find_sent_email,
         summary=lambda p: f"send an email to {p.get('to')} with subject {p.get('subject')!r}"),
    Tool(name="receive_email", title="Receive email", handler=receive_email, method="GET", path="/receive-email",
         description="List messages matching a Gmail query (default GMAIL_QUERY), with headers and text.",
         input_model=ReceiveEmailInput, output_schema=RECEIVED_SCHEMA, idempotent=True),
    Tool(name="process_email", title="Process email", handler=process_email, method="POST", path="/process-email",
         description="Turn one Gmail message into a task in the vault's Needs_Action/ (once: calling again "
                     "returns the same task). Writes only to the local vault.",
         input_model=ProcessEmailInput, output_schema=PROCESSED_SCHEMA, read_only=False, idempotent=True),
    Tool(name="gmail_watch", title="Gmail watch", handler=gmail_watch, method="GET", path="/gmail-watch",
         description="The Gmail watcher's state: history cursor, last heartbeat and health, journal backlog.",
         input_model=GmailWatchInput, output_schema=WATCH_SCHEMA, idempotent=True, open_world=False),
]

VERTICAL = Vertical(
    service="email", version="1.1.0", channel="gmail", tools=TOOLS, skills=SKILLS, connect=connect,
    configured=lambda email: email.gmail.is_configured(),
    setup_hint="no Gmail token yet; run `python -m mcp_servers.gmail_auth`",
    probe=lambda email: email.gmail.get_profile())


def build_app(settings, *, gmail: GmailConnector | None = None):  # noqa: ANN001, ANN201 - as the builder's
    return build_server(settings, VERTICAL, gmail=gmail)


if __name__ == "__main__":
    sys.exit(serve(VERTICAL))
