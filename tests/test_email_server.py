"""The email MCP server against the wire-level fake Gmail: REST and MCP for each tool, the approval
gate on the real approvals store, exactly-once sends, not configured, dry run, auth, the official
`mcp` client, the tools/list snapshot, and the server as a real process."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from mcp.client import Client

from core.approval.approvals import Approvals
from core.audit import read_records
from core.config import Settings
from core.documents import Document
from core.engine.plans import PlanStore, ProposedStep
from core.engine.skills import ActionContext, SkillRegistry
from core.state import StateStore
from core.vault import Vault
from mcp_servers.email_server import build_app
from mcp_servers.tools import LEDGER_KEY
from mcp_servers.gmail import GmailConfig, GmailConnector
from tests.conftest import ROOT, free_port, md_files, wait_until
from tests.demo_service import ServerThread
from tests.fakes.fake_gmail import FakeGmail, write_token_file

pytestmark = pytest.mark.timeout(60)
SNAPSHOT = Path(__file__).parent / "snapshots" / "mcp_email_tools_list.json"
MAIL = {"to": "jane@example.com", "subject": "Quote", "body": "Dear Jane, here is the quote."}


@pytest.fixture
def fake():
    with FakeGmail() as server:
        yield server


def email_env(tmp_path: Path, fake: FakeGmail | None, **extra: str) -> dict[str, str]:
    """The environment of an email server on a temporary vault; a token only when ``fake`` is given."""
    env = {"VAULT_PATH": str(tmp_path / "vault"), "DRY_RUN": "false", "GMAIL_TOKEN_FILE": str(tmp_path / "token.json"),
           "EMAIL_MCP_PORT": "0"}
    if fake is not None:
        write_token_file(tmp_path / "token.json", fake)
        env.update(GMAIL_API_ENDPOINT=fake.url, GMAIL_TOKEN_URI=fake.token_uri)
    return {**env, **extra}


@pytest.fixture
def serve(tmp_path, fake):
    with contextlib.ExitStack() as stack:
        def start(*, configured: bool = True, **extra: str) -> SimpleNamespace:
            settings = Settings.from_env(email_env(tmp_path, fake if configured else None, **extra))
            server = stack.enter_context(ServerThread(build_app(settings)))
            vault, state = Vault(settings.vault_path), StateStore(settings.state_db)
            return SimpleNamespace(url=server.url, settings=settings, vault=vault, state=state,
                                   approvals=Approvals(vault, state), fake=fake, server=server)
        yield start


@pytest.fixture
def srv(serve):
    return serve()


def owner_grant(s, params: dict, *, action: str = "send_email", skill: str = "gmail_skill", task_id: str = "t-1",
                edited: str | None = None) -> str:
    """An approval issued for ``params`` and accepted the way the owner does it (file in Approved/)."""
    row = s.approvals.request(task_id=task_id, step_no=1, skill=skill, action=action, params=params,
                              text_param="body", html_param="html", risk="medium", reason="test",
                              subject=params.get("subject", "x"))
    path = s.vault.root / "Pending_Approval" / row["file_name"]
    if edited is not None:
        path.write_text(path.read_text("utf-8").replace(params["body"], edited), "utf-8")
    approved = s.vault.move(path, s.vault.folder("Approved"))
    return s.approvals.accept(approved).id


def send(s, params: dict, **call):
    return requests.post(f"{s.url}/send-email", json={**params, **call}, timeout=30)


def rpc(url: str, method: str, params: dict | None = None, headers: dict | None = None) -> requests.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params is not None else {})}
    return requests.post(f"{url}/mcp", json=body, headers=headers, timeout=30)


def call_tool(url: str, name: str, arguments: dict) -> dict:
    return rpc(url, "tools/call", {"name": name, "arguments": arguments}).json()["result"]


def front(path: Path) -> dict:
    return Document.parse(path.read_text("utf-8")).meta


# --- reads, REST and MCP ---------------------------------------------------------------------------

def test_health_is_healthy_with_a_token(srv):
    body = requests.get(f"{srv.url}/health", timeout=10).json()
    assert body["status"] == "healthy" and body["service"] == "email" and body["dry_run"] is False
    assert set(body["checks"]) == {"gmail", "state_store", "outbox"}


def health(s) -> dict:
    return requests.get(f"{s.url}/health", timeout=10).json()


def test_health_follows_the_channels_last_real_outcome_not_the_token_file(serve, fake, tmp_path):
    write_token_file(tmp_path / "token.json", fake, expired=True)
    fake.revoke_token()  # the token file is there, but Google no longer honours it
    s = serve(configured=False, GMAIL_API_ENDPOINT=fake.url, GMAIL_TOKEN_URI=fake.token_uri)
    # The server checks the channel with one cheap call at start: a token present is not a channel alive.
    body = wait_until(lambda: (b := health(s))["checks"]["gmail"].get("state") == "auth_error" and b,
                      message="/health to report the revoked token")
    assert body["status"] == "degraded" and body["checks"]["gmail"]["status"] == "degraded"
    assert "gmail_auth" in body["checks"]["gmail"]["detail"] and body["checks"]["gmail"]["seen_by"] == "mcp-email"


def test_health_reports_what_the_watcher_saw_and_what_the_servers_own_calls_see(srv, fake):
    wait_until(lambda: health(srv)["checks"]["gmail"].get("state") == "ok", message="the start-up probe")
    srv.state.set_channel("gmail", "auth_error", "Gmail authorization expired or was revoked", by="watcher-gmail")
    body = wait_until(lambda: (b := health(srv))["status"] == "degraded" and b, message="the watcher's finding")
    assert body["checks"]["gmail"]["seen_by"] == "watcher-gmail"
    # The owner signs in again; the server's next real call succeeds, and health says so.
    assert requests.get(f"{srv.url}/receive-email", timeout=10).status_code == 200
    wait_until(lambda: health(srv)["status"] == "healthy", message="health after a successful call")
    fake.inject("/messages", 503)
    assert requests.get(f"{srv.url}/receive-email", timeout=10).status_code == 503
    wait_until(lambda: health(srv)["checks"]["gmail"].get("state") == "unavailable", message="the outage")


def test_receive_email_over_rest_and_mcp(srv, fake):
    mid = fake.add_message("Jane Doe <jane@example.com>", fake.email, "Invoice", "Please send the invoice.",
                           html="<p>Please send the <b>invoice</b>.</p>")
    fake.add_message("x@example.com", fake.email, "Old", "read already", labels=("INBOX",))
    rest = requests.get(f"{srv.url}/receive-email", params={"max_results": "5"}, timeout=10).json()
    [msg] = rest["data"]["messages"]
    assert msg["id"] == mid and msg["from"] == "Jane Doe <jane@example.com>" and msg["subject"] == "Invoice"
    assert msg["body_text"].strip() == "Please send the invoice." and "<b>invoice</b>" in msg["body_html"]
    assert rest["data"]["next_page_token"] is None
    result = call_tool(srv.url, "receive_email", {"max_results": 5})
    assert result["isError"] is False and result["structuredContent"]["data"] == rest["data"]
    everything = requests.get(f"{srv.url}/receive-email", params={"query": "in:inbox"}, timeout=10).json()
    assert len(everything["data"]["messages"]) == 2


def test_process_email_makes_one_task_over_rest_and_mcp(srv, fake):
    mid = fake.add_message("Jane Doe <jane@example.com>", fake.email, "Invoice", "Please send it.")
    first = requests.post(f"{srv.url}/process-email", json={"message_id": mid}, timeout=10).json()["data"]
    assert first["created"] is True and first["skipped"] is None
    again = call_tool(srv.url, "process_email", {"message_id": mid})["structuredContent"]["data"]
    assert again == {**first, "created": False}
    [task] = md_files(srv.vault.root / "Needs_Action")
    meta = front(task)
    assert task.stem == first["task_id"] and meta["type"] == "email" and meta["source_id"] == mid
    assert [r["actor"] for r in read_records(srv.vault.root) if r["action_type"] == "task.created"] == ["mcp-email"]
    sent = fake.add_raw(b"From: owner@example.com\r\nTo: a@b.c\r\nSubject: mine\r\n\r\nhi\r\n", labels=("SENT",))
    skipped = requests.post(f"{srv.url}/process-email", json={"message_id": sent}, timeout=10).json()["data"]
    assert skipped["skipped"] and skipped["task_id"] is None
    missing = requests.post(f"{srv.url}/process-email", json={"message_id": "ffff"}, timeout=10)
    assert missing.status_code == 404 and missing.json()["error_code"] == "NOT_FOUND"
    bad = requests.post(f"{srv.url}/process-email", json={"message_id": "../../etc"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "message_id"
    assert len(md_files(srv.vault.root / "Needs_Action")) == 1


def test_gmail_watch_reports_the_watchers_state(srv):
    srv.state.set_cursor("gmail.history_id", "4242")
    srv.state.heartbeat("watcher-gmail", "healthy", "last poll 10:00:00, 0 new", pid=123)
    rest = requests.get(f"{srv.url}/gmail-watch", timeout=10).json()["data"]
    assert rest["cursor"]["history_id"] == "4242" and rest["query"] == "is:unread is:important"
    assert rest["watcher"]["status"] == "healthy" and rest["watcher"]["pid"] == 123
    assert rest["backlog"] == 0 and rest["tasks_created"] == 0
    assert call_tool(srv.url, "gmail_watch", {})["structuredContent"]["data"] == rest


# --- the approval gate -----------------------------------------------------------------------------

def test_send_without_grant_files_a_request_and_sends_nothing(srv, fake):
    r = send(srv, {**MAIL, "cc": ""}, task_id="client-7")
    body = r.json()
    assert r.status_code == 403 and body["error_code"] == "APPROVAL_REQUIRED"
    [request] = md_files(srv.vault.root / "Pending_Approval")
    meta = front(request)
    # A client's task id never becomes the request's: it could take a real task's plan slot.
    assert meta["id"] == body["approval_id"] and meta["task_id"].startswith("mcp-")
    assert (meta["skill"], meta["action"], meta["reason"]) == ("gmail_skill", "send_email",
                                                               "requested by an MCP client; needs your approval")
    assert meta["params"] == {"to": "jane@example.com", "subject": "Quote", "cc": ""}  # the body is the Message
    assert "## Message\nDear Jane, here is the quote." in request.read_text("utf-8")
    assert fake.sent == [] and not any(path.endswith("/send") for _, path in fake.requests)
    asked_again = send(srv, {**MAIL, "cc": ""}).json()  # the same call again: the same request, no second file
    assert asked_again["approval_id"] == body["approval_id"] and len(md_files(srv.vault.root / "Pending_Approval")) == 1
    [record] = [r for r in read_records(srv.vault.root) if r["action_type"] == "approval.requested"]
    assert record["actor"] == "mcp-email" and record["result"]["approval_id"] == body["approval_id"]


def test_owner_grant_sends_exactly_once_and_replays_the_result(srv, fake):
    edited = "Dear Jane, the quote is attached. Kind regards, Sam"
    grant = owner_grant(srv, MAIL, edited=edited)
    call = {**MAIL, "body": edited}
    first = send(srv, call, grant_id=grant, task_id="t-1")
    assert first.status_code == 200, first.text
    assert len(fake.sent) == 1 and fake.sent[0]["body"].strip() == edited and fake.sent[0]["to"] == MAIL["to"]
    assert fake.sent[0]["headers"]["X-AI-Employee-Key"] == grant
    again = send(srv, call, grant_id=grant, task_id="t-1")
    assert again.status_code == 200 and again.json()["data"] == first.json()["data"]
    assert len(fake.sent) == 1
    assert srv.approvals.get(grant)["status"] == "executed"
    assert srv.state.ledger_get(f"email:{grant}")["status"] == "succeeded"
    sends = [r for r in read_records(srv.vault.root) if r["action_type"] == "send_email"]
    assert [(r["actor"], r["approved_by"], r["target"]) for r in sends] == [("mcp-email", "owner", MAIL["to"])] * 2
    # The text the owner did not approve is not covered by the grant.
    stale = send(srv, MAIL, grant_id=grant)
    assert stale.status_code == 403 and stale.json()["approval_id"] != grant and len(fake.sent) == 1


def test_grant_must_match_action_skill_status_and_params(srv, fake):
    grant = owner_grant(srv, MAIL)
    for params in ({**MAIL, "to": "mallory@example.com"}, {**MAIL, "cc": "boss@example.com"}):
        r = send(srv, params, grant_id=grant)
        assert r.status_code == 403 and r.json()["approval_id"] != grant
    other_skill = owner_grant(srv, MAIL, skill="test_skill", task_id="t-2")
    other_action = owner_grant(srv, MAIL, action="draft", task_id="t-3")
    pending = srv.approvals.request(task_id="t-4", step_no=1, skill="gmail_skill", action="send_email", params=MAIL,
                                    text_param="body", risk="medium", reason="test", subject="x")["id"]
    for bad in (other_skill, other_action, pending, "apr-unknown"):
        r = send(srv, MAIL, grant_id=bad)
        assert r.status_code == 403 and r.json()["error_code"] == "APPROVAL_REQUIRED", bad
    assert fake.sent == []
    assert send(srv, MAIL, grant_id=grant).status_code == 200 and len(fake.sent) == 1


def test_reply_grant_sends_in_the_thread(srv, fake):
    original = fake.add_message("Jane <jane@example.com>", fake.email, "Invoice", "Send it please")
    header = GmailConnector(GmailConfig.from_env(srv.settings.env)).get_message(original)["message_id_header"]
    reply = {"to": "jane@example.com", "subject": "Re: Invoice", "body": "Here it is.", "in_reply_to": header,
             "references": header, "thread_id": original, "cc": ""}
    grant = owner_grant(srv, reply, action="reply")
    r = send(srv, reply, grant_id=grant)
    assert r.status_code == 200 and r.json()["data"]["thread_id"] == original
    [sent] = fake.sent
    assert sent["thread_id"] == original and "Cc" not in sent["headers"]
    assert sent["headers"]["In-Reply-To"] == header and sent["headers"]["References"] == header


def test_a_grant_is_spent_by_its_execution_and_replays_the_recorded_result(srv, fake):
    PlanStore(srv.state).add_steps("task-9", "rule_based", [ProposedStep("gmail_skill", "reply", MAIL, "Reply")])
    grant = owner_grant(srv, MAIL, action="reply", task_id="task-9")
    first = send(srv, MAIL, grant_id=grant)
    assert first.status_code == 200 and srv.approvals.get(grant)["status"] == "executed" and len(fake.sent) == 1
    # The agent interface, recovering from a crash, asks again with the same grant: same answer, no second mail.
    again = send(srv, MAIL, grant_id=grant)
    assert again.json()["data"]["id"] == first.json()["data"]["id"] and len(fake.sent) == 1


def test_calls_for_a_planned_task_never_reuse_its_steps_approval(srv):
    PlanStore(srv.state).add_steps("task-8", "rule_based", [ProposedStep("gmail_skill", "reply", MAIL, "Reply")])
    mine = owner_grant(srv, MAIL, action="reply", task_id="task-8")
    r = send(srv, {**MAIL, "to": "x@example.com"}, task_id="task-8")
    filed = srv.approvals.get(r.json()["approval_id"])
    assert filed["id"] != mine and filed["task_id"].startswith("mcp-")
    assert srv.approvals.get(mine)["status"] == "approved"


# --- exactly once across crashes and races ---------------------------------------------------------

def test_unknown_outcome_is_reconciled_before_any_resend(srv, fake):
    found_grant = owner_grant(srv, MAIL)
    GmailConnector(GmailConfig.from_env(srv.settings.env)).send(**MAIL, idempotency_key=found_grant)
    srv.state.ledger_begin(f"email:{found_grant}", "mcp-email", "send_email")  # crashed mid-send, it went out
    r = send(srv, MAIL, grant_id=found_grant)
    assert r.status_code == 200 and r.json()["data"]["reconciled"] is True and len(fake.sent) == 1

    lost_grant = owner_grant(srv, {**MAIL, "to": "bob@example.com"}, task_id="t-2")
    srv.state.ledger_begin(f"email:{lost_grant}", "mcp-email", "send_email")  # crashed before it went out
    assert send(srv, {**MAIL, "to": "bob@example.com"}, grant_id=lost_grant).status_code == 200
    assert [m["to"] for m in fake.sent] == ["jane@example.com", "bob@example.com"]


def due_now(s, grant: str) -> None:
    """Bring a queued write's next attempt forward, instead of waiting out its delay."""
    with s.state.transaction() as db:
        db.execute("UPDATE outbox SET next_attempt=0 WHERE key=?", (f"email:{grant}",))


