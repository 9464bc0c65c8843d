"""The email MCP server (EMAIL_MCP_PORT, default 8080): Gmail for skills and MCP clients.

    python -m mcp_servers.email_server          # PM2 app `mcp-email`

Tools (REST route = MCP tool): POST /send-email = send_email (approval-gated), GET /receive-email =
receive_email, POST /process-email = process_email (a message → a vault task, the watcher's own code),
GET /gmail-watch = gmail_watch (the watcher's durable state). Without a Gmail token the server still
starts, reports ``not_configured`` and every tool answers NOT_CONFIGURED.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from core.approval.approvals import Approvals
from core.audit import AuditLog
from core.config import Settings
from core.daemon import Daemon
from core.errors import NotConfiguredError
from core.approval.gate import SkillBinding, StateApprovalGate
from core.approval.policy import PolicySource
from core.state import StateStore
from core.vault import Vault
from mcp_servers.base import ServerConfig, Tool, ToolContext, create_app, run
from mcp_servers.email_schema import (PROCESSED_SCHEMA, RECEIVED_SCHEMA, SENT_SCHEMA, WATCH_SCHEMA, GmailWatchInput,
                                      ProcessEmailInput, ReceiveEmailInput, SendEmailInput)
from mcp_servers.email_sender import LedgerSender
from mcp_servers.gmail_connector import GmailConnector
from watchers.gmail_watcher import GmailWatcher, watch_state

log = logging.getLogger("mcp_servers.email")
SERVICE, VERSION, ACTOR = "email", "1.0.0", "mcp-email"
# Approved send_email requests are executed by gmail_skill; its `reply` is a send_email with threading
# fields, so the grant of an approved reply (the planner's default for email tasks) covers this tool too.
SKILLS = {"send_email": SkillBinding("gmail_skill", text_param="body", aliases=("reply",))}
HEARTBEAT_SECONDS = 2.0
INTAKE_KEY = web.AppKey("gmail_intake", GmailWatcher)
SENDER_KEY = web.AppKey("gmail_sender", LedgerSender)
STATE_KEY = web.AppKey("state", StateStore)


def require_gmail(intake: GmailWatcher) -> GmailWatcher:
    """Every tool (and the gate, before it files anything) answers NOT_CONFIGURED until a token exists."""
    if not intake.gmail.is_configured():
        raise NotConfiguredError("Gmail is not configured: no token file; run `python -m mcp_servers.gmail_auth`")
    return intake


def _intake(ctx: ToolContext) -> GmailWatcher:
    return require_gmail(ctx.app[INTAKE_KEY])


async def send_email(ctx: ToolContext, args: SendEmailInput) -> dict:
    assert ctx.grant is not None, "the base runs write handlers only with a grant"
    # The whole ledger-guarded send runs in a worker thread: if this request is cancelled (the client
    # went away, the server stops), the thread still records what happened.
    return await asyncio.to_thread(ctx.app[SENDER_KEY].send, ctx.grant.idempotency_key, args)


async def receive_email(ctx: ToolContext, args: ReceiveEmailInput) -> dict:
    gmail = _intake(ctx).gmail

    def fetch() -> dict:
        page = gmail.list_messages(args.query, page_token=args.page_token, max_results=args.max_results)
        return {"messages": [gmail.get_message(m["id"]) for m in page["messages"]],
                "next_page_token": page["next_page_token"]}
    return await asyncio.to_thread(fetch)


async def process_email(ctx: ToolContext, args: ProcessEmailInput) -> dict:
    return await asyncio.to_thread(_intake(ctx).take, args.message_id)


async def gmail_watch(ctx: ToolContext, args: GmailWatchInput) -> dict:
    intake = _intake(ctx)
    return await asyncio.to_thread(watch_state, ctx.app[STATE_KEY], intake.config.query)


TOOLS = [
    Tool(name="send_email", title="Send email", handler=send_email, method="POST", path="/send-email",
         description="Send a plain-text (optionally HTML) email, or a threaded reply with in_reply_to, references "
                     "and thread_id. Needs the owner's approval: without a valid grant_id it files a request and "
                     "answers APPROVAL_REQUIRED. Repeating a call with the same grant never sends twice.",
         input_model=SendEmailInput, output_schema=SENT_SCHEMA, read_only=False, idempotent=True,
         write_action="send_email", target_param="to",
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


class Pulse:
    """The heartbeat in the state store's health table. Its last success is also /health's evidence
    that the store is reachable, so /health itself does no I/O beyond one stat of the token file."""

    def __init__(self, daemon: Daemon, intake: GmailWatcher, detail: str) -> None:
        self.daemon, self.intake, self.detail = daemon, intake, detail
        self.ok_at: float | None = None
        self.error: str | None = None

    def beat(self) -> None:
        try:
            status = "healthy" if self.intake.gmail.is_configured() else "not_configured"
            self.daemon.beat(status, self.detail, force=True)
            self.ok_at, self.error = time.monotonic(), None
        except Exception as err:  # noqa: BLE001 - a broken store degrades the server; it must not kill it
            self.error = f"state store: {type(err).__name__}"
            log.exception("heartbeat failed")

    def state_check(self) -> dict:
        if self.error or self.ok_at is None or time.monotonic() - self.ok_at > 3 * HEARTBEAT_SECONDS:
            return {"status": "degraded", "detail": self.error or "no recent heartbeat"}
        return {"status": "healthy", "detail": "reachable"}


def build_app(settings: Settings, *, gmail: GmailConnector | None = None) -> web.Application:
    vault = Vault(settings.vault_path)
    vault.ensure_layout()
    state = StateStore(settings.state_db)
    audit = AuditLog(vault.root, ACTOR)
    ttl = PolicySource(vault.root / "Company_Handbook.md").current().approval_ttl_hours or settings.approval_ttl_hours
    intake = GmailWatcher(settings, gmail=gmail, actor=ACTOR, vault=vault, state=state)
    gate = StateApprovalGate(Approvals(vault, state, ttl_hours=ttl), state, SKILLS, audit=audit,
                             precheck=lambda: require_gmail(intake))
    pulse = Pulse(Daemon(ACTOR, state), intake, f"serving on port {settings.mcp_ports[SERVICE]}")

    def checks() -> dict:  # instant (one stat and a timestamp): no deadline needed
        gmail_check = ({"status": "healthy", "detail": "token present"} if intake.gmail.is_configured() else
                       {"status": "not_configured",
                        "detail": f"no token at {intake.config.token_file}; run python -m mcp_servers.gmail_auth"})
        return {"gmail": gmail_check, "state_store": pulse.state_check()}

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[INTAKE_KEY], app[SENDER_KEY], app[STATE_KEY] = intake, LedgerSender(intake.gmail, state), state

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                await asyncio.to_thread(pulse.beat)
        await asyncio.to_thread(pulse.beat)
        task = asyncio.create_task(heartbeat())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(pulse.daemon.beat, "stopped", "", force=True)

    config = ServerConfig.from_settings(settings, SERVICE, VERSION)
    return create_app(config, TOOLS, gate=gate, audit=audit, health_checks=checks, cleanup_ctx=[resources])


def main() -> None:
    settings = Settings.from_env()
    app = build_app(settings)
    run(app, ServerConfig.from_settings(settings, SERVICE, VERSION), log_level=settings.log_level)


if __name__ == "__main__":
    main()
