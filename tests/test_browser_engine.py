"""The browser engine in real Chromium (Debian's), against pages this module serves on loopback.

One Chromium set per module (web, WhatsApp and LinkedIn contexts) on one event loop in a thread. The
engine resolves names with a resolver that knows loopback names only, so not even a DNS query leaves
the machine; a canary server on 127.0.0.2 (and 127.0.0.1, same port, for "localhost") proves refused
URLs are never fetched.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from core.errors import ConfigError, NotConfiguredError, NotFoundError, OutcomeUnknownError
from mcp_servers.browser import linkedin, whatsapp
from mcp_servers.browser.config import DEFAULT_SELECTORS, BrowserConfig
from mcp_servers.browser.dom import same_text
from mcp_servers.browser.engine import BrowserEngine
from mcp_servers.browser.errors import Checkpoint, NotLoggedIn, SelectorMissing, SiteUnreachable, StepsRefused, URLRefused
from mcp_servers.browser.selectors import Selectors
from mcp_servers.browser.url_policy import UrlPolicy, address_kind
from mcp_servers.browser.web import automate, browse, read_only, scrape
from tests.conftest import wait_until
from tests.fakes.fake_sites import FakeSites, loopback_resolver, start_canary
from tests.fakes.threaded import Hold

CHROMIUM = Path("/usr/bin/chromium")
PAGES = Path(__file__).resolve().parent / "browser_pages"


class Loop:
    """An event loop in a thread: the engine lives on it for the whole module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="browser-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 45):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Env:
    loop: Loop
    engine: BrowserEngine
    sites: FakeSites
    canary_hits: list[str]
    selectors_file: Path

    def run(self, coro, timeout: float = 45):
        return self.loop.run(coro, timeout)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    selectors_file = tmp / "selectors.yaml"  # the test copy: tests break and restore it
    shutil.copyfile(DEFAULT_SELECTORS, selectors_file)
    sites = FakeSites().start()
    loop = Loop()
    hits: list[str] = []
    runner, sites.canary = loop.run(start_canary(hits))
    config = BrowserConfig(profile_dir=tmp / "profiles", executable=CHROMIUM, allowed_hosts=("127.0.0.1",),
                           selectors_file=selectors_file, whatsapp_url=f"{sites.url}/wa",
                           linkedin_url=f"{sites.url}/li", nav_timeout_s=10, element_timeout_s=3)
    engine = BrowserEngine(config, resolver=loopback_resolver)
    loop.run(engine.start())
    try:
        yield Env(loop, engine, sites, hits, selectors_file)
    finally:
        loop.run(engine.stop())
        loop.run(runner.cleanup())
        loop.close()
        sites.stop()


@pytest.fixture
def e(env):
    env.sites.reset()
    env.canary_hits.clear()
    shutil.copyfile(DEFAULT_SELECTORS, env.selectors_file)
    return env


async def reload(engine: BrowserEngine, site: str) -> None:
    async with engine.site(site) as s:
        await s.open(fresh=True)


# --- configuration, policy and selectors (no browser) -----------------------------------------------


def test_config_from_env_reads_every_variable_and_names_a_bad_one(tmp_path):
    config = BrowserConfig.from_env({}, state_dir=tmp_path)
    assert config.profile_dir == tmp_path / "browser" and config.headless is True
    assert config.whatsapp_url == "https://web.whatsapp.com" and config.linkedin_url == "https://www.linkedin.com"
    assert config.selectors_file == DEFAULT_SELECTORS and config.allowed_hosts == ()
    config = BrowserConfig.from_env({"BROWSER_ALLOWED_HOSTS": "127.0.0.1, *.Intranet.test ,[::1]",
                                     "BROWSER_HEADLESS": "false", "WHATSAPP_URL": "http://127.0.0.1:9/wa/",
                                     "BROWSER_PROFILE_DIR": str(tmp_path / "p")}, state_dir=tmp_path)
    assert config.allowed_hosts == ("127.0.0.1", "*.intranet.test", "::1")
    assert config.headless is False and config.whatsapp_url == "http://127.0.0.1:9/wa"
    for variable, value in [("BROWSER_ALLOWED_HOSTS", "https://intranet.test"), ("BROWSER_ALLOWED_HOSTS", "*"),
                            ("BROWSER_HEADLESS", "sometimes"), ("WHATSAPP_URL", "http://web.whatsapp.test"),
                            ("LINKEDIN_URL", "ftp://linkedin.test"), ("BROWSER_SELECTORS_FILE", str(tmp_path / "no.yaml")),
                            ("BROWSER_EXECUTABLE", str(tmp_path / "no-chromium")),
                            ("BROWSER_TIMEOUT_SECONDS", "soon")]:
        with pytest.raises(ConfigError, match=variable):
            BrowserConfig.from_env({variable: value}, state_dir=tmp_path)


