"""The Gmail connector, driving the real google-api-python-client against the wire-level fake."""
from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from core.errors import AuthError, NotConfiguredError, RateLimitError, TransientError, ValidationError
from mcp_servers.gmail import (
    GmailAuthError,
    GmailConfig,
    GmailConnectionError,
    GmailConnector,
    GmailHistoryExpiredError,
    GmailRateLimitError,
    GmailResponseError,
)
from tests.fakes.fake_gmail import FakeGmail, write_token_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake() -> Iterator[FakeGmail]:
    with FakeGmail() as server:
        yield server


@pytest.fixture
def token_file(tmp_path: Path, fake: FakeGmail) -> Path:
    return write_token_file(tmp_path / "token.json", fake)


def make_connector(fake: FakeGmail, token_file: Path, *, endpoint: str | None = None, timeout: float = 5.0):
    config = GmailConfig(
        credentials_file=token_file.parent / "credentials.json",
        token_file=token_file,
        api_endpoint=endpoint or fake.url,
        token_uri=fake.token_uri,
        timeout=timeout,
    )
    return GmailConnector(config)


@pytest.fixture
def gmail(fake: FakeGmail, token_file: Path) -> GmailConnector:
    return make_connector(fake, token_file)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- reading ------------------------------------------------------------------------------------


def test_profile(gmail: GmailConnector, fake: FakeGmail) -> None:
    assert gmail.get_profile() == {"emailAddress": "owner@example.com", "historyId": fake.history_id}


def test_list_uses_configured_query_and_paginates(gmail: GmailConnector, fake: FakeGmail) -> None:
    first = fake.add_message("a@example.com", fake.email, "First", "one")
    fake.add_message("b@example.com", fake.email, "Already read", "two", labels=("IMPORTANT", "INBOX"))
    third = fake.add_message("c@example.com", fake.email, "Not important", "three", labels=("UNREAD", "INBOX"))
    second = fake.add_message("d@example.com", fake.email, "Second", "four")

    page = gmail.list_messages(max_results=1)  # default query: is:unread is:important
    assert page["messages"] == [{"id": second, "thread_id": second}]
    rest = gmail.list_messages(page_token=page["next_page_token"], max_results=1)
    assert rest == {"messages": [{"id": first, "thread_id": first}], "next_page_token": None}

    assert [m["id"] for m in gmail.list_messages('"not important" -is:important')["messages"]] == [third]
    assert gmail.list_messages("subject:nothing-like-this") == {"messages": [], "next_page_token": None}


def test_get_message_parses_multipart_and_skips_attachments(gmail: GmailConnector, fake: FakeGmail) -> None:
    mid = fake.add_message(
        "Jane Doe <jane@example.com>",
        fake.email,
        "Invoice request — März",
        "Plain body, with ümlauts.",
        html="<p>HTML body</p>",
        attachments=[("invoice.txt", b"attachment text/plain must not become the body")],
        headers={"Cc": "boss@example.com", "References": "<root@mail.example.com>"},
    )

    msg = gmail.get_message(mid)

    assert msg["id"] == mid and msg["thread_id"] == mid
    assert msg["from"] == "Jane Doe <jane@example.com>"
    assert (msg["to"], msg["cc"]) == (fake.email, "boss@example.com")
    assert msg["subject"] == "Invoice request — März"
    assert msg["body_text"].strip() == "Plain body, with ümlauts."
    assert msg["body_html"].strip() == "<p>HTML body</p>"
    assert msg["labels"] == ["UNREAD", "IMPORTANT", "INBOX"]
    assert msg["message_id_header"].startswith("<") and msg["message_id_header"].endswith("@mail.example.com>")
    assert msg["references"] == "<root@mail.example.com>"
    assert msg["snippet"].startswith("Plain body")
    assert msg["date"]