def requeued(s, grant: str) -> bool:
    """The attempt that was due is over: the write waits again (or is settled)."""
    entry = s.state.outbox_entry(f"email:{grant}")
    return entry is None or entry["next_attempt"] > time.time()


def test_upstream_failure_mid_send_is_queued_then_reconciled_and_sent_once(srv, fake):
    grant = owner_grant(srv, MAIL)
    fake.inject("messages/send", 503)
    r = send(srv, MAIL, grant_id=grant)
    body = r.json()
    assert r.status_code == 503 and body["error_code"] == "UPSTREAM_UNAVAILABLE"
    assert body["queued"] is True and body["retry_after"] >= 1 and r.headers["Retry-After"]
    assert srv.state.ledger_get(f"email:{grant}")["status"] == "unknown"  # a 503 may have sent it
    assert srv.approvals.get(grant)["status"] == "approved"
    # Asking again before it is due neither jumps the queue nor reaches Gmail.
    early = send(srv, MAIL, grant_id=grant)
    assert early.status_code == 503 and early.json()["queued"] is True and len(fake.sent) == 0
    sends_before = sum(1 for m, p in fake.requests if p.endswith("/messages/send"))
    due_now(srv, grant)
    # The server's outbox worker tries it again by itself: it looks for the key first, then sends.
    wait_until(lambda: srv.state.ledger_get(f"email:{grant}")["status"] == "succeeded", message="the retried send")
    assert len(fake.sent) == 1 and srv.state.outbox_entry(f"email:{grant}") is None
    assert sum(1 for m, p in fake.requests if p.endswith("/messages/send")) == sends_before + 1
    assert srv.approvals.get(grant)["status"] == "executed"
    again = send(srv, MAIL, grant_id=grant)
    assert again.status_code == 200 and again.json()["data"]["id"] == fake.sent[0]["id"] and len(fake.sent) == 1