def test_a_missing_chromium_is_not_configured(tmp_path):
    engine = BrowserEngine(BrowserConfig(profile_dir=tmp_path, executable=tmp_path / "chromium"))
    with pytest.raises(NotConfiguredError, match="BROWSER_EXECUTABLE"):
        asyncio.run(engine.start())


def test_url_policy_rules():
    policy = UrlPolicy(["127.0.0.1", "*.intranet.test"], resolver=loopback_resolver)

    async def verdicts():
        out = {}
        for url in ["http://127.0.0.1:8000/x", "about:blank", "https://wiki.intranet.test/", "file:///etc/passwd",
                    "chrome://settings", "data:text/html,<b>hi</b>", "javascript:alert(1)", "about:config",
                    "blob:http://127.0.0.1/1", "ftp://127.0.0.1/", "http://127.0.0.2/", "http://localhost:8000/",
                    "http://[::1]/", "http://[::ffff:127.0.0.2]/", "http://0.0.0.0/", "http://unknown.test/",
                    "http://intranet.test/"]:
            try:
                await policy.check(url)
                out[url] = "ok"
            except URLRefused as refused:
                out[url] = refused.reason
        return out

    out = asyncio.run(verdicts())
    assert [u for u, v in out.items() if v == "ok"] == ["http://127.0.0.1:8000/x", "about:blank",
                                                         "https://wiki.intranet.test/"]
    assert "scheme file:" in out["file:///etc/passwd"] and "scheme chrome:" in out["chrome://settings"]
    assert "only about:blank" in out["about:config"]
    assert "127.0.0.2 is a loopback address" in out["http://127.0.0.2/"]
    assert "localhost resolves to 127.0.0.1, a loopback address" in out["http://localhost:8000/"]
    assert "loopback" in out["http://[::ffff:127.0.0.2]/"] and "unspecified" in out["http://0.0.0.0/"]
    assert "does not resolve" in out["http://unknown.test/"]
    assert "does not resolve" in out["http://intranet.test/"]  # *.intranet.test covers subdomains only
    assert address_kind("::1") == "loopback" and address_kind("::ffff:127.0.0.1") == "loopback"



def test_only_allowed_hosts_refuses_every_other_host_without_looking_it_up():
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    policy = UrlPolicy(["127.0.0.1", "*.intranet.test"], resolver=resolver, only_allowed=True)
    asyncio.run(policy.check("http://127.0.0.1:9/a"))
    asyncio.run(policy.check("https://wiki.intranet.test/"))
    for url in ("https://update.example/", "http://127.0.0.2/", "http://localhost/"):
        with pytest.raises(URLRefused, match="BROWSER_ONLY_ALLOWED_HOSTS"):
            asyncio.run(policy.check(url))
    assert asked == []  # nothing was looked up: the allowed ones are used as named

