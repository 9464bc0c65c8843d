"""The Browser MCP server (BROWSER_MCP_PORT, default 8081): the one process that runs Chromium.

    python -m mcp_servers.browser_server          # PM2 app `mcp-browser`

A Chromium profile can be open in one process only, so the WhatsApp watcher and the skills reach
WhatsApp Web and LinkedIn through this server. Reading pages (browse, scrape, an automation whose
every step reads) needs no approval; sending a WhatsApp message, a LinkedIn post and an automation
that clicks or types are writes behind the approval gate, exactly once through the base's ledger: an
interrupted one is looked for in the chat or on the owner's activity page before anything is typed
again. Each site is its own channel: WhatsApp logged out (``not_logged_in``), a checkpoint, or a page
that changed (``selector_missing: <name>``) pauses that site alone, and /health and the Dashboard say
which. ``agent_interface.py login <site>`` opens a visible window on the site's profile through
``open_login_window``. Everything else is the builder's (mcp_servers.server).
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from core.approval.gate import SkillBinding
from core.errors import NotConfiguredError, ValidationError
from core.vault import Vault, safe_name
from mcp_servers.browser import linkedin, web, whatsapp
from mcp_servers.browser.config import SITES, BrowserConfig
from mcp_servers.browser.engine import BrowserEngine
from mcp_servers.server import Deps, Vertical, build_app as build_server, main as serve
from mcp_servers.tools import NEEDS_APPROVAL, Tool, ToolContext, ToolInput

SKILLS = {"send_whatsapp_message": SkillBinding("whatsapp_skill", text_param="text"),
          "social_media_post": SkillBinding("linkedin_skill", text_param="text"),
          "automate_browser": SkillBinding("browser_skill")}
SCREENSHOTS = "Attachments"  # screenshots are saved in the vault, as the owner's other files


@dataclass
class Browser:
    engine: BrowserEngine
    vault: Vault
    ready: bool = False
    why_not: str = field(default="the browser has not started yet")


def connect(deps: Deps, *, engine: BrowserEngine | None = None) -> Browser:
    config = BrowserConfig.from_env(deps.settings.env, state_dir=deps.settings.state_db.parent)
    return Browser(engine or BrowserEngine(config), deps.vault)


async def start(b: Browser) -> None:
    try:
        await b.engine.start()
    except NotConfiguredError as err:  # no Chromium: the server runs and says how to fix it
        b.why_not = str(err)
        return
    b.ready = True


async def stop(b: Browser) -> None:
    if b.ready:
        await b.engine.stop()


# --- inputs ----------------------------------------------------------------------------------------

class BrowseInput(ToolInput):
    url: str = Field(min_length=1, max_length=4000, description="The page (http or https).")
    screenshot: bool = Field(False, description="Also save a screenshot in the vault (its path is returned).")


class ScrapeInput(ToolInput):
    url: str = Field(min_length=1, max_length=4000, description="The page (http or https).")
    selectors: dict[str, str] = Field(description="Names to CSS selectors, e.g. {\"price\": \".price\"}; "
                                                  "as a query parameter, the same as JSON.")

    @field_validator("selectors", mode="before")
    @classmethod
    def _json_in_a_query(cls, value: Any) -> Any:
        if isinstance(value, str):  # GET: ?selectors={"title":"h1"}
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError('selectors must be a JSON object such as {"title": "h1"}') from None
        return value


class Step(ToolInput):
    action: Literal["goto", "click", "fill", "press", "wait_for", "extract", "screenshot"]
    url: str | None = Field(None, max_length=4000)
    selector: str | None = Field(None, max_length=500)
    value: str | None = Field(None, max_length=10_000)


class AutomateInput(ToolInput):
    steps: list[Step] = Field(min_length=1, max_length=web.MAX_STEPS,
                              description="In order; the first is a goto. Clicking, filling or pressing makes "
                                          "it a write that needs the owner's approval.")
    timeout_s: float | None = Field(None, gt=0, le=web.MAX_TIMEOUT_S, description="The whole list's time budget.")


class PostInput(ToolInput):
    platform: Literal["linkedin"] = Field(description="Where to post: linkedin.")
    text: str = Field(min_length=1, max_length=3000, description="The post.")
    image: str | None = Field(None, description="Not supported yet: a post with an image is refused.")


class SendInput(ToolInput):
    chat: str = Field(min_length=1, max_length=200, description="The chat's name as WhatsApp shows it.")
    text: str = Field(min_length=1, max_length=4096, description="The message.")


class SiteInput(ToolInput):
    site: Literal["whatsapp", "linkedin"]


class UnreadInput(ToolInput):
    fresh: bool = Field(False, description="Load WhatsApp Web again first (a page left open for long may be stale).")


# --- handlers --------------------------------------------------------------------------------------

def _engine(ctx: ToolContext) -> BrowserEngine:
    b: Browser = ctx.resources
    if not b.ready:
        raise NotConfiguredError(b.why_not)
    return b.engine


def _save_screenshot(b: Browser, png: bytes, url: str) -> str:
    host = safe_name(urlsplit(url).hostname or "page", max_bytes=60)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = b.vault.folder(SCREENSHOTS) / f"screenshot_{stamp}_{host}.png"
    b.vault.write_atomic(path, png, sync=False)
    return b.vault.relative(path)


async def browse_web(ctx: ToolContext, args: BrowseInput) -> dict:
    page = await web.browse(_engine(ctx), args.url, screenshot=args.screenshot)
    shot = page.pop("screenshot", None)
    return {**page, "screenshot": _save_screenshot(ctx.resources, shot, page["url"]) if shot else None}


async def scrape_content(ctx: ToolContext, args: ScrapeInput) -> dict:
    return await web.scrape(_engine(ctx), args.url, args.selectors)


async def automate_browser(ctx: ToolContext, args: AutomateInput) -> dict:
    steps = [s.model_dump(exclude_none=True) for s in args.steps]
    results = await web.automate(_engine(ctx), steps, timeout_s=args.timeout_s)
    url = next((s["url"] for s in steps if s["action"] == "goto"), "page")
    for result in results:
        if isinstance(result.get("value"), bytes):
            result["value"] = {"screenshot": _save_screenshot(ctx.resources, result["value"], url)}
    return {"steps": results, "completed": len(results) == len(steps) and all(r["ok"] for r in results)}


def _only_reads(args: AutomateInput) -> bool:
    return web.read_only([{"action": s.action} for s in args.steps])


async def social_media_post(ctx: ToolContext, args: PostInput) -> dict:
    if args.image:
        raise ValidationError("a LinkedIn post with an image is not supported yet: post the text alone",
                              field="image")
    assert ctx.grant is not None
    result = await linkedin.post(_engine(ctx), args.text, marker=ctx.grant.idempotency_key)
    return {"platform": "linkedin", **result}


async def linkedin_post_found(ctx: ToolContext, args: PostInput) -> dict | None:
    found = await linkedin.find_post(_engine(ctx), args.text)
    return None if found is None else {"platform": "linkedin", **found, "reconciled": True}


async def get_whatsapp_unread(ctx: ToolContext, args: UnreadInput) -> dict:
    return await whatsapp.unread(_engine(ctx), fresh=args.fresh)


async def send_whatsapp_message(ctx: ToolContext, args: SendInput) -> dict:
    assert ctx.grant is not None
    return await whatsapp.send(_engine(ctx), args.chat, args.text, marker=ctx.grant.idempotency_key)


async def whatsapp_message_found(ctx: ToolContext, args: SendInput) -> dict | None:
    found = await whatsapp.find_sent(_engine(ctx), args.chat, args.text)
    return None if found is None else {"chat": args.chat, "sent_at": found.get("time"), "id": found["id"],
                                       "reconciled": True}


async def open_login_window(ctx: ToolContext, args: SiteInput) -> dict:
    """The site's profile in a visible window, for the owner to scan the QR code or sign in."""
    engine = _engine(ctx)
    await engine.restart_site(args.site, headless=False)
    try:
        async with engine.site(args.site) as s:
            await s.open()
    except Exception as err:  # noqa: BLE001 - the window is open; its page is what the owner acts on
        return {"site": args.site, "state": engine.state(args.site), "window": "open", "note": str(err)[:300]}
    return {"site": args.site, "state": engine.state(args.site), "window": "open"}


