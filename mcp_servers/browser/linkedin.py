"""LinkedIn: publishing a post from the owner's logged-in profile exactly once, and finding it again.

The post composer opens in a dialog that LinkedIn renders in a portal (a modal outlet at the end of
<body>), not inside the feed: it is looked up from the document, its editor and button inside it.
The owner's own posts are read from their activity page (``pages.own_posts``), which lists nothing else.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from core.errors import OutcomeUnknownError, TransientError, ValidationError
from mcp_servers.browser.dom import same_text, script
from mcp_servers.browser.engine import BrowserEngine
from mcp_servers.browser.selectors import SiteSelectors, locate_optional
from mcp_servers.browser.session import SitePage

SITE = "linkedin"
MAX_TEXT_CHARS = 3_000   # LinkedIn's limit for a post
MAX_POSTS = 20           # own posts looked through by find_post

_POSTS_JS = script("""
  const [s, max] = arg;
  return pick(document, s.own_post).nodes.slice(0, max).map((post) => ({
    urn: attrOf(post, s.attr_post_urn),
    text: textOf(first(post, s.post_text)),
  }));
""")
_TEXT_JS = script("return textOf(arg);")


async def post(engine: BrowserEngine, text: str, *, marker: str | None = None) -> dict:
    """Publish ``text``: {url, urn, posted_at} (url and urn None when the activity page does not show
    the post yet). ``marker`` as in whatsapp.send: a post already made for it is returned, not repeated;
    one whose outcome was unknown is looked for first. OutcomeUnknownError when Post was clicked but the
    dialog did not close: look with find_post before posting again."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text must not be empty", field="text")
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError(f"a LinkedIn post is at most {MAX_TEXT_CHARS} characters", field="text")
    prior = engine.recall(SITE, marker)
    if prior and prior[0] == "done":
        return prior[1]
    async with engine.site(SITE) as s:
        if prior and prior[0] == "unknown":
            found = await _find(s, text)
            if found is not None:
                result = {**found, "posted_at": _now()}
                engine.remember(SITE, marker, "done", result)
                return result
        await s.open("home")
        await (await s.locate("start_post_button")).click()
        dialog = await s.locate("post_dialog")            # in the portal, from the document
        editor = await s.locate("post_editor", dialog)
        await _replace_text(s, editor, text)
        if not same_text(await editor.evaluate(_TEXT_JS), text):
            await _replace_text(s, editor, "")
            raise TransientError("linkedin: the editor did not take the text as typed; nothing was posted")
        button = await s.locate("post_button", dialog)
        engine.remember(SITE, marker, "unknown")
        try:
            await button.click()
            await dialog.wait_for(state="detached", timeout=s.engine.config.nav_timeout_s * 1000)
        except Exception as err:
            raise OutcomeUnknownError(f"linkedin: Post was clicked but the dialog did not close "
                                      f"({type(err).__name__}); look for the post before posting again") from err
        found = await _find(s, text)
        result = {**(found or {"url": None, "urn": None}), "posted_at": _now()}
        engine.remember(SITE, marker, "done", result)
        return result


async def find_post(engine: BrowserEngine, text: str) -> dict | None:
    """The owner's recent post with exactly ``text``: {url, urn}, or None."""
    async with engine.site(SITE) as s:
        return await _find(s, text)


async def _find(s: SitePage, text: str) -> dict | None:
    await s.open("own_posts", fresh=True)   # a fresh load: the post just made must be on it
    await s.locate_optional("own_post", timeout_s=min(5.0, s.timeout_s))
    data = {**dict(s.sel.elements), **{f"attr_{k}": list(v) for k, v in s.sel.attributes.items()}}
    for item in await s.evaluate(_POSTS_JS, [data, MAX_POSTS]):
        if same_text(item["text"], text):
            urn = item["urn"]
            base = s.engine.config.linkedin_url.rstrip("/")
            return {"url": f"{base}/feed/update/{urn}/" if urn else None, "urn": urn}
    return None


async def _replace_text(s: SitePage, box: Any, text: str) -> None:
    await box.click()
    await s.page.keyboard.press("ControlOrMeta+A")
    await s.page.keyboard.press("Backspace")
    for number, line in enumerate(text.split("\n")):
        if number:
            await s.page.keyboard.press("Enter")  # a new paragraph; the dialog posts only on its button
        if line:
            await s.page.keyboard.insert_text(line)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


async def self_test(page: Any, sel: SiteSelectors, *, timeout_s: float) -> dict[str, str]:
    status = {name: "not_seen" for name in sel.elements}

    def mark(name: str, ok: bool, *, optional: bool = False) -> None:
        status[name] = "ok" if ok else ("not_seen" if optional else "missing")

    mark("logged_in", await locate_optional(page, sel, "logged_in") is not None)
    posts = await locate_optional(page, sel, "own_post")
    mark("own_post", posts is not None, optional=True)
    if posts is not None:
        mark("post_text", await locate_optional(posts, sel, "post_text") is not None)
    start = await locate_optional(page, sel, "start_post_button")
    mark("start_post_button", start is not None)
    if start is None:
        return status
    await start.click()   # opens the empty composer; closed again below, nothing typed
    dialog = await locate_optional(page, sel, "post_dialog", timeout_s=timeout_s)
    mark("post_dialog", dialog is not None)
    if dialog is None:
        return status
    mark("post_editor", await locate_optional(dialog, sel, "post_editor", timeout_s=timeout_s) is not None)
    mark("post_button", await locate_optional(dialog, sel, "post_button") is not None)
    await page.keyboard.press("Escape")
    return status