def test_selectors_file_is_versioned_and_checked_on_load(tmp_path):
    shipped = Selectors.load()
    assert shipped.version == 1 and shipped.site("whatsapp").ready == "chat_list"
    assert shipped.site("linkedin").css("post_dialog")[0].startswith("#artdeco-modal-outlet")
    data = yaml.safe_load(DEFAULT_SELECTORS.read_text("utf-8"))
    broken = copy.deepcopy(data)
    del broken["sites"]["whatsapp"]["elements"]["composer"]
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(broken), "utf-8")
    with pytest.raises(ConfigError, match="BROWSER_SELECTORS_FILE.*sites.whatsapp lacks composer"):
        Selectors.load(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**data, "version": 2}), "utf-8")
    with pytest.raises(ConfigError, match="version: 1"):
        Selectors.load(tmp_path / "b.yaml")
    # The engine reads the file again when it changes; a broken edit keeps the last good version.
    live = tmp_path / "live.yaml"
    shutil.copyfile(DEFAULT_SELECTORS, live)
    engine = BrowserEngine(BrowserConfig(profile_dir=tmp_path, selectors_file=live))
    good = engine.selectors
    live.write_text("version: 1\nsites: [", "utf-8")
    assert engine.selectors is good
    edited = copy.deepcopy(data)
    edited["sites"]["whatsapp"]["elements"]["composer"] = ["footer div[contenteditable]"]
    live.write_text(yaml.safe_dump(edited), "utf-8")
    assert engine.selectors.site("whatsapp").css("composer") == ("footer div[contenteditable]",)


def test_badge_counts_and_text_comparison():
    assert [whatsapp.parse_count(t) for t in ["3", " 12 ", "99+", "٣", "", "Pinned", "1,2"]] == [3, 12, 99, 3, 0, 0, 0]
    assert same_text("*Invoice* attached\nThanks", "Invoice attached Thanks")
    assert not same_text("Invoice attached", "Invoice attached!")


def test_read_only_tells_reading_steps_from_writing_ones():
    assert read_only([{"action": "goto", "url": "http://127.0.0.1/"}, {"action": "extract", "selector": "h1"},
                      {"action": "wait_for", "selector": "p"}, {"action": "screenshot"}])
    assert not read_only([{"action": "goto", "url": "http://127.0.0.1/"}, {"action": "click", "selector": "a"}])
    assert not read_only([{"action": "fill", "selector": "input", "value": "x"}])


# --- browse, scrape, automate --------------------------------------------------------------------


def test_browse_gives_final_url_status_title_readable_text_and_screenshot(e):
    url = f"{e.sites.url}/pages/article.html"
    page = e.run(browse(e.engine, url, screenshot=True))
    assert page["url"] == url and page["status"] == 200 and page["title"] == "Quarterly report"
    assert "Revenue grew by twelve percent in the third quarter." in page["text"]
    assert "Written by a script after load." in page["text"]
    assert "hidden" not in page["text"] and "console.log" not in page["text"] and page["truncated"] is False
    assert page["screenshot"][:8] == b"\x89PNG\r\n\x1a\n"
    missing = e.run(browse(e.engine, f"{e.sites.url}/pages/nothing.html"))
    assert missing["status"] == 404 and missing["screenshot"] is None


def test_scrape_returns_bounded_texts_per_named_selector(e):
    result = e.run(scrape(e.engine, f"{e.sites.url}/pages/list.html",
                          {"title": "h1", "prices": "#items .price", "note": "p.note", "none": ".absent"}))
    fields = result["fields"]
    assert fields["title"] == ["Price list"] and fields["none"] == []
    assert len(fields["prices"]) == 50 and fields["prices"][:2] == ["1.00 EUR", "2.00 EUR"]
    assert len(fields["note"][0]) == 2000


def test_a_five_step_automation_runs_in_order(e):
    steps = [{"action": "goto", "url": f"{e.sites.url}/pages/form.html"},
             {"action": "fill", "selector": "#name", "value": "Ada"},
             {"action": "click", "selector": "#go"},
             {"action": "wait_for", "selector": "#out"},
             {"action": "extract", "selector": "#out"}]
    results = e.run(automate(e.engine, steps, timeout_s=20))
    assert [r["ok"] for r in results] == [True] * 5
    assert results[0]["value"]["status"] == 200 and results[4]["value"] == ["Hello, Ada!"]
    failing = e.run(automate(e.engine, [steps[0], {"action": "click", "selector": "#nope"}, steps[4]], timeout_s=3))
    assert [r["ok"] for r in failing] == [True, False] and "#nope" in failing[1]["error"]