def test_get_message_tolerates_single_part_html_only(gmail: GmailConnector, fake: FakeGmail) -> None:
    raw = (
        b"From: x@example.com\r\nSubject: only html\r\n"
        b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n<b>caf\xe9</b>\r\n"
    )
    mid = fake.add_raw(raw)
    msg = gmail.get_message(mid)
    assert (msg["body_text"], msg["body_html"].strip(), msg["to"], msg["cc"]) == ("", "<b>café</b>", "", "")


def _mixed(*parts: tuple[str, str, str | None]) -> bytes:
    """multipart/mixed from (subtype, text, attachment filename) triples."""
    msg = EmailMessage()
    msg["From"], msg["Subject"] = "x@example.com", "mixed"
    msg.make_mixed()
    for subtype, text, filename in parts:
        part = EmailMessage()
        part.set_content(text, subtype=subtype, disposition="attachment" if filename else None, filename=filename)
        msg.attach(part)
    return msg.as_bytes()


@pytest.mark.parametrize(
    ("raw", "text", "html"),
    [
        (
            _mixed(("html", "<i>only html</i>", None), ("plain", "notes, not the body", "notes.txt")),
            "",
            "<i>only html</i>",
        ),
        (_mixed(("plain", "first", None), ("plain", "second, inline", None)), "first", ""),
    ],
    ids=["text-attachment-is-not-the-body", "first-inline-text-wins"],
)
def test_get_message_picks_the_body_part(
    gmail: GmailConnector, fake: FakeGmail, raw: bytes, text: str, html: str
) -> None:
    msg = gmail.get_message(fake.add_raw(raw))
    assert (msg["body_text"].strip(), msg["body_html"].strip()) == (text, html)


def test_unknown_message_is_a_response_error(gmail: GmailConnector) -> None:
    with pytest.raises(GmailResponseError) as info:
        gmail.get_message("ffffffffffffffff")
    assert info.value.status == 404 and not isinstance(info.value, TransientError)


def test_mark_read(gmail: GmailConnector, fake: FakeGmail) -> None:
    mid = fake.add_message("a@example.com", fake.email, "Hi", "body")
    assert gmail.mark_read(mid) == {"id": mid, "labels": ["IMPORTANT", "INBOX"]}
    assert "UNREAD" not in fake.labels_of(mid)


# --- history ------------------------------------------------------------------------------------


def test_history_incremental_follows_pages(gmail: GmailConnector, fake: FakeGmail) -> None:
    start = gmail.get_profile()["historyId"]
    added = [fake.add_message("a@example.com", fake.email, f"n{i}", "x") for i in range(105)]
    gmail.mark_read(added[0])  # a label change is history, but not an added message

    result = gmail.history_since(start)

    assert result == {"message_ids": added, "history_id": fake.history_id}
    assert sum(1 for method, path in fake.requests if path.endswith("/history")) == 2  # default page is 100
    assert gmail.history_since(result["history_id"]) == {"message_ids": [], "history_id": fake.history_id}


def test_expired_history_raises_history_expired(gmail: GmailConnector, fake: FakeGmail) -> None:
    start = gmail.get_profile()["historyId"]
    fake.add_message("a@example.com", fake.email, "new", "x")
    fake.expire_history()
    with pytest.raises(GmailHistoryExpiredError):
        gmail.history_since(start)


# --- sending and reconciling --------------------------------------------------------------------


