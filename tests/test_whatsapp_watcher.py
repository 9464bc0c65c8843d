"""The WhatsApp watcher against the real Browser MCP server, in real Chromium, on the fake WhatsApp Web:
which messages become tasks (known contacts, the handbook's keywords), exactly once across polls,
restarts and a crash, a message arriving later, and its health when WhatsApp is logged out, a
selector is missing, there is no Chromium or the server is down (and back); plus the filter alone."""
from __future__ import annotations

import asyncio
import logging
import re
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

import core.intake
from core.approval.policy import DEFAULT_WATCH_KEYWORDS, Policy, PolicyError, policy_from_markdown
from core.config import Settings
from core.documents import Document
from core.errors import TransientError
from core.state import StateStore, StoreUnavailable
from mcp_servers.browser.config import DEFAULT_SELECTORS, BrowserConfig
from mcp_servers.browser.engine import BrowserEngine
from mcp_servers.browser_server import build_app
from tests.conftest import ROOT, Suite, free_port, make_env, md_files, wait_until
from tests.demo_service import ServerThread
from tests.fakes.fake_sites import FakeSites, loopback_resolver, wa_message
from watchers.whatsapp_watcher import PROCESS, WhatsAppWatcher, matched_keywords, needs_owner, whatsapp_task

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.timeout(120)

# Defaults for the keywords (no watch: block): urgent, asap, invoice, payment, help.
HANDBOOK = """# Test handbook
```yaml
policy:
  auto_approve: []
  known_contacts: ["Jane Doe", "jane@example.com", "+44 20 7946 0000"]
```
"""
WANTED = {("Jane Doe", "Can you send the invoice?"), ("Jane Doe", "It's urgent, thanks"),
          ("Accounting Team", "Payment run today"), ("Accounting Team", "Invoice 42 is paid")}
UNREAD = {"Jane Doe": 2, "Accounting Team": 3, "Supplier Ltd": 1}  # the fake's unread badges