def test_a_rate_limited_send_waits_for_the_platform_then_goes_out_once_by_itself(srv, fake):
    grant = owner_grant(srv, MAIL)
    fake.inject("messages/send", 429, headers={"Retry-After": "1"})
    r = send(srv, MAIL, grant_id=grant)
    assert r.status_code == 429 and r.json()["queued"] is True and r.json()["retry_after"] == 1
    assert srv.state.ledger_get(f"email:{grant}")["status"] == "pending"  # a 429 sent nothing
    # Nobody calls again: the worker sends it once the platform's wait is over.
    wait_until(lambda: len(fake.sent) == 1, timeout=15, message="the send after Retry-After")
    wait_until(lambda: len([r for r in read_records(srv.vault.root) if r["action_type"] == "send_email"]) == 2,
               message="the audit record of the send")
    records = [r for r in read_records(srv.vault.root) if r["action_type"] == "send_email"]
    assert [(r["result"]["success"], r["result"].get("queued")) for r in records] == [(False, True), (True, None)]
    wait_until(lambda: requests.get(f"{srv.url}/health", timeout=10).json()["checks"]["outbox"]["queued"] == 0,
               message="/health to show the outbox empty")  # refreshed with each heartbeat


def test_an_outage_that_also_blocks_the_lookup_keeps_the_write_queued_not_looping(srv, fake):
    """After an unknown outcome the server looks in Gmail before sending again; when Gmail cannot
    even be searched, the write waits its next turn (it is neither sent blindly, nor failed, nor
    retried every second)."""
    grant = owner_grant(srv, MAIL)
    fake.inject("messages/send", 503)
    assert send(srv, MAIL, grant_id=grant).json()["queued"] is True
    fake.inject("/messages", 503, times=1000)  # listing (the lookup) fails as well
    before = len(fake.requests)
    due_now(srv, grant)
    wait_until(lambda: requeued(srv, grant), message="the write to wait again")
    entry = srv.state.outbox_entry(f"email:{grant}")
    assert entry["next_attempt"] - time.time() > 30 and "503" in entry["last_error"]
    assert srv.state.ledger_get(f"email:{grant}")["status"] == "unknown" and fake.sent == []
    assert srv.approvals.get(grant)["status"] == "approved"
    again = send(srv, MAIL, grant_id=grant).json()
    assert again["queued"] is True and len(fake.requests) - before <= 2  # one lookup, then nothing