def test_send_threads_and_carries_the_idempotency_key(gmail: GmailConnector, fake: FakeGmail) -> None:
    original = fake.add_message("jane@example.com", fake.email, "Invoice", "please send it")
    parent = gmail.get_message(original)

    result = gmail.send(
        "jane@example.com",
        "Re: Invoice",
        "Attached.",
        cc="books@example.com",
        html="<p>Attached.</p>",
        in_reply_to=parent["message_id_header"],
        thread_id=parent["thread_id"],
        idempotency_key="task-42.reply",
    )

    assert len(fake.sent) == 1
    sent = fake.sent[0]
    assert result == {"id": sent["id"], "thread_id": original}
    assert (sent["to"], sent["cc"], sent["subject"]) == ("jane@example.com", "books@example.com", "Re: Invoice")
    assert sent["body"].strip() == "Attached." and sent["html"].strip() == "<p>Attached.</p>"
    assert sent["headers"]["In-Reply-To"] == parent["message_id_header"]
    assert sent["headers"]["References"] == parent["message_id_header"]
    assert sent["headers"]["X-AI-Employee-Key"] == "task-42.reply"
    assert sent["headers"]["Message-ID"] == "<task-42.reply@ai-employee.local>"
    assert sent["headers"]["Content-Type"].startswith("multipart/alternative")
    assert ("POST", "/gmail/v1/users/me/messages/send") in fake.requests  # JSON body, not media upload


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("subject", {"subject": "hi\r\nBcc: victim@example.com"}),
        ("idempotency_key", {"idempotency_key": "bad key>"}),
        ("to", {"to": " "}),
    ],
)
def test_send_rejects_injection_and_bad_input(gmail: GmailConnector, fake: FakeGmail, field: str, kwargs) -> None:
    args = {"to": "a@example.com", "subject": "s", "body": "b", "idempotency_key": "k1", **kwargs}
    with pytest.raises(ValidationError):
        gmail.send(args.pop("to"), args.pop("subject"), args.pop("body"), **args)
    assert fake.sent == []


def test_find_sent_by_key(gmail: GmailConnector, fake: FakeGmail) -> None:
    sent = gmail.send("a@example.com", "Hello", "body", idempotency_key="outbox-7")
    fake.add_message("x@example.com", fake.email, "mentions outbox-8", "outbox-8 in the text is not a send")

    assert gmail.find_sent_by_key("outbox-7") == sent["id"]
    assert gmail.find_sent_by_key("outbox-8") is None


def test_find_sent_by_key_survives_a_rewritten_message_id(gmail: GmailConnector, fake: FakeGmail) -> None:
    fake.rewrite_message_id = True
    sent = gmail.send("a@example.com", "Hello", "body", idempotency_key="outbox-9")
    assert fake.sent[0]["headers"]["Message-ID"] != "<outbox-9@ai-employee.local>"
    assert gmail.find_sent_by_key("outbox-9") == sent["id"]


# --- credentials --------------------------------------------------------------------------------


def test_refresh_honours_token_uri_and_rewrites_token_0600(tmp_path: Path, fake: FakeGmail) -> None:
    token_file = write_token_file(tmp_path / "token.json", fake, expired=True)
    os.chmod(token_file, 0o644)
    stale = json.loads(token_file.read_text())["token"]
    env = {"GMAIL_TOKEN_FILE": str(token_file), "GMAIL_API_ENDPOINT": fake.url, "GMAIL_TOKEN_URI": fake.token_uri}

    assert GmailConnector(GmailConfig.from_env(env)).get_profile()["emailAddress"] == fake.email

    assert (fake.refresh_count, fake.auth_failures) == (1, 0)  # refreshed before calling, not after a 401
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    saved = json.loads(token_file.read_text())
    assert saved["token"] != stale and saved["refresh_token"] == fake.refresh_token
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token.json"]  # no temp files left behind
    # The saved token is good: a fresh process uses it without refreshing again.
    GmailConnector(GmailConfig.from_env(env)).get_profile()
    assert (fake.refresh_count, fake.auth_failures) == (1, 0)


