"""WhatsApp Web: unread chats, sending a reply exactly once, finding a reply already sent.

What counts as unread: a chat whose row shows an unread badge holding a number > 0. Pinned and muted are
icons (data-icon), never numbers, so neither makes a chat unread: a pinned chat without a badge is not
unread. A muted chat with a badge IS unread: muting only silences notifications, and its messages may
still need the owner (the handbook, not the mute button, decides what becomes a task). A chat marked
unread by hand shows a badge without a number and is not counted (it has no new messages).

Reading a chat opens it, which WhatsApp reports as read on the owner's phone too: that is how WhatsApp Web
works. The watcher de-duplicates by message id (``data-id``), so a chat read twice gives no second task.
"""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Any

from core.errors import NotFoundError, OutcomeUnknownError, TransientError, ValidationError
from mcp_servers.browser.dom import same_text, script
from mcp_servers.browser.engine import BrowserEngine
from mcp_servers.browser.selectors import SiteSelectors, locate_optional
from mcp_servers.browser.session import SitePage

SITE = "whatsapp"
MAX_CHATS = 20          # unread chats read per call
MAX_MESSAGES = 50       # messages read per chat
MAX_ROWS = 200          # chat rows looked at (WhatsApp renders only the visible ones anyway)
MAX_TEXT_CHARS = 65_536  # WhatsApp's own limit is about 65k characters
_META = re.compile(r"^\s*\[(?P<time>[^\]]*)\]\s*(?P<sender>.*?):\s*$", re.S)

_CHATS_JS = script("""
  const [s, max] = arg;
  const list = first(document, s.chat_list);
  if (!list) return {missing: "chat_list"};
  const rows = pick(list, s.chat_row);
  return {listCss: pick(document, s.chat_list).css, rowCss: rows.css, rows: rows.nodes.slice(0, max).map((row) => {
    const title = first(row, s.chat_title);
    return {
      title: title ? (title.getAttribute("title") || textOf(title) || "").trim() : "",
      badges: every(row, s.unread_badge).map((el) => textOf(el) || ""),
      pinned: within(row, s.pinned_marker),
      muted: within(row, s.muted_marker),
    };
  })};
""")

_MESSAGES_JS = script("""
  const [s, max] = arg;
  const conv = first(document, s.conversation);
  if (!conv) return {missing: "conversation"};
  const head = first(conv, s.conversation_title);
  const rows = pick(conv, s.message_row).nodes.slice(-max);
  return {title: head ? (head.getAttribute("title") || textOf(head) || "").trim() : null, rows: rows.map((row) => {
    const meta = first(row, s.message_meta) || (within(row, s.message_meta) ? row : null);
    return {
      id: attrOf(row, s.attr_message_id),
      incoming: within(row, s.message_incoming),
      outgoing: within(row, s.message_outgoing),
      meta: meta ? attrOf(meta, s.attr_message_meta) : null,
      text: textOf(first(row, s.message_text)),
      sender: textOf(first(row, s.message_sender)),
      time: textOf(first(row, s.message_time)),
    };
  })};
""")

_TEXT_JS = script("return textOf(arg);")


def parse_count(text: str | None) -> int:
    """The number a badge shows (any script's digits, "99+" as 99); 0 when it is not a number."""
    cleaned = (text or "").strip().rstrip("+").strip()
    try:
        return max(0, int(cleaned))
    except ValueError:
        return 0