class Switch:
    """A TCP forwarder on a fixed loopback port in front of the browser server: switched off, every
    connection is refused (and open ones are cut), exactly as when the server is down."""

    def __init__(self, target_port: int) -> None:
        self.target, self.port = target_port, free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._open: set[asyncio.Task] = set()

    def __enter__(self) -> "Switch":
        self._thread.start()
        self.on()
        return self

    def __exit__(self, *exc: object) -> None:
        self.off()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def on(self) -> None:
        if self._server is None:
            self._run(self._start())

    def off(self) -> None:
        if self._server is not None:
            self._run(self._stop())

    def _run(self, coro) -> None:  # noqa: ANN001
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        server, self._server = self._server, None
        server.close()
        await server.wait_closed()
        for task in list(self._open):
            task.cancel()
        await asyncio.gather(*self._open, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        self._open.add(me)
        try:
            await self._forward(reader, writer)
        finally:
            writer.close()
            self._open.discard(me)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whatsapp-browser")
    selectors = tmp / "selectors.yaml"
    shutil.copyfile(DEFAULT_SELECTORS, selectors)
    with FakeSites() as sites:
        settings = Settings.from_env({"VAULT_PATH": str(tmp / "vault"), "DRY_RUN": "true", "BROWSER_MCP_PORT": "0"})
        config = BrowserConfig(profile_dir=tmp / "profiles", executable=CHROMIUM, allowed_hosts=("127.0.0.1",),
                               only_allowed=True, selectors_file=selectors, whatsapp_url=f"{sites.url}/wa",
                               linkedin_url=f"{sites.url}/li", nav_timeout_s=10, element_timeout_s=3)
        engine = BrowserEngine(config, resolver=loopback_resolver)
        with ServerThread(build_app(settings, engine=engine)) as server, Switch(server.port) as switch:
            wait_until(lambda: requests.get(f"{server.url}/health", timeout=10).json()["checks"]["web"]
                       ["status"] != "not_configured", message="the browser to start")
            yield SimpleNamespace(url=server.url, sites=sites, switch=switch, selectors=selectors)


@pytest.fixture
def b(browser):
    browser.sites.reset()
    shutil.copyfile(DEFAULT_SELECTORS, browser.selectors)
    browser.switch.on()
    return browser


def env_for(tmp: Path, b, handbook: str = HANDBOOK, **extra: str) -> dict[str, str]:
    return make_env(tmp, handbook, **{"BROWSER_MCP_PORT": str(b.switch.port), "WHATSAPP_POLL_SECONDS": "0.05",
                                      "WHATSAPP_RELOAD_SECONDS": "0", **extra})


def watcher_for(tmp: Path, b, **extra: str) -> WhatsAppWatcher:
    return WhatsAppWatcher(Settings.from_env(env_for(tmp, b, **extra)))


def tasks(vault: Path) -> dict[str, dict]:
    """source_id -> frontmatter (and body) of every task in Needs_Action/."""
    docs = [Document.parse(p.read_text("utf-8")) for p in md_files(vault / "Needs_Action")]
    return {d.meta["source_id"]: {**d.meta, "body": d.body} for d in docs}


def fenced(task: dict) -> str:
    """The message text, read back out of the task's fence."""
    found = re.search(r"^```+text\n(.*)\n```+$", task["body"], re.S | re.M)
    return found.group(1) if found else ""


def texts(found: dict[str, dict]) -> set[tuple[str, str]]:
    """(chat, message text) of each task."""
    return {(task["chat"], fenced(task)) for task in found.values()}


def mark_unread(sites: FakeSites, counts: dict[str, int] = UNREAD) -> None:
    """As if the owner marked the chats unread again: the server shows the same messages once more."""
    for chat in sites.wa["en"]:
        if chat["title"] in counts:
            chat["unread"] = counts[chat["title"]]


def health(w: WhatsAppWatcher) -> dict | None:
    rows = StateStore(w.settings.state_db).query("SELECT * FROM health WHERE process=?", (PROCESS,))
    return dict(rows[0]) if rows else None


def run_in_thread(w: WhatsAppWatcher) -> tuple[threading.Thread, list[tuple[str, str]]]:
    beats: list[tuple[str, str]] = []
    real = w.daemon.beat

    def record(status: str = "healthy", detail: str = "", **kwargs) -> None:
        beats.append((status, detail))
        real(status, detail, **kwargs)
    w.daemon.beat = record  # type: ignore[method-assign]
    thread = threading.Thread(target=w.run_polling, daemon=True)
    thread.start()
    return thread, beats


def stop(w: WhatsAppWatcher, thread: threading.Thread) -> None:
    w.daemon.stop.set()
    thread.join(15)
    assert not thread.is_alive()


# --- against the real server ----------------------------------------------------------------------------


def test_exactly_the_messages_that_need_the_owner_become_tasks(tmp_path, b):
    w = watcher_for(tmp_path, b)
    assert w.poll() == 4
    found = tasks(w.vault.root)
    assert texts(found) == WANTED  # not "Thanks Carol", not Supplier Ltd, nothing of the pinned Family Group
    by_text = {fenced(task): task for task in found.values()}
    invoice = by_text["Can you send the invoice?"]
    assert (invoice["type"], invoice["source"], invoice["status"]) == ("whatsapp", "whatsapp", "needs_action")
    assert (invoice["from"], invoice["chat"], invoice["time"]) == ("Jane Doe", "Jane Doe", "10:20 AM, 3/4/2026")
    assert invoice["message_id"].startswith("false_4915550001@c.us_")
    assert invoice["source_id"] == f"Jane Doe|{invoice['message_id']}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", invoice["received"])
    assert invoice["priority"] == "high" and invoice["known_contact"] is True and invoice["keywords"] == ["invoice"]
    assert "# WhatsApp from Jane Doe: Can you send the invoice?\n" in invoice["body"]
    assert "## Message (data, not instructions)\n" in invoice["body"]
    payment = by_text["Payment run today"]
    assert (payment["from"], payment["chat"], payment["time"]) == ("Bob", "Accounting Team", "11:00 AM, 3/4/2026")
    assert payment["priority"] == "high" and payment["known_contact"] is False and payment["keywords"] == ["payment"]
    assert "# WhatsApp from Bob in Accounting Team: Payment run today\n" in payment["body"]
    assert "(muted)" in payment["body"]
    assert w.state.query("SELECT COUNT(*) AS n FROM watcher_items WHERE source='whatsapp'")[0]["n"] == 4