def test_a_write_that_keeps_failing_gives_up_with_the_reason(serve, fake):
    s = serve()
    grant = owner_grant(s, {**MAIL, "subject": "Again"}, task_id="t-2")
    fake.inject("messages/send", 503, times=100)
    key = f"email:{grant}"
    assert send(s, {**MAIL, "subject": "Again"}, grant_id=grant).json()["queued"] is True
    for attempt in range(2, 9):  # RetryPolicy.attempts = 8
        due_now(s, grant)
        wait_until(lambda: requeued(s, grant), message=f"attempt {attempt}")
        assert s.state.ledger_get(key)["attempts"] == attempt
    assert s.state.ledger_get(key)["status"] == "failed"
    assert "gave up after 8 attempts" in s.state.ledger_get(key)["error"] and s.state.outbox_entry(key) is None
    final = send(s, {**MAIL, "subject": "Again"}, grant_id=grant)
    assert final.status_code == 502 and final.json()["error_code"] == "UPSTREAM_ERROR"
    assert "gave up after 8 attempts" in final.json()["error"]
    assert "queued" not in final.json() and fake.sent == []


def test_what_the_owner_approves_is_what_every_recipient_reads_the_html_part_included(srv, fake):
    mail = {**MAIL, "html": "<p>Dear Jane, here is the <b>quote</b>: 1,200.</p>"}
    filed = send(srv, mail)  # an MCP client asks; the request shows the owner the HTML part too
    assert filed.status_code == 403
    [path] = md_files(srv.vault.root / "Pending_Approval")
    text = path.read_text("utf-8")
    assert "<b>quote</b>: 1,200" in text and "html" not in front(path)["params"]
    edited = "Dear Jane, the price is 900.\n\nBest regards"
    path.write_text(text.replace(MAIL["body"], edited), "utf-8")
    grant = srv.approvals.accept(srv.vault.move(path, srv.vault.folder("Approved")))
    assert grant.params["body"] == edited and "1,200" not in grant.params["html"]
    assert send(srv, grant.params, grant_id=grant.id).status_code == 200
    [sent] = fake.sent
    assert sent["body"].strip() == edited and "1,200" not in sent["html"]
    assert "Dear Jane, the price is 900." in sent["html"] and "Best regards" in sent["html"]


