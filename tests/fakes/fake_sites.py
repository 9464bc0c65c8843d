"""Fake WhatsApp Web and LinkedIn (and ordinary pages) on loopback, for real Chromium: WhatsApp Web under
/wa/, LinkedIn under /li/, pages under /pages/ (tests/browser_pages/). ``loopback_resolver`` is the name
resolver tests hand the browser so that not even a DNS query leaves the machine; ``start_canary`` is a
server on 127.0.0.2 (and 127.0.0.1, same port) that proves a refused URL was never fetched."""
from __future__ import annotations

import ipaddress
import itertools
import json
import uuid
from pathlib import Path

from aiohttp import web

from tests.fakes.threaded import Hold, ThreadedServer

PAGES = Path(__file__).resolve().parent.parent / "browser_pages"


async def loopback_resolver(host: str, port: int) -> list[str]:
    """The system resolver's answers for loopback names; nothing else is looked up."""
    if host == "localhost":
        return ["127.0.0.1"]
    try:
        if ipaddress.ip_address(host).is_loopback:
            return [host]
    except ValueError:
        pass
    raise OSError(f"the test resolver knows loopback names only, not {host}")


# --- the fake sites -------------------------------------------------------------------------------


def wa_message(chat_id: str, out: bool, sender: str, time: str, date: str, text: str) -> dict:
    return {"id": f"{'true' if out else 'false'}_{chat_id}_{uuid.uuid4().hex[:20].upper()}", "out": out,
            "sender": sender, "time": time, "date": date, "text": text}


def _wa_chats(lang: str) -> list[dict]:
    if lang == "en":
        d = "3/4/2026"
        spec = [
            ("120363001@g.us", "Family Group", dict(pinned=True), 0,
             [(False, "Mum", "9:02 AM", "Dinner on Sunday?"), (True, "Owner", "9:05 AM", "Yes, see you then")]),
            ("4915550001@c.us", "Jane Doe", {}, 2,
             [(False, "Jane Doe", "10:01 AM", "Hi!"), (True, "Owner", "10:02 AM", "Hello Jane"),
              (False, "Jane Doe", "10:20 AM", "Can you send the invoice?"),
              (False, "Jane Doe", "10:21 AM", "It's urgent, thanks")]),
            ("120363002@g.us", "Accounting Team", dict(muted=True), 3,
             [(False, "Bob", "11:00 AM", "Payment run today"), (False, "Carol", "11:05 AM", "Invoice 42 is paid"),
              (False, "Bob", "11:06 AM", "Thanks Carol")]),
            ("4915550004@c.us", "Lucky Numbers", dict(preview="5"), 0,
             [(False, "Lucky Numbers", "8:00 AM", "5")]),
            ("4915550005@c.us", "Old Friend", dict(muted=True), 0,
             [(False, "Old Friend", "Yesterday", "Long time no see")]),
            ("4915550006@c.us", "Supplier Ltd", {}, 1,
             [(False, "Supplier Ltd", "12:30 PM", "Your order has shipped")]),
            ("4915550007@c.us", "Zoe Quiet", {}, 0,
             [(False, "Zoe Quiet", "Monday", "Talk soon")]),
        ]
    else:
        d = "4.3.2026"
        spec = [
            ("120363101@g.us", "Familie", dict(pinned=True), 0,
             [(False, "Mama", "09:02", "Abendessen am Sonntag?"), (True, "Ich", "09:05", "Ja, bis dann")]),
            ("4930555001@c.us", "Jörg Müller", {}, 1,
             [(True, "Ich", "10:02", "Hallo Jörg"), (False, "Jörg Müller", "10:20", "Bitte die Rechnung schicken")]),
            ("120363102@g.us", "Buchhaltung", dict(muted=True), 2,
             [(False, "Bernd", "11:00", "Zahlungslauf heute"), (False, "Clara", "11:05", "Rechnung 42 ist bezahlt")]),
            ("4930555004@c.us", "Glückszahlen", dict(preview="7"), 0,
             [(False, "Glückszahlen", "08:00", "7")]),
            ("4930555005@c.us", "Alte Freundin", dict(pinned=True, muted=True), 0,
             [(False, "Alte Freundin", "Gestern", "Lange nicht gesehen")]),
        ]
    chats = []
    for chat_id, title, flags, unread, messages in spec:
        chats.append({"id": chat_id, "title": title, "pinned": flags.get("pinned", False),
                      "muted": flags.get("muted", False), "unread": unread, "preview": flags.get("preview"),
                      "messages": [wa_message(chat_id, *m[:3], d, m[3]) for m in messages]})
    return chats