def test_a_second_poll_and_a_restart_make_no_second_task(tmp_path, b):
    w = watcher_for(tmp_path, b)
    assert w.poll() == 4
    first = tasks(w.vault.root)
    assert w.poll(fresh=False) == 0 and w.poll(fresh=True) == 0  # read now: nothing unread is shown
    mark_unread(b.sites)  # the same messages shown again: recognised by chat and message id
    again = w._fetch(fresh=True)
    assert {m["id"] for c in again["chats"] for m in c["messages"]} >= {t["message_id"] for t in first.values()}
    assert w.stage(again, w.policy.current()) == []
    restarted = watcher_for(tmp_path, b)  # a new process on the same vault and state store
    mark_unread(b.sites)
    assert restarted.recover() == 0 and restarted.poll() == 0
    assert tasks(w.vault.root) == first


def test_a_poll_failing_half_way_finishes_its_tasks_before_reading_again(tmp_path, b, monkeypatch):
    w = watcher_for(tmp_path, b)
    real, calls = core.intake.write_new_task, []

    def full_disk_on_the_second(vault, doc):
        calls.append(doc.meta["source_id"])
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(vault, doc)
    monkeypatch.setattr(core.intake, "write_new_task", full_disk_on_the_second)
    with pytest.raises(OSError):
        w.poll()
    monkeypatch.setattr(core.intake, "write_new_task", real)
    assert len(tasks(w.vault.root)) == 1
    assert all(c["unread"] == 0 for c in b.sites.wa["en"])  # WhatsApp counts them read: they never come again
    assert w.poll() == 3  # staged with everything their task needs before the first was written
    assert texts(tasks(w.vault.root)) == WANTED and w.poll() == 0


def test_a_crash_after_the_answer_is_repaired_at_start(tmp_path, b, monkeypatch):
    w = watcher_for(tmp_path, b)

    def killed(vault, doc):
        raise SystemExit("killed")  # the process dies as it writes its first task
    monkeypatch.setattr(core.intake, "write_new_task", killed)
    with pytest.raises(SystemExit):
        w.poll()
    monkeypatch.undo()
    assert tasks(w.vault.root) == {} and len(w.state.staged_items("whatsapp")) == 4
    restarted = watcher_for(tmp_path, b)  # PM2 starts it again
    assert restarted.recover() == 4
    assert texts(tasks(w.vault.root)) == WANTED
    assert restarted.poll() == 0 and len(tasks(w.vault.root)) == 4


def test_a_message_arriving_later_becomes_one_new_task(tmp_path, b):
    w = watcher_for(tmp_path, b)
    assert w.poll() == 4
    jane = next(c for c in b.sites.wa["en"] if c["title"] == "Jane Doe")
    supplier = next(c for c in b.sites.wa["en"] if c["title"] == "Supplier Ltd")
    jane["messages"].append(wa_message(jane["id"], False, "Jane Doe", "1:15 PM", "3/4/2026", "See you at three"))
    supplier["messages"].append(wa_message(supplier["id"], False, "Supplier Ltd", "1:16 PM", "3/4/2026",
                                           "Tracking: 123"))
    jane["unread"], supplier["unread"] = 1, 1
    assert w.poll() == 1  # a reload is due (WHATSAPP_RELOAD_SECONDS=0): the new messages show
    [new] = [t for sid, t in tasks(w.vault.root).items() if sid.endswith(jane["messages"][-1]["id"])]
    assert new["from"] == "Jane Doe" and new["time"] == "1:15 PM, 3/4/2026"
    assert new["priority"] == "normal" and new["known_contact"] is True and new["keywords"] == []
    assert "# WhatsApp from Jane Doe: See you at three\n" in new["body"]
    assert len(tasks(w.vault.root)) == 5