def test_revoked_refresh_is_an_auth_error_without_secrets(
    tmp_path: Path, fake: FakeGmail, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = write_token_file(tmp_path / "token.json", fake, expired=True)
    fake.revoke_token()
    with pytest.raises(GmailAuthError) as info:
        make_connector(fake, token_file).get_profile()
    assert isinstance(info.value, AuthError) and "gmail_auth" in str(info.value)
    saved = json.loads(token_file.read_text())
    for secret in (saved["refresh_token"], saved["client_secret"], saved["token"]):
        assert secret not in str(info.value) and secret not in repr(info.value.args)
        assert secret not in caplog.text


def test_401_after_refresh_is_an_auth_error(gmail: GmailConnector, fake: FakeGmail, token_file: Path) -> None:
    access = json.loads(token_file.read_text())["token"]
    fake.inject("/profile", 401, times=2)
    with pytest.raises(GmailAuthError) as info:
        gmail.get_profile()
    assert access not in str(info.value)
    assert fake.refresh_count == 1  # one refresh-and-retry, then give up


def test_single_401_recovers_by_refreshing(gmail: GmailConnector, fake: FakeGmail) -> None:
    fake.inject("/profile", 401)
    assert gmail.get_profile()["emailAddress"] == fake.email
    assert fake.refresh_count == 1


def test_unreadable_token_file_is_an_auth_error(tmp_path: Path, fake: FakeGmail) -> None:
    token_file = tmp_path / "token.json"
    token_file.write_text('{"client_secret": "s3cr3t-value"')
    with pytest.raises(GmailAuthError) as info:
        make_connector(fake, token_file).get_profile()
    assert "gmail_auth" in str(info.value)
    chained = [info.value.__cause__, info.value.__context__]
    assert all(err is None or "s3cr3t-value" not in repr(vars(err)) + str(err) for err in chained)


def test_missing_token_is_not_configured(tmp_path: Path, fake: FakeGmail) -> None:
    gmail = make_connector(fake, tmp_path / "token.json")
    assert gmail.is_configured() is False
    with pytest.raises(NotConfiguredError):
        gmail.get_profile()
    assert fake.requests == []


# --- transport failures -------------------------------------------------------------------------


def test_429_is_rate_limited_with_retry_after(gmail: GmailConnector, fake: FakeGmail) -> None:
    fake.inject("/messages", 429, headers={"Retry-After": "7"})
    with pytest.raises(GmailRateLimitError) as info:
        gmail.list_messages()
    assert info.value.retry_after == 7.0 and isinstance(info.value, RateLimitError)


def test_403_rate_limit_reason_is_rate_limited(gmail: GmailConnector, fake: FakeGmail) -> None:
    fake.inject("GET", 403, reason="userRateLimitExceeded")
    with pytest.raises(GmailRateLimitError) as info:
        gmail.get_profile()
    assert info.value.retry_after is None


def test_403_without_rate_reason_is_auth(gmail: GmailConnector, fake: FakeGmail) -> None:
    fake.inject("GET", 403)
    with pytest.raises(GmailAuthError):
        gmail.get_profile()


def test_503_is_a_connection_error(gmail: GmailConnector, fake: FakeGmail) -> None:
    fake.inject("/history", 503)
    with pytest.raises(GmailConnectionError) as info:
        gmail.history_since(fake.history_id)
    assert info.value.retryable and "503" in str(info.value)
    assert gmail.history_since(fake.history_id)["message_ids"] == []  # no retry inside the connector


def test_connection_refused_is_a_connection_error(fake: FakeGmail, token_file: Path) -> None:
    gmail = make_connector(fake, token_file, endpoint=f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(GmailConnectionError):
        gmail.get_profile()


def test_timeout_is_a_connection_error(fake: FakeGmail, token_file: Path) -> None:
    fake.inject("/profile", None, delay=1.0)
    with pytest.raises(GmailConnectionError):
        make_connector(fake, token_file, timeout=0.2).get_profile()


# --- the sign-in command ------------------------------------------------------------------------


def test_gmail_auth_without_credentials_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "credentials.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GMAIL_CREDENTIALS_FILE": str(missing),
           "GMAIL_TOKEN_FILE": str(tmp_path / "token.json")}
    proc = subprocess.run(
        [sys.executable, "-m", "mcp_servers.gmail_auth"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert str(missing) in proc.stderr and "GMAIL_CREDENTIALS_FILE" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "token.json").exists()