class FakeSites(ThreadedServer):
    """WhatsApp Web under /wa/, LinkedIn under /li/, ordinary pages under /pages/. ``hold(match, after=)``
    parks a send ("whatsapp/send") or a post ("linkedin/post") before or after it takes effect."""

    def hold(self, match: str, *, after: bool = False) -> Hold:
        return self._add_hold(Hold(match, after=after))

    name = "fake-sites"

    def __init__(self) -> None:
        super().__init__()
        self.canary = ""
        self.reset()

    def reset(self) -> None:
        self.whatsapp_variant = "en"     # en | de | logged_out | down
        self.linkedin_variant = "ok"     # ok | checkpoint
        self.wa = {"en": _wa_chats("en"), "de": _wa_chats("de")}
        self.wa_sent: list[tuple[str, str]] = []
        self.li_posts = [
            {"urn": "urn:li:activity:7100000000000000001", "author": "Someone Else", "own": False,
             "text": "Ten lessons from a year of bookkeeping"},
            {"urn": "urn:li:activity:7100000000000000002", "author": "Owner", "own": True,
             "text": "We are hiring a part-time accountant."},
        ]
        self.li_posted: list[str] = []
        self.li_sessions: list[str | None] = []   # the li_at cookie each feed or activity load carried
        self.hits: list[str] = []
        self._urns = itertools.count(7200000000000000001)

    def _page(self, name: str, state: dict | None = None) -> web.Response:
        html = (PAGES / name).read_text("utf-8")
        if state is not None:
            html = html.replace("/*STATE*/null", json.dumps(state).replace("</", "<\\/"))
        html = html.replace("__CANARY_BY_NAME__", self.canary.replace("127.0.0.2", "localhost"))
        html = html.replace("__CANARY__", self.canary)
        return web.Response(text=html, content_type="text/html")

    def build_app(self) -> web.Application:
        app = web.Application()

        @web.middleware
        async def count(request, handler):
            self.hits.append(request.path)
            return await handler(request)

        app.middlewares.append(count)

        async def whatsapp_home(request):
            variant = self.whatsapp_variant
            if variant == "logged_out":
                return self._page("whatsapp_logged_out.html")
            if variant == "down":
                return web.Response(status=503, text="maintenance")
            return self._page("whatsapp.html", {"lang": variant, "chats": self.wa[variant]})

        def chat_of(body: dict) -> dict:
            return next(c for c in self.wa[self.whatsapp_variant] if c["id"] == body["chat"])

        async def whatsapp_send(request):
            body = await request.json()
            hold = self._take_hold(lambda h: h.match == "whatsapp/send" and not h.after)
            if hold is not None:
                await hold.wait(request, body)
            chat = chat_of(body)
            message = wa_message(chat["id"], True, "Owner", "1:00 PM", "3/4/2026", body["text"])
            chat["messages"].append(message)
            self.wa_sent.append((chat["title"], body["text"]))
            hold = self._take_hold(lambda h: h.match == "whatsapp/send" and h.after)
            if hold is not None:  # sent; only the answer waits
                await hold.wait(request, body)
            return web.json_response(message)

        async def whatsapp_linked(request):  # polled by the linking screen, as the phone scans its code
            return web.json_response({"linked": self.whatsapp_variant != "logged_out"})

        async def whatsapp_read(request):
            chat_of(await request.json())["unread"] = 0
            return web.json_response({})

        def session(request, response: web.Response) -> web.Response:
            self.li_sessions.append(request.cookies.get("li_at"))
            if "li_at" not in request.cookies:  # a persistent login cookie, as LinkedIn's
                response.set_cookie("li_at", f"session-{uuid.uuid4().hex[:8]}", max_age=86400, path="/li")
            return response

        async def linkedin_feed(request):
            if self.linkedin_variant == "checkpoint":
                raise web.HTTPFound("/li/checkpoint/challenge/AQHtestchallenge")
            return session(request, self._page("linkedin.html", {"view": "feed", "posts": self.li_posts}))

        async def linkedin_activity(request):
            return session(request, self._page("linkedin.html", {"view": "activity", "posts": self.li_posts}))

        async def linkedin_post(request):
            body = await request.json()
            hold = self._take_hold(lambda h: h.match == "linkedin/post" and not h.after)
            if hold is not None:
                await hold.wait(request, body)
            item = {"urn": f"urn:li:activity:{next(self._urns)}", "author": "Owner", "own": True, "text": body["text"]}
            self.li_posts.insert(0, item)
            self.li_posted.append(body["text"])
            hold = self._take_hold(lambda h: h.match == "linkedin/post" and h.after)
            if hold is not None:  # posted; only the answer waits
                await hold.wait(request, body)
            return web.json_response(item)

        async def page(request):
            name = request.match_info["name"]
            if "/" in name or not (PAGES / name).is_file():
                raise web.HTTPNotFound(text="no such page")
            return self._page(name)

        async def checkpoint(request):
            return self._page("linkedin_checkpoint.html")

        async def redirect_out(request):
            raise web.HTTPFound(f"{self.canary}/secret")

        app.router.add_get("/wa/", whatsapp_home)
        app.router.add_post("/wa/api/send", whatsapp_send)
        app.router.add_post("/wa/api/read", whatsapp_read)
        app.router.add_get("/wa/api/linked", whatsapp_linked)
        app.router.add_get("/li/feed/", linkedin_feed)
        app.router.add_get("/li/in/me/recent-activity/all/", linkedin_activity)
        app.router.add_get("/li/checkpoint/challenge/{tail}", checkpoint)
        app.router.add_post("/li/api/post", linkedin_post)
        app.router.add_get("/pages/{name}", page)
        app.router.add_get("/redirect-out", redirect_out)
        return app


async def start_canary(hits: list[str]) -> tuple[web.AppRunner, str]:
    async def record(request):
        hits.append(f"{request.host}{request.path}")
        return web.Response(text="canary")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.2", 0).start()
    port = runner.addresses[0][1]
    await web.TCPSite(runner, "127.0.0.1", port).start()  # what "localhost" would reach
    return runner, f"http://127.0.0.2:{port}"