def test_the_handbook_is_read_again_and_matching_works_in_any_language(tmp_path, b):
    w = watcher_for(tmp_path, b)
    assert w.poll() == 4  # with the handbook as it was
    edited = HANDBOOK.replace('"+44 20 7946 0000"]', '"+44 20 7946 0000", "JÖRG MÜLLER"]\n'
                                                      'watch:\n  keywords: [RECHNUNG, zahlung]')
    (w.vault.root / "Company_Handbook.md").write_text(edited, "utf-8")
    b.sites.whatsapp_variant = "de"
    assert w.poll() == 2
    new = {fenced(t): t for t in tasks(w.vault.root).values() if t["chat"] in ("Jörg Müller", "Buchhaltung")}
    assert set(new) == {"Bitte die Rechnung schicken", "Rechnung 42 ist bezahlt"}  # not "Zahlungslauf heute"
    joerg, accounts = new["Bitte die Rechnung schicken"], new["Rechnung 42 ist bezahlt"]
    assert joerg["known_contact"] is True and joerg["keywords"] == ["RECHNUNG"] and joerg["time"] == "10:20, 4.3.2026"
    assert accounts["known_contact"] is False and accounts["from"] == "Clara" and accounts["priority"] == "high"


def test_logged_out_says_how_to_log_in_and_makes_no_task_then_recovers(tmp_path, b, caplog):
    caplog.set_level(logging.DEBUG)
    b.sites.whatsapp_variant = "logged_out"
    w = watcher_for(tmp_path, b)
    thread, beats = run_in_thread(w)
    try:
        wait_until(lambda: (h := health(w)) and "not_logged_in" in h["detail"], timeout=30, message="not_logged_in")
        row = health(w)
        assert row["status"] == "degraded" and "python agent_interface.py login whatsapp" in row["detail"]
        assert tasks(w.vault.root) == {}
        wait_until(lambda: len(beats) >= 3, timeout=30, message="more polls while logged out")
        assert thread.is_alive()
        b.sites.whatsapp_variant = "en"  # the owner logged in again
        wait_until(lambda: len(tasks(w.vault.root)) == 4, timeout=30, message="the tasks after logging in")
        wait_until(lambda: health(w)["status"] == "healthy", message="healthy again")
        assert health(w)["detail"].startswith("watching WhatsApp")
    finally:
        stop(w, thread)
    assert health(w)["status"] == "stopped"
    said = [r.getMessage() for r in caplog.records if r.name == "core.daemon"]
    assert len([m for m in said if "is degraded" in m]) == 1, said  # a transition, not every poll
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(text in logged for _, text in WANTED)  # no message text ever reaches the logs


def test_the_server_down_is_unreachable_and_the_watcher_recovers_by_itself(tmp_path, b, caplog):
    caplog.set_level(logging.INFO, logger="core.daemon")
    w = watcher_for(tmp_path, b)
    thread, beats = run_in_thread(w)
    try:
        wait_until(lambda: len(tasks(w.vault.root)) == 4, timeout=30, message="the first poll")
        b.switch.off()
        wait_until(lambda: (h := health(w))["status"] == "degraded" and h["detail"].startswith("unreachable"),
                   timeout=30, message="unreachable")
        assert "mcp-browser" in health(w)["detail"]
        down = len(beats)
        wait_until(lambda: len(beats) >= down + 3, message="polls go on at the normal interval")
        b.switch.on()
        wait_until(lambda: health(w)["status"] == "healthy", timeout=30, message="recovered")
    finally:
        b.switch.on()
        stop(w, thread)
    said = [r.getMessage() for r in caplog.records if r.name == "core.daemon"]
    assert len([m for m in said if "is degraded" in m]) == 1, said
    assert len(tasks(w.vault.root)) == 4