def test_a_step_list_over_its_limits_is_refused_before_anything_runs(e):
    goto = {"action": "goto", "url": f"{e.sites.url}/pages/form.html"}
    cases = {
        "26 steps is over the limit of 25": [goto] + [{"action": "extract", "selector": "h1"}] * 25,
        "4 screenshots is over the limit of 3": [goto] + [{"action": "screenshot"}] * 4,
        "action must be one of": [goto, {"action": "download", "selector": "a"}],
        "the first step must be a goto": [{"action": "click", "selector": "a"}],
        "needs value": [goto, {"action": "fill", "selector": "#name"}],
        "does not take url": [goto, {"action": "click", "selector": "a", "url": "http://127.0.0.1/"}],
    }
    for message, steps in cases.items():
        with pytest.raises(StepsRefused, match=message):
            e.run(automate(e.engine, steps))
    with pytest.raises(StepsRefused, match="timeout_s"):
        e.run(automate(e.engine, [goto], timeout_s=3600))
    with pytest.raises(URLRefused):  # a refused goto anywhere in the list: refused before the first step
        e.run(automate(e.engine, [goto, {"action": "goto", "url": "file:///etc/passwd"}]))
    assert e.sites.hits == []


def test_refused_urls_are_never_fetched(e):
    canary_by_name = e.sites.canary.replace("127.0.0.2", "localhost")
    for url in ["file:///etc/passwd", "chrome://version", "data:text/html,<h1>x</h1>", "javascript:alert(1)",
                "about:config", f"{e.sites.canary}/direct", f"{canary_by_name}/by-name"]:
        with pytest.raises(URLRefused):
            e.run(browse(e.engine, url))
    with pytest.raises(URLRefused, match="127.0.0.2"):  # a redirect from an allowed page
        e.run(browse(e.engine, f"{e.sites.url}/redirect-out"))
    results = e.run(automate(e.engine, [{"action": "goto", "url": f"{e.sites.url}/pages/form.html"},
                                        {"action": "click", "selector": "#away"},
                                        {"action": "extract", "selector": "h1"}], timeout_s=20))
    assert results[0]["ok"] and not results[1]["ok"] and "refused" in results[1]["error"]
    assert e.canary_hits == []


def test_sub_requests_of_an_allowed_page_to_refused_urls_are_blocked(e):
    page = e.run(browse(e.engine, f"{e.sites.url}/pages/leak.html"))
    assert page["status"] == 200 and "Leaky page" in page["text"]
    wait_until(lambda: "/redirect-out" in e.sites.hits, message="the page's last sub-request")
    assert e.canary_hits == []  # image, frame, fetch to localhost, WebSocket, redirected image: none arrived


# --- WhatsApp -----------------------------------------------------------------------------------


def test_whatsapp_unread_counts_badges_not_pins_and_includes_muted_chats(e):
    result = e.run(whatsapp.unread(e.engine, fresh=True))
    assert result["state"] == "ok" and e.engine.state("whatsapp") == "ok"
    chats = {c["chat"]: c for c in result["chats"]}
    # Family Group: pinned, no badge. Lucky Numbers: a "5" in its preview, no badge. Old Friend: muted, no badge.
    assert sorted(chats) == ["Accounting Team", "Jane Doe", "Supplier Ltd"]
    assert chats["Accounting Team"]["muted"] is True and chats["Accounting Team"]["unread"] == 3
    jane = chats["Jane Doe"]["messages"]
    assert [m["text"] for m in jane] == ["Can you send the invoice?", "It's urgent, thanks"]
    state = {c["title"]: c for c in e.sites.wa["en"]}
    assert [m["id"] for m in jane] == [m["id"] for m in state["Jane Doe"]["messages"][2:]]
    assert jane[0]["from"] == "Jane Doe" and jane[0]["time"] == "10:20 AM, 3/4/2026"
    assert [m["from"] for m in chats["Accounting Team"]["messages"]] == ["Bob", "Carol", "Bob"]
    assert e.run(whatsapp.unread(e.engine))["chats"] == []  # opened means read, as on WhatsApp itself