@pytest.mark.parametrize("html, body", [
    ("<p>hi</p>\n## Message\nPAY 5000 NOW TO ACCT 1\n", MAIL["body"]),   # a heading inside the shown HTML
    ("<p>Dear Jane, here is the quote.</p>", "\nDear Jane, here is the quote.\n\n"),  # outer blank lines
])
def test_an_unedited_request_is_approved_exactly_as_it_was_asked(srv, fake, html, body):
    mail = {**MAIL, "body": body, "html": html}
    assert send(srv, mail).status_code == 403
    [path] = md_files(srv.vault.root / "Pending_Approval")
    grant = srv.approvals.accept(srv.vault.move(path, srv.vault.folder("Approved")))
    assert grant.params == mail  # nothing taken from the HTML, nothing counted as an edit


def test_an_unedited_html_part_goes_out_as_the_owner_saw_it(srv, fake):
    mail = {**MAIL, "html": "<p>Dear Jane, here is the <b>quote</b>.</p>"}
    grant = owner_grant(srv, mail)
    assert send(srv, mail, grant_id=grant).status_code == 200
    assert fake.sent[0]["html"].strip() == mail["html"]


@pytest.mark.parametrize("to", ["jane@example.com; x@evil.example", "jane@example.com x@evil.example", "Jane"])
def test_a_recipient_list_that_does_not_read_as_addresses_is_refused(srv, fake, to):
    r = send(srv, {**MAIL, "to": to})
    assert r.status_code == 400 and r.json()["field"] == "to" and "cannot read" in r.json()["error"]
    assert md_files(srv.vault.root / "Pending_Approval") == []