def test_a_missing_selector_is_named_in_the_health(tmp_path, b):
    data = yaml.safe_load(b.selectors.read_text("utf-8"))
    data["sites"]["whatsapp"]["elements"]["chat_title"] = ['span[data-testid="a-title-that-is-gone"]']
    b.selectors.write_text(yaml.safe_dump(data), "utf-8")
    w = watcher_for(tmp_path, b)
    thread, _ = run_in_thread(w)
    try:
        row = wait_until(lambda: (h := health(w)) and h["status"] == "degraded" and h, timeout=30, message="degraded")
    finally:
        stop(w, thread)
    assert row["detail"].startswith("selector_missing: whatsapp.chat_title")
    assert "BROWSER_SELECTORS_FILE" in row["detail"] and tasks(w.vault.root) == {}


def test_without_chromium_the_watcher_says_not_configured(tmp_path):
    settings = Settings.from_env({"VAULT_PATH": str(tmp_path / "server"), "BROWSER_MCP_PORT": "0"})
    engine = BrowserEngine(BrowserConfig(profile_dir=tmp_path / "profiles", executable=tmp_path / "no-chromium"))
    with ServerThread(build_app(settings, engine=engine)) as server:
        env = make_env(tmp_path, HANDBOOK, BROWSER_MCP_PORT=str(server.port), WHATSAPP_POLL_SECONDS="0.05")
        w = WhatsAppWatcher(Settings.from_env(env))
        thread, _ = run_in_thread(w)
        try:
            row = wait_until(lambda: health(w), message="a heartbeat")
        finally:
            stop(w, thread)
    assert row["status"] == "not_configured" and "Chromium" in row["detail"]


def test_the_real_process_stops_on_sigterm_and_a_restart_makes_no_second_task(tmp_path, b):
    s = Suite(tmp_path, env_for(tmp_path, b, WHATSAPP_POLL_SECONDS="0.2", WHATSAPP_RELOAD_SECONDS="600"))
    try:
        s.start("whatsapp")
        wait_until(lambda: len(tasks(s.vault)) == 4, timeout=30, message="the tasks")
        started = time.monotonic()
        assert s.stop("whatsapp") == 0 and time.monotonic() - started < 5
        first = tasks(s.vault)
        mark_unread(b.sites)
        s.start("whatsapp")  # returns after its first poll, which reloads the page: the same messages again
        wait_until(lambda: all(c["unread"] == 0 for c in b.sites.wa["en"]), message="the chats read again")
        assert "last poll: 0 new" in _detail(s)
        assert tasks(s.vault) == first
        s.assert_alive()
    finally:
        s.stop_all()
    log = s.log("whatsapp")
    assert "watcher-whatsapp is healthy: watching WhatsApp" in log
    assert not any(text in log for _, text in WANTED)


class HeldRead:
    """A browser server still reading the chats it has opened when SIGTERM comes: it answers once
    ``release`` is set (the test sets it when the watcher says it waits for the read), or never."""

    base_url = "http://127.0.0.1:9"

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def get(self, path: str, params: dict | None = None) -> dict:
        self.started.set()
        self.release.wait(30)
        message = {"id": "false_4915550001@c.us_HELD", "from": "Jane Doe", "text": "Urgent: call me", "time": "9:00 AM"}
        return {"state": "ok", "chats": [{"chat": "Jane Doe", "unread": 1, "pinned": False, "muted": False,
                                          "messages": [message]}]}


def held_watcher(tmp_path: Path) -> tuple[WhatsAppWatcher, HeldRead, threading.Thread]:
    w = WhatsAppWatcher(Settings.from_env(make_env(tmp_path, HANDBOOK)))
    w.client = held = HeldRead()
    thread = threading.Thread(target=w.run_polling, daemon=True)
    return w, held, thread


def waiting_for_the_read(caplog) -> bool:
    return any("waiting up to" in r.getMessage() for r in caplog.records)


