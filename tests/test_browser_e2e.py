"""The browser verticals end to end, as real processes (the browser server with real Chromium, the
watchers, the loop, the agent interface) on a temporary vault with the shipped handbook, against local
pages shaped like WhatsApp Web and LinkedIn: a LinkedIn note becomes one post, and a WhatsApp message
one task and one reply, each exactly once across kill -9 of the agent interface mid-send."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from core.documents import Document
from tests.conftest import ROOT, Suite, free_port, make_env, md_files, wait_until
from tests.fakes.fake_sites import FakeSites

pytestmark = pytest.mark.timeout(240)  # real Chromium: ./scripts/test.sh installs Debian's chromium
HANDBOOK = (ROOT / "core" / "defaults" / "Company_Handbook.md").read_text("utf-8")


@pytest.fixture
def browser(tmp_path: Path):
    with contextlib.ExitStack() as stack:
        sites = stack.enter_context(FakeSites())
        port = free_port()
        handbook = HANDBOOK.replace("  known_contacts: []", "  known_contacts: [Jane Doe]")
        env = make_env(tmp_path, handbook=handbook, DRY_RUN="false", BROWSER_MCP_PORT=str(port),
                       BROWSER_ALLOWED_HOSTS="127.0.0.1", BROWSER_ONLY_ALLOWED_HOSTS="true",
                       WHATSAPP_URL=f"{sites.url}/wa", LINKEDIN_URL=f"{sites.url}/li", WHATSAPP_POLL_SECONDS="1")
        for skill in ("social_skill", "linkedin_skill", "whatsapp_skill"):
            shutil.copytree(ROOT / ".qwen" / "skills" / skill, tmp_path / "skills" / skill)
        suite = Suite(tmp_path, env)
        stack.callback(suite.stop_all)
        url = f"http://127.0.0.1:{port}"
        suite.start("browser")
        wait_until(lambda: _health(url), timeout=30, message="the browser server")
        yield SimpleNamespace(suite=suite, sites=sites, url=url)


def _health(url: str) -> dict | None:
    with contextlib.suppress(requests.ConnectionError):
        return requests.get(f"{url}/health", timeout=2).json()
    return None


def only_request(s) -> Path:
    files = wait_until(lambda: md_files(s.suite.folder("Pending_Approval")), timeout=90, message="the request")
    assert len(files) == 1, files
    return files[0]


def approve_through_a_kill(s, request: Path, held) -> str:
    """Approve; the site takes it and holds the answer; the agent interface dies -9 right then; a
    new agent interface picks the approval up again. Returns the task id."""
    meta = Document.parse(request.read_text("utf-8")).meta
    s.suite.cli("approve", meta["id"])
    assert held.arrived.wait(90), "it never reached the site"
    s.suite.kill9("agent")
    held.release()
    s.suite.start("agent")
    return meta["task_id"]


def test_a_linkedin_note_is_posted_once_across_kill9_of_the_agent(browser):
    s = browser
    for name in ("watcher", "loop", "agent"):
        s.suite.start(name)
    s.suite.drop("linkedin.txt", "Please post on LinkedIn: we are hiring a junior bookkeeper, 3 days a week.\n")
    request = only_request(s)
    meta = Document.parse(request.read_text("utf-8")).meta
    assert (meta["skill"], meta["action"]) == ("linkedin_skill", "social_media_post")
    assert meta["params"]["platform"] == "linkedin"
    assert "## Message\nWe are hiring a junior bookkeeper, 3 days a week.\n" in request.read_text("utf-8")
    task_id = approve_through_a_kill(s, request, s.sites.hold("linkedin/post", after=True))
    wait_until(lambda: (s.suite.folder("Completed") / f"{task_id}.md").exists(), timeout=90, message="the task done")
    assert s.sites.li_posted == ["We are hiring a junior bookkeeper, 3 days a week."]


def test_a_whatsapp_message_becomes_one_task_and_one_reply_across_kill9_mid_send(browser):
    s = browser
    for name in ("whatsapp", "loop", "agent"):
        s.suite.start(name)
    # Jane's two messages (a known contact) and the Accounting Team's two with "payment"/"invoice":
    # one proposed reply each; nothing for the rest.
    files = wait_until(lambda: len(f := md_files(s.suite.folder("Pending_Approval"))) >= 4 and f, timeout=90,
                       message="replies proposed for the messages that need the owner")
    assert len(files) == 4
    jane = [p for p in files if Document.parse(p.read_text("utf-8")).meta["params"]["chat"] == "Jane Doe"]
    assert jane, files
    request = jane[0]
    request.write_text(request.read_text("utf-8").replace(
        "## Message\nThanks for your message! I have seen it and will get back to you shortly.\n",
        "## Message\nHi Jane, the invoice is on its way.\n"), "utf-8")  # the owner's own words
    task_id = approve_through_a_kill(s, request, s.sites.hold("whatsapp/send", after=True))
    wait_until(lambda: (s.suite.folder("Completed") / f"{task_id}.md").exists(), timeout=90, message="the task done")
    assert s.sites.wa_sent == [("Jane Doe", "Hi Jane, the invoice is on its way.")]
    # The watcher restarted sees the same unread messages again: no second task for any of them.
    tasks_before = _task_ids(s)
    s.suite.stop("whatsapp")
    s.suite.start("whatsapp")
    wait_until(lambda: _polled_since_restart(s), timeout=30, message="the restarted watcher to poll")
    assert _task_ids(s) == tasks_before


def _task_ids(s) -> set[str]:
    ids = set()
    for folder in ("Needs_Action", "In_Progress", "Completed", "Failed"):
        for path in (s.suite.folder(folder)).rglob("*.md"):
            meta = Document.parse(path.read_text("utf-8")).meta
            if meta.get("type") == "whatsapp":
                ids.add(meta["id"])
    return ids


def _polled_since_restart(s) -> bool:
    return s.suite.heartbeat_pid("watcher-whatsapp") == s.suite.procs["whatsapp"].pid