async def unread(engine: BrowserEngine, *, fresh: bool = False, max_chats: int = MAX_CHATS,
                 max_messages: int = MAX_MESSAGES) -> dict:
    """{state: "ok", chats: [{chat, unread, pinned, muted, messages: [{id, from, text, time}]}]}.
    Raises NotLoggedIn, Checkpoint, SelectorMissing or SiteUnreachable (the site's state says the same)."""
    async with engine.site(SITE) as s:
        await s.open(fresh=fresh)
        rows = await _chat_rows(s)
        wanted = [(row, count) for row in rows if (count := _badge(row)) > 0][:max_chats]
        chats = []
        for row, count in wanted:
            if not await _open_row(s, row["title"]):
                continue  # gone from the visible list meanwhile; the next poll sees it again
            needed = min(count, max_messages)
            incoming = [m for m in await _settled_messages(s, needed) if m["incoming"]][-needed:]
            chats.append({"chat": row["title"], "unread": count, "pinned": row["pinned"], "muted": row["muted"],
                          "messages": [_public(m, row["title"]) for m in incoming]})
        return {"state": "ok", "chats": chats}


async def send(engine: BrowserEngine, chat: str, text: str, *, marker: str | None = None) -> dict:
    """Type ``text`` into ``chat`` and send it once: {chat, sent_at, id}.

    ``marker`` is the caller's idempotency key (its ledger key): a marker already sent returns the first
    result without typing again; a marker whose outcome was unknown is first looked for in the chat
    (find_sent) and typed only if absent. OutcomeUnknownError when the send was clicked but the message
    never showed up: never retry that blindly, look with find_sent first."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text must not be empty", field="text")
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError(f"text is over {MAX_TEXT_CHARS} characters", field="text")
    if not isinstance(chat, str) or not chat.strip():
        raise ValidationError("chat must name a chat", field="chat")
    prior = engine.recall(SITE, marker)
    if prior and prior[0] == "done":
        return prior[1]
    async with engine.site(SITE) as s:
        await s.open()
        await _open_chat(s, chat)
        if prior and prior[0] == "unknown":
            found = _sent_among(await _messages(s), text)
            if found is not None:
                result = {"chat": chat, "sent_at": _now(), "id": found["id"]}
                engine.remember(SITE, marker, "done", result)
                return result
        result = await _type_and_send(s, chat, text, marker)
        engine.remember(SITE, marker, "done", result)
        return result


async def find_sent(engine: BrowserEngine, chat: str, text: str, *, since_id: str | None = None) -> dict | None:
    """The own message with exactly ``text`` among the chat's latest own messages, or None: those after
    ``since_id`` (the message being answered) when given and shown, else those after the last incoming
    message. {id, text, time}."""
    async with engine.site(SITE) as s:
        await s.open()
        await _open_chat(s, chat)
        found = _sent_among(await _messages(s), text, since_id=since_id)
        return None if found is None else {"id": found["id"], "text": found["text"], "time": _time(found)}


# --- the steps ------------------------------------------------------------------------------------


def _js_selectors(sel: SiteSelectors) -> dict:
    data: dict[str, Any] = dict(sel.elements)
    data.update({f"attr_{name}": list(values) for name, values in sel.attributes.items()})
    return data


def _badge(row: dict) -> int:
    for text in row["badges"]:
        if (count := parse_count(text)) > 0:
            return count
    return 0


async def _chat_rows(s: SitePage) -> list[dict]:
    found = await s.evaluate(_CHATS_JS, [_js_selectors(s.sel), MAX_ROWS])
    if "missing" in found:
        raise s.sel.missing(found["missing"])
    rows = found["rows"]
    if rows and not any(row["title"] for row in rows):
        raise s.sel.missing("chat_title")
    return rows


async def _open_row(s: SitePage, title: str) -> bool:
    """Click the row titled exactly ``title`` as the list is now (it reorders when messages arrive);
    False when no such row is shown."""
    found = await s.evaluate(_CHATS_JS, [_js_selectors(s.sel), MAX_ROWS])
    if "missing" in found:
        raise s.sel.missing(found["missing"])
    index = next((i for i, row in enumerate(found["rows"]) if row["title"] == title), None)
    if index is None:  # no such row, or no rows at all (an empty list, a search without results)
        return False
    await s.page.locator(found["listCss"]).first.locator(found["rowCss"]).nth(index).click()
    await _await_conversation(s, title)
    return True


async def _open_chat(s: SitePage, chat: str) -> None:
    """Open the chat titled exactly ``chat``: from the list, else through the search box."""
    if await _open_row(s, chat):
        return
    search = await s.locate_optional("search_box")
    if search is None:
        raise NotFoundError(f"whatsapp: no chat named {chat!r} in the chat list")
    await _replace_text(s, search, chat)
    try:
        deadline = asyncio.get_running_loop().time() + s.timeout_s
        while True:
            if await _open_row(s, chat):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise NotFoundError(f"whatsapp: no chat named {chat!r}")
            await asyncio.sleep(0.2)
    finally:
        await _replace_text(s, search, "")  # a filtered list would hide the next unread chats


async def _await_conversation(s: SitePage, title: str) -> None:
    deadline = asyncio.get_running_loop().time() + s.timeout_s
    while True:
        found = await s.evaluate(_MESSAGES_JS, [_js_selectors(s.sel), 1])
        if "missing" not in found and found["title"] == title:
            return
        if asyncio.get_running_loop().time() > deadline:
            if "missing" in found:
                raise s.sel.missing(found["missing"])
            if found["title"] is None:
                raise s.sel.missing("conversation_title")
            raise TransientError(f"whatsapp: opened {found['title']!r} instead of {title!r}")
        await asyncio.sleep(0.1)


async def _messages(s: SitePage, limit: int = MAX_MESSAGES * 2) -> list[dict]:
    found = await s.evaluate(_MESSAGES_JS, [_js_selectors(s.sel), limit])
    if "missing" in found:
        raise s.sel.missing(found["missing"])
    rows = found["rows"]
    if rows and not any(r["incoming"] or r["outgoing"] for r in rows):
        raise s.sel.missing("message_incoming")
    if rows and not any(r["id"] for r in rows):
        raise s.sel.missing("message_row")
    return [r for r in rows if r["id"]]


async def _settled_messages(s: SitePage, needed: int) -> list[dict]:
    """The open chat's messages once its rows have rendered: opening a chat marks it read, so reading
    it before its messages are there would lose them."""
    await s.locate("message_row", await s.locate("conversation"))
    deadline = asyncio.get_running_loop().time() + 1.0
    while True:
        messages = await _messages(s)
        if sum(m["incoming"] for m in messages) >= needed or asyncio.get_running_loop().time() > deadline:
            return messages  # all of them, or all WhatsApp shows (it loads older history on scrolling)
        await asyncio.sleep(0.1)


def _public(row: dict, chat: str) -> dict:
    sender = row["sender"]
    meta = _META.match(row["meta"] or "")
    if meta:
        sender = meta.group("sender") or sender
    return {"id": row["id"], "from": (sender or chat).strip(), "text": row["text"] or "", "time": _time(row)}


def _time(row: dict) -> str | None:
    meta = _META.match(row["meta"] or "")
    return meta.group("time").strip() if meta else (row["time"] or None)


def _sent_among(rows: list[dict], text: str, *, since_id: str | None = None) -> dict | None:
    ids = [r["id"] for r in rows]
    if since_id is not None and since_id in ids:
        window = rows[ids.index(since_id) + 1:]
    else:
        last_in = max((i for i, r in enumerate(rows) if r["incoming"]), default=-1)
        window = rows[last_in + 1:]
    for row in reversed(window):
        if row["outgoing"] and same_text(row["text"], text):
            return row
    return None


async def _replace_text(s: SitePage, box: Any, text: str) -> None:
    await box.click()
    await s.page.keyboard.press("ControlOrMeta+A")
    await s.page.keyboard.press("Backspace")
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if number:
            await s.page.keyboard.press("Shift+Enter")  # Enter alone would send
        if line:
            await s.page.keyboard.insert_text(line)


async def _type_and_send(s: SitePage, chat: str, text: str, marker: str | None) -> dict:
    conversation = await s.locate("conversation")
    composer = await s.locate("composer", conversation)
    before = sum(1 for r in await _messages(s) if r["outgoing"] and same_text(r["text"], text))
    await _replace_text(s, composer, text)
    typed = await composer.evaluate(_TEXT_JS)
    if not same_text(typed, text):
        await _replace_text(s, composer, "")
        raise TransientError("whatsapp: the composer did not take the text as typed; nothing was sent")
    button = await locate_optional(conversation, s.sel, "send_button", timeout_s=min(3.0, s.timeout_s))
    if button is None:
        await _replace_text(s, composer, "")
        raise s.sel.missing("send_button")
    s.engine.remember(SITE, marker, "unknown")
    try:
        await button.click()
        sent = await _await_sent(s, text, before)
    except Exception as err:
        raise OutcomeUnknownError(f"whatsapp: the message to {chat!r} was sent off but did not show up in "
                                  f"the chat ({type(err).__name__}); look for it before sending again") from err
    return {"chat": chat, "sent_at": _now(), "id": sent["id"]}


async def _await_sent(s: SitePage, text: str, before: int) -> dict:
    deadline = asyncio.get_running_loop().time() + s.timeout_s
    while True:
        rows = await _messages(s)
        mine = [r for r in rows if r["outgoing"] and same_text(r["text"], text)]
        if len(mine) > before:
            return mine[-1]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the sent message did not appear")
        await asyncio.sleep(0.1)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- the self-test --------------------------------------------------------------------------------


async def self_test(page: Any, sel: SiteSelectors, *, timeout_s: float) -> dict[str, str]:
    status = {name: "not_seen" for name in sel.elements}

    def mark(name: str, ok: bool, *, optional: bool = False) -> None:
        status[name] = "ok" if ok else ("not_seen" if optional else "missing")

    data = _js_selectors(sel)
    found = await page.evaluate(_CHATS_JS, [data, MAX_ROWS])
    mark("chat_list", "missing" not in found)
    rows = found.get("rows", [])
    mark("chat_row", bool(rows))
    if rows:
        mark("chat_title", any(r["title"] for r in rows))
        mark("unread_badge", any(_badge(r) for r in rows), optional=True)
        mark("pinned_marker", any(r["pinned"] for r in rows), optional=True)
        mark("muted_marker", any(r["muted"] for r in rows), optional=True)
    mark("search_box", await locate_optional(page, sel, "search_box") is not None)
    # Open a chat without unread messages, so the walk marks nothing as read.
    quiet = next((i for i, r in enumerate(rows) if not _badge(r) and r["title"]), None)
    if quiet is None:
        return status
    await page.locator(found["listCss"]).first.locator(found["rowCss"]).nth(quiet).click()
    conversation = await locate_optional(page, sel, "conversation", timeout_s=timeout_s)
    mark("conversation", conversation is not None)
    if conversation is None:
        return status
    mark("conversation_title", await locate_optional(conversation, sel, "conversation_title",
                                                     timeout_s=timeout_s) is not None)
    await locate_optional(conversation, sel, "message_row", timeout_s=timeout_s)
    convo = await page.evaluate(_MESSAGES_JS, [data, 30])
    messages = convo.get("rows", [])
    mark("message_row", any(m["id"] for m in messages))
    if messages:
        mark("message_incoming", any(m["incoming"] for m in messages), optional=True)
        mark("message_outgoing", any(m["outgoing"] for m in messages), optional=True)
        mark("message_text", any(m["text"] for m in messages))
        mark("message_meta", any(m["meta"] for m in messages))
        mark("message_sender", any(m["sender"] for m in messages), optional=True)
        mark("message_time", any(m["time"] for m in messages), optional=True)
    mark("composer", await locate_optional(conversation, sel, "composer") is not None)
    mark("send_button", await locate_optional(conversation, sel, "send_button") is not None, optional=True)
    return status