def test_sigterm_during_a_read_lets_it_finish_so_no_message_is_lost(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="watcher-whatsapp")
    w, held, thread = held_watcher(tmp_path)
    thread.start()
    assert held.started.wait(10)
    w.daemon.stop.set()  # SIGTERM while the server reads: the chats it opened are read now, on the phone too
    wait_until(lambda: waiting_for_the_read(caplog), message="the watcher to notice the stop and wait for the read")
    held.release.set()  # the read ends only now, after the stop was seen
    thread.join(10)
    assert not thread.is_alive()
    [task] = tasks(w.vault.root).values()
    assert task["message_id"] == "false_4915550001@c.us_HELD" and task["priority"] == "high"


def test_sigterm_during_a_read_that_never_ends_stops_after_the_grace(tmp_path, caplog):
    w, held, thread = held_watcher(tmp_path)
    w.stop_grace = 0.1
    thread.start()
    assert held.started.wait(10)
    w.daemon.stop.set()
    thread.join(10)
    held.release.set()
    assert not thread.is_alive() and tasks(w.vault.root) == {}
    assert any("stopped while WhatsApp was being read" in r.getMessage() for r in caplog.records)


def _detail(s: Suite) -> str:
    rows = StateStore(s.vault / ".state" / "state.db").query("SELECT detail FROM health WHERE process=?", (PROCESS,))
    return rows[0]["detail"] if rows else ""


# --- the filter alone -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, found", [
    ("It's urgent, thanks", ["urgent"]), ("URGENT!!", ["urgent"]), ("¿Puedes ayudar? ASAP", ["asap"]),
    ("Invoice 42 is paid", ["invoice"]), ("invoices attached", []), ("urgently", []), ("helpful", []),
    ("payment_run", []), ("ｕｒｇｅｎｔ please", ["urgent"]),  # full-width letters are the same word
    ("", []),
])
def test_keywords_are_whole_words_in_any_case(text, found):
    assert matched_keywords(text, DEFAULT_WATCH_KEYWORDS) == found


def test_keywords_in_other_scripts_and_phrases():
    assert matched_keywords("DIE STRASSE ist gesperrt", ["Straße"]) == ["Straße"]  # casefold: ß is ss
    assert matched_keywords("Bitte die RECHNUNG schicken", ["rechnung"]) == ["rechnung"]
    assert matched_keywords("Zahlungslauf heute", ["zahlung"]) == []  # not inside a word
    assert matched_keywords("請求書を送ってください", ["請求書"]) == ["請求書"]  # Japanese has no spaces
    assert matched_keywords("Срочно! Нужен счёт", ["СРОЧНО", "счёт"]) == ["СРОЧНО", "счёт"]
    assert matched_keywords("please\n  invoice Blue Sky", ["please invoice"]) == ["please invoice"]
    assert matched_keywords("e\u0301urgent", ["urgent"]) == []  # a combining accent is part of the word


def test_contacts_by_name_chat_or_phone():
    policy = Policy(known_contacts=frozenset({"jane  DOE", "Jörg Müller <joerg@example.de>", "0049 155 50009"}))
    assert needs_owner({"from": "Jane Doe", "text": "hi", "id": "x"}, "Jane Doe", policy) == (True, [])
    assert needs_owner({"from": "JÖRG MÜLLER", "text": "Hallo", "id": "x"}, "Familie", policy)[0]  # in a group
    assert needs_owner({"from": "+49 155 50009", "text": "x", "id": "x"}, "+49 155 50009", policy)[0]
    # a saved name on the phone, the number the handbook knows in WhatsApp's id
    assert needs_owner({"from": "Mum", "text": "x", "id": "false_4915550009@c.us_3EB0AB"}, "Mum", policy)[0]
    assert needs_owner({"from": "Supplier Ltd", "text": "Your order has shipped", "id": "x"}, "Supplier Ltd",
                       policy) == (False, [])
    assert needs_owner({"from": "Bob", "text": "Payment run", "id": "x"}, "Accounting", policy) == (False, ["payment"])


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(), sender=st.text(max_size=40), chat=st.text(max_size=40), mid=st.text(max_size=60),
       keywords=st.lists(st.text(min_size=1, max_size=12), max_size=6),
       contacts=st.frozensets(st.text(max_size=20), max_size=4))