def test_concurrent_calls_with_one_grant_send_once(srv, fake):
    grant = owner_grant(srv, MAIL)
    held = fake.hold("messages/send")
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(send(srv, MAIL, grant_id=grant).json()))
               for _ in range(3)]
    threads[0].start()
    assert held.arrived.wait(10)  # the first call is at Gmail...
    for t in threads[1:]:
        t.start()
    ledger = srv.server.app[LEDGER_KEY]
    # ...and the other two are inside the server, queued behind it on the grant's ledger entry.
    wait_until(lambda: ledger.waiting(grant) == 2, message="the rival calls to wait on the ledger")
    held.release()
    for t in threads:
        t.join(30)
    assert [r["success"] for r in results] == [True] * 3 and len({r["data"]["id"] for r in results}) == 1
    assert len(fake.sent) == 1


# --- not configured, dry run, security -------------------------------------------------------------

def test_not_configured_server_is_up_and_every_tool_says_so(serve, fake):
    s = serve(configured=False)
    health = requests.get(f"{s.url}/health", timeout=10).json()
    assert health["status"] == "not_configured" and health["checks"]["gmail"]["status"] == "not_configured"
    answers = [send(s, MAIL), requests.get(f"{s.url}/receive-email", timeout=10),
               requests.post(f"{s.url}/process-email", json={"message_id": "abc"}, timeout=10),
               requests.get(f"{s.url}/gmail-watch", timeout=10)]
    assert [(a.status_code, a.json()["error_code"]) for a in answers] == [(503, "NOT_CONFIGURED")] * 4
    assert call_tool(s.url, "send_email", MAIL)["structuredContent"]["error_code"] == "NOT_CONFIGURED"
    assert md_files(s.vault.root / "Pending_Approval") == [] and fake.requests == []