def test_whatsapp_unread_does_not_depend_on_the_interface_language(e):
    e.sites.whatsapp_variant = "de"
    result = e.run(whatsapp.unread(e.engine, fresh=True))
    chats = {c["chat"]: c for c in result["chats"]}
    assert sorted(chats) == ["Buchhaltung", "Jörg Müller"]  # not Familie (pinned), Glückszahlen, Alte Freundin
    assert [m["text"] for m in chats["Jörg Müller"]["messages"]] == ["Bitte die Rechnung schicken"]
    assert chats["Jörg Müller"]["messages"][0]["time"] == "10:20, 4.3.2026"
    assert [m["from"] for m in chats["Buchhaltung"]["messages"]] == ["Bernd", "Clara"]


def test_whatsapp_send_types_once_and_find_sent_finds_it(e):
    e.run(reload(e.engine, "whatsapp"))
    text = "Invoice 42 is attached.\nThanks, Owner"
    sent = e.run(whatsapp.send(e.engine, "Jane Doe", text, marker="reply-1"))
    assert sent["chat"] == "Jane Doe" and sent["id"].startswith("true_4915550001@c.us_")
    assert e.sites.wa_sent == [("Jane Doe", text)]
    again = e.run(whatsapp.send(e.engine, "Jane Doe", text, marker="reply-1"))  # a retried call
    assert again == sent and len(e.sites.wa_sent) == 1
    found = e.run(whatsapp.find_sent(e.engine, "Jane Doe", text))
    assert found is not None and found["id"] == sent["id"]
    assert e.run(whatsapp.find_sent(e.engine, "Jane Doe", "Something never sent")) is None
    # A previous attempt whose outcome is unknown: looked for first, found, not typed again.
    e.engine.remember("whatsapp", "reply-2", "unknown")
    assert e.run(whatsapp.send(e.engine, "Jane Doe", text, marker="reply-2"))["id"] == sent["id"]
    assert len(e.sites.wa_sent) == 1
    # A chat beyond the rendered rows is reached through the search box, which is cleared afterwards.
    e.run(whatsapp.send(e.engine, "Zoe Quiet", "See you Monday"))
    assert e.sites.wa_sent[-1] == ("Zoe Quiet", "See you Monday")
    with pytest.raises(NotFoundError):
        e.run(whatsapp.send(e.engine, "Nobody Here", "Hello"))
    assert len(e.sites.wa_sent) == 2
    assert e.run(whatsapp.unread(e.engine, fresh=True))["state"] == "ok"


def test_a_send_with_an_unknown_outcome_is_found_not_repeated(e):
    e.run(reload(e.engine, "whatsapp"))
    hold = e.sites._add_hold(Hold("whatsapp/send"))  # WhatsApp takes the message but answers late
    text = "Your order is confirmed"
    with pytest.raises(OutcomeUnknownError):
        e.run(whatsapp.send(e.engine, "Supplier Ltd", text, marker="reply-9"))
    assert hold.arrived.is_set() and e.engine.recall("whatsapp", "reply-9") == ("unknown", None)
    hold.release()
    e.run(_until(lambda: e.sites.wa_sent == [("Supplier Ltd", text)]))
    result = e.run(whatsapp.send(e.engine, "Supplier Ltd", text, marker="reply-9"))  # the caller retries
    assert result["id"].startswith("true_4915550006@c.us_") and e.sites.wa_sent == [("Supplier Ltd", text)]


async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_whatsapp_logged_out_page_is_not_logged_in(e):
    e.sites.whatsapp_variant = "logged_out"
    with pytest.raises(NotLoggedIn) as caught:
        e.run(whatsapp.unread(e.engine, fresh=True))
    assert caught.value.state == "not_logged_in" and caught.value.code == "AUTH_ERROR"
    assert str(caught.value).startswith("not_logged_in: whatsapp")
    assert e.engine.state("whatsapp") == "not_logged_in"
    e.sites.whatsapp_variant = "down"
    with pytest.raises(SiteUnreachable):
        e.run(whatsapp.unread(e.engine))
    assert e.engine.state("whatsapp") == "unreachable"
    e.sites.whatsapp_variant = "en"
    e.run(whatsapp.unread(e.engine))  # not ok before: the page is loaded again
    assert e.engine.state("whatsapp") == "ok"