async def close_login_window(ctx: ToolContext, args: SiteInput) -> dict:
    """Back to the configured (headless) browser; the login stays in the profile."""
    engine = _engine(ctx)
    await engine.restart_site(args.site, headless=None)
    result = await engine.self_test(args.site)
    return {"site": args.site, "state": engine.state(args.site), "elements": result}


async def check_site(ctx: ToolContext, args: SiteInput) -> dict:
    """The selectors self-test on the live page: each element ok, missing or not seen right now."""
    engine = _engine(ctx)
    elements = await engine.self_test(args.site)
    missing = sorted(name for name, said in elements.items() if said == "missing")
    return {"site": args.site, "state": engine.state(args.site), "elements": elements, "missing": missing}


# --- the tools -------------------------------------------------------------------------------------

def _named_site(args: SiteInput) -> str:
    return args.site  # the login and check tools report on the site they name


_OBJ = {"type": "object"}
TOOLS = [
    Tool(name="browse_web", title="Read a web page", handler=browse_web, method="POST", path="/browse-web",
         input_model=BrowseInput, idempotent=True, channel="web",
         output_schema={"type": "object", "properties": {"url": {"type": "string"}, "status": {"type": ["integer", "null"]},
                                                         "title": {"type": "string"}, "text": {"type": "string"},
                                                         "screenshot": {"type": ["string", "null"]}},
                        "required": ["url", "title", "text"]},
         description="Open a page in a fresh, cookie-less browser and return its final URL, status, title and "
                     "readable text (bounded), optionally a screenshot saved in the vault. Private and loopback "
                     "addresses are refused unless on BROWSER_ALLOWED_HOSTS."),
    Tool(name="scrape_content", title="Scrape a page", handler=scrape_content, method="GET", path="/scrape-content",
         input_model=ScrapeInput, idempotent=True, channel="web",
         output_schema={"type": "object", "properties": {"url": {"type": "string"}, "fields": _OBJ},
                        "required": ["url", "fields"]},
         description="The texts matching each named CSS selector on a page (at most 20 selectors, 50 texts each)."),
    Tool(name="automate_browser", title="Run browser steps", handler=automate_browser, method="POST",
         path="/automate-browser", input_model=AutomateInput, read_only=False, write_action="automate_browser",
         reads_when=_only_reads, channel="web",
         output_schema={"type": "object", "properties": {"steps": {"type": "array", "items": _OBJ},
                                                         "completed": {"type": "boolean"}}, "required": ["steps"]},
         description="A bounded list of steps (goto, click, fill, press, wait_for, extract, screenshot; at most 25 "
                     f"steps and 120 s) in a fresh browser. Only reading steps: no approval. {NEEDS_APPROVAL}",
         summary=lambda p: f"run {len(p.get('steps') or [])} browser steps from "
                           f"{next((s.get('url') for s in p.get('steps') or [] if s.get('url')), 'a page')}"),
    Tool(name="social_media_post", title="Post on LinkedIn", handler=social_media_post, method="POST",
         path="/social-media-post", input_model=PostInput, read_only=False, idempotent=True,
         write_action="social_media_post", target_param="platform", reconcile=linkedin_post_found, channel="linkedin",
         output_schema={"type": "object", "properties": {"url": {"type": ["string", "null"]}}},
         description=f"Publish a LinkedIn post from the owner's logged-in profile, exactly once. {NEEDS_APPROVAL}",
         summary=lambda p: f"post on LinkedIn: {str(p.get('text'))[:60]!r}"),
    Tool(name="get_whatsapp_unread", title="Unread WhatsApp messages", handler=get_whatsapp_unread, method="GET",
         path="/whatsapp/unread", input_model=UnreadInput, channel="whatsapp",
         output_schema={"type": "object", "properties": {"state": {"type": "string"},
                                                         "chats": {"type": "array", "items": _OBJ}},
                        "required": ["state", "chats"]},
         description="The chats with unread messages (muted ones included, pinned ones without a badge not) and "
                     "their unread messages: id, sender, text, time."),
    Tool(name="send_whatsapp_message", title="Send a WhatsApp message", handler=send_whatsapp_message,
         method="POST", path="/whatsapp/send", input_model=SendInput, read_only=False, idempotent=True,
         write_action="send_whatsapp_message", target_param="chat", reconcile=whatsapp_message_found,
         channel="whatsapp",
         output_schema={"type": "object", "properties": {"chat": {"type": "string"}, "sent_at": {"type": ["string", "null"]}},
                        "required": ["chat"]},
         description=f"Type a message into a WhatsApp chat and send it, exactly once. {NEEDS_APPROVAL}",
         summary=lambda p: f"WhatsApp to {p.get('chat')}: {str(p.get('text'))[:60]!r}"),
    Tool(name="open_login_window", title="Open a site to log in", handler=open_login_window, method="POST",
         path="/browser/login", input_model=SiteInput, channel=_named_site,
         output_schema={"type": "object", "properties": {"site": {"type": "string"}, "state": {"type": "string"}}},
         description="Open the site's profile in a visible window so the owner can log in (QR code, password)."),
    Tool(name="close_login_window", title="Finish logging in", handler=close_login_window, method="POST",
         path="/browser/login/done", input_model=SiteInput, channel=_named_site,
         output_schema={"type": "object", "properties": {"site": {"type": "string"}, "state": {"type": "string"}}},
         description="Close the login window; the site goes on headless with the login kept in its profile."),
    Tool(name="check_site", title="Check a site's selectors", handler=check_site, method="GET", path="/browser/check",
         input_model=SiteInput, idempotent=True, channel=_named_site,
         output_schema={"type": "object", "properties": {"site": {"type": "string"}, "state": {"type": "string"},
                                                         "elements": _OBJ, "missing": {"type": "array"}}},
         description="The selectors self-test on the live page: which elements match, which no longer do."),
]
def describe(b: Browser) -> dict:
    return {"sites": b.engine.states(), "chromium": str(b.engine.config.executable)}


VERTICAL = Vertical(
    service="browser", version="1.0.0", channel="web", tools=TOOLS, skills=SKILLS, connect=connect,
    configured=lambda b: b.ready,
    setup_hint="install Chromium (apt-get install chromium) or point BROWSER_EXECUTABLE at it",
    describe=describe, sites=SITES, start=start, stop=stop)


def build_app(settings, *, engine: BrowserEngine | None = None):  # noqa: ANN001, ANN201 - as the builder's
    return build_server(settings, VERTICAL, engine=engine)


if __name__ == "__main__":
    sys.exit(serve(VERTICAL))