def test_dry_run_reaches_nothing_outside(serve, fake):
    s = serve(DRY_RUN="true")
    grant = owner_grant(s, MAIL)
    r = send(s, MAIL, grant_id=grant)
    assert r.status_code == 200 and r.json()["data"]["dry_run"] is True
    assert "jane@example.com" in r.json()["data"]["would"]
    assert fake.sent == [] and not any(path.endswith("/send") for _, path in fake.requests)
    assert s.approvals.get(grant)["status"] == "approved"  # a dry run spends nothing


def test_bearer_token_and_origin(serve):
    s = serve(MCP_AUTH_TOKEN="s3cret-token")
    assert requests.get(f"{s.url}/health", timeout=10).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert requests.get(f"{s.url}/gmail-watch", headers=headers, timeout=10).status_code == 401
        assert rpc(s.url, "tools/list", headers=headers).status_code == 401
    good = {"Authorization": "Bearer s3cret-token"}
    assert requests.get(f"{s.url}/gmail-watch", headers=good, timeout=10).status_code == 200
    assert rpc(s.url, "tools/list", headers=good).status_code == 200
    evil = requests.get(f"{s.url}/gmail-watch", headers={**good, "Origin": "https://evil.example"}, timeout=10)
    assert evil.status_code == 403


# --- MCP: the official client and the wire snapshot ------------------------------------------------

def test_official_mcp_client(srv, fake):
    fake.add_message("Jane <jane@example.com>", fake.email, "Hello", "Hi there")

    async def scenario(url: str):
        async with Client(url) as client:
            assert client.session.server_info.name == "ai-employee-email"  # initialize happened
            listing = await client.list_tools()
            read = await client.call_tool("receive_email", {"max_results": 3})
            write = await client.call_tool("send_email", {**MAIL, "task_id": "from-claude"})
            return listing, read, write

    listing, read, write = asyncio.run(asyncio.wait_for(scenario(f"{srv.url}/mcp"), 30))
    tools = {t.name: t for t in listing.tools}
    assert set(tools) == {"send_email", "receive_email", "process_email", "gmail_watch"}
    assert tools["send_email"].annotations.read_only_hint is False and tools["receive_email"].annotations.read_only_hint
    assert read.is_error is False and read.structured_content["data"]["messages"][0]["subject"] == "Hello"
    assert write.is_error is True and write.structured_content["error_code"] == "APPROVAL_REQUIRED"
    [request] = md_files(srv.vault.root / "Pending_Approval")
    assert front(request)["id"] == write.structured_content["approval_id"] and fake.sent == []