def test_a_missing_selector_is_named_by_the_error_and_by_the_self_test(e):
    e.run(reload(e.engine, "whatsapp"))
    report = e.run(e.engine.self_test("whatsapp"))
    assert [name for name, status in report.items() if status == "missing"] == []
    assert report["composer"] == report["unread_badge"] == report["pinned_marker"] == report["muted_marker"] == "ok"
    assert report["send_button"] == "not_seen"  # it appears only while there is text to send
    data = yaml.safe_load(e.selectors_file.read_text("utf-8"))
    data["sites"]["whatsapp"]["elements"]["composer"] = ['footer [data-testid="composer-that-is-gone"]']
    e.selectors_file.write_text(yaml.safe_dump(data), "utf-8")  # picked up without a restart
    with pytest.raises(SelectorMissing) as caught:
        e.run(whatsapp.send(e.engine, "Jane Doe", "Should never be typed"))
    assert caught.value.name == "whatsapp.composer"
    assert str(caught.value).startswith("selector_missing: whatsapp.composer")
    assert e.engine.state("whatsapp") == "selector_missing: whatsapp.composer"
    assert e.sites.wa_sent == []
    report = e.run(e.engine.self_test("whatsapp"))
    assert [name for name, status in report.items() if status == "missing"] == ["composer"]


# --- LinkedIn -----------------------------------------------------------------------------------


def test_linkedin_posts_through_the_portal_dialog_once_and_finds_the_post(e):
    report = e.run(e.engine.self_test("linkedin"))
    assert [name for name, status in report.items() if status != "ok"] == []
    text = "We closed the books for March.\n#smallbusiness"
    posted = e.run(linkedin.post(e.engine, text, marker="post-1"))
    assert e.sites.li_posted == [text]
    urn = e.sites.li_posts[0]["urn"]
    assert posted["urn"] == urn and posted["url"] == f"{e.sites.url}/li/feed/update/{urn}/"
    assert e.run(linkedin.post(e.engine, text, marker="post-1")) == posted and len(e.sites.li_posted) == 1
    assert e.run(linkedin.find_post(e.engine, text)) == {"url": posted["url"], "urn": urn}
    assert e.run(linkedin.find_post(e.engine, "Ten lessons from a year of bookkeeping")) is None  # not ours
    assert e.engine.state("linkedin") == "ok"
    # The login lives in the persistent profile: it survives closing and reopening the browser.
    login = e.sites.li_sessions[-1]
    assert login is not None
    e.run(e.engine.restart_site("linkedin"))
    assert e.run(linkedin.find_post(e.engine, text))["urn"] == urn
    assert e.sites.li_sessions[-1] == login


def test_linkedin_checkpoint_is_detected(e):
    e.sites.linkedin_variant = "checkpoint"
    with pytest.raises(Checkpoint) as caught:
        e.run(linkedin.post(e.engine, "Never posted"))
    assert caught.value.state == "checkpoint" and e.engine.state("linkedin") == "checkpoint"
    assert e.sites.li_posted == []


def test_an_idle_engine_runs_neither_chromium_nor_the_playwright_driver(tmp_path):
    """Both start with the first page: an idle browser server costs only its own process."""
    import os
    engine = BrowserEngine(BrowserConfig(profile_dir=tmp_path, executable=CHROMIUM, allowed_hosts=("127.0.0.1",),
                                         only_allowed=True), resolver=loopback_resolver)

    def children() -> dict[str, str]:  # pid: program, of this test process's children
        me = str(os.getpid())
        found = {}
        for p in os.listdir("/proc"):
            if p.isdigit() and _parent(p) == me:
                with contextlib.suppress(OSError):
                    found[p] = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        return found

    async def started_children() -> list[str]:
        before = children()  # an earlier test's driver may still be on its way out
        await engine.start()
        try:
            return [program for pid, program in children().items() if pid not in before]
        finally:
            await engine.stop()
    assert not [c for c in asyncio.run(started_children()) if "node" in c or "chrom" in c]


def _parent(pid: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except OSError:
        return None