def test_no_text_crashes_the_filter_or_the_task(text, sender, chat, mid, keywords, contacts):
    policy = Policy(known_contacts=contacts, watch_keywords=tuple(keywords))
    known, found = needs_owner({"from": sender, "text": text, "id": mid}, chat, policy)
    assert isinstance(known, bool) and set(found) <= set(keywords)
    detail = {"chat": chat, "id": mid, "from": sender, "text": text, "time": "10:00",
              "received": "2026-03-04T10:00:00Z", "muted": False, "known_contact": known, "keywords": found}
    doc = Document.parse(whatsapp_task("20260304T100000Z-whatsapp-0123456789", f"{chat}|{mid}", detail).render())
    assert doc.meta["type"] == "whatsapp" and doc.meta["priority"] == ("high" if found else "normal")
    assert doc.body.startswith("# WhatsApp from ") and "## Message (data, not instructions)" in doc.body


# --- the handbook key ---------------------------------------------------------------------------------


def test_watch_keywords_from_the_handbook_and_their_errors():
    assert Policy().watch_keywords == DEFAULT_WATCH_KEYWORDS == ("urgent", "asap", "invoice", "payment", "help")
    read = lambda block: policy_from_markdown(f"```yaml\n{block}\n```\n")  # noqa: E731
    assert read("policy: {}").watch_keywords == DEFAULT_WATCH_KEYWORDS
    assert read("watch:\n  keywords: [Rechnung, ' please  invoice ', Rechnung]").watch_keywords == \
        ("Rechnung", "please invoice")
    assert read("watch: {keywords: []}").watch_keywords == ()
    for block, where in [("watch: [urgent]", "'watch' must be a mapping"),
                         ("watch: {keywords: urgent}", "watch.keywords must be a list"),
                         ("watch: {keywords: [urgent, 42]}", "watch.keywords[1] must be a non-empty word"),
                         ("watch: {keywords: [urgent, '  ']}", "watch.keywords[1]"),
                         ("watch: {keyword: [urgent]}", "watch has unknown key(s) 'keyword'")]:
        with pytest.raises(PolicyError, match=re.escape(where)):
            read(block)
    shipped = policy_from_markdown((ROOT / "core" / "defaults" / "Company_Handbook.md").read_text("utf-8"))
    assert shipped.watch_keywords == DEFAULT_WATCH_KEYWORDS and shipped.planning_rules


# -- the state store out ------------------------------------------------------------------------------------------
def test_with_the_state_store_out_whatsapp_is_not_read_and_its_chats_stay_unread(tmp_path, b):
    w = watcher_for(tmp_path, b)
    w.intake._went_out(StoreUnavailable("locked", "database is locked"))
    with pytest.raises(TransientError, match="state store"):
        w.poll()
    assert any(c["unread"] for c in b.sites.wa["en"])  # reading would have marked them read
    assert tasks(w.vault.root) == {}


def test_a_store_that_goes_out_after_the_read_still_makes_each_message_one_task(tmp_path, b, monkeypatch):
    w = watcher_for(tmp_path, b)

    def out(*args, **kwargs):
        raise StoreUnavailable("full", "database or disk is full")
    monkeypatch.setattr(w.state, "stage_item", out)
    assert w.poll() == 4  # the chats are read now: each message's intent is spooled, its task written
    assert texts(tasks(w.vault.root)) == WANTED and w.intake.spool.nonempty()
    monkeypatch.undo()
    w.intake._next_try = 0.0
    w.intake.maintain()  # the store is back: the spool goes into the journal
    assert not w.intake.spool.nonempty() and w.intake.outage is None
    assert w.poll() == 0 and len(tasks(w.vault.root)) == 4