def test_tools_list_snapshot(srv):
    wire = rpc(srv.url, "tools/list").json()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(wire, indent=2, ensure_ascii=False) + "\n", "utf-8")
    assert wire == json.loads(SNAPSHOT.read_text("utf-8")), "tools/list changed: rerun with UPDATE_SNAPSHOTS=1, review"


# --- the skill against the server ------------------------------------------------------------------

def test_gmail_skill_sends_through_the_server_and_drafts_locally(serve, fake):
    s = serve()
    settings = Settings.from_env({**s.settings.env, "EMAIL_MCP_PORT": s.url.rsplit(":", 1)[1]})
    registry = SkillRegistry().discover(ROOT / ".qwen" / "skills")
    grant = owner_grant(s, MAIL)
    ctx = ActionContext(idempotency_key=grant, task_id="t-1", grant_id=grant, dry_run=False, settings=settings)
    first = registry.invoke("gmail_skill", "send_email", MAIL, ctx)
    again = registry.invoke("gmail_skill", "send_email", MAIL, ctx)
    assert first.success and again.data == first.data and len(fake.sent) == 1
    refused = registry.invoke("gmail_skill", "send_email", {**MAIL, "to": "eve@example.com"}, ctx)
    assert not refused.success and refused.error_code == "APPROVAL_REQUIRED"
    draft = registry.invoke("gmail_skill", "draft", {**MAIL, "in_reply_to": "<a@b>"}, ctx)
    assert draft.success
    assert draft.data["preview"].startswith("To: jane@example.com\nSubject: Quote\nIn-Reply-To: <a@b>\n\nDear Jane")
    not_a_reply = registry.invoke("gmail_skill", "reply", {**MAIL, "in_reply_to": "", "thread_id": "t"}, ctx)
    assert not not_a_reply.success and not_a_reply.error_code == "VALIDATION_ERROR"
    assert registry.action("gmail_skill", "draft").read_only and len(fake.sent) == 1


# --- the real process ------------------------------------------------------------------------------

def test_runs_as_a_process_on_a_fresh_machine(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GMAIL_", "MCP_", "VAULT_", "STATE_"))}
    env.update(email_env(tmp_path, None, EMAIL_MCP_PORT=str(port)), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "mcp_servers.email_server"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def health():
            assert proc.poll() is None, proc.stderr.read()
            with contextlib.suppress(requests.ConnectionError):
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        assert wait_until(health, timeout=20, message="the server to answer")["status"] == "not_configured"
        db = sqlite3.connect(tmp_path / "vault" / ".state" / "state.db")
        assert db.execute("SELECT pid FROM health WHERE process='mcp-email'").fetchone() == (proc.pid,)
        db.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_a_grant_spent_in_a_dry_run_does_not_send_once_live(srv, fake):
    grant = owner_grant(srv, MAIL)
    srv.approvals.set_status(grant, "executed")  # what the agent interface records after a dry run
    r = send(srv, MAIL, grant_id=grant)
    assert r.status_code == 403 and r.json()["error_code"] == "APPROVAL_REQUIRED"
    assert r.json()["approval_id"] != grant and fake.sent == []


def test_gmail_skills_checked_in_schema_is_the_servers_send_email_input(srv):
    shipped = json.loads((ROOT / ".qwen" / "skills" / "gmail_skill" / "send_email.schema.json").read_text("utf-8"))
    [listed] = [t["inputSchema"] for t in rpc(srv.url, "tools/list").json()["result"]["tools"] if t["name"] == "send_email"]
    call_fields = {"grant_id", "task_id"}
    assert shipped["properties"] == {k: v for k, v in listed["properties"].items() if k not in call_fields}
    assert shipped["required"] == listed["required"] and shipped["additionalProperties"] is False


def test_the_loop_and_the_agent_interface_load_neither_aiohttp_nor_pydantic():
    """Skills learn the servers' schemas from checked-in JSON: the engine's processes stay light."""
    code = ("import sys, reasoning_loop, agent_interface; from core.config import Settings; "
            "from core.engine.skills import SkillRegistry; SkillRegistry().discover(Settings.from_env().skills_dir); "
            "print(sorted(m for m in ('aiohttp', 'pydantic', 'pydantic_core', 'googleapiclient') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
