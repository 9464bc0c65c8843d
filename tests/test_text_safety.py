"""Text from outside can never make the product's own files unreadable: whatever it writes, it reads
back (property tests over the task-file and document round trips), and the two inputs that broke it
(a NUL in an email subject, a newline in a dropped file's name) become ordinary tasks."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from core.documents import Document
from core.tasks import Task, build_task, write_new_task
from core.text import clean_text, encodable, one_line
from core.vault import Vault
from mcp_servers.gmail.intake import email_task
from tests.conftest import md_files, wait_until

# Every code point, lone surrogates and controls included: what a header, a name or a JSON escape can carry.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
KEYS = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=12)
VALUES = st.recursive(st.none() | st.booleans() | st.integers() | ANY_TEXT,
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def expected(value):
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, list):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    return value


@PROPERTY
@given(meta=st.dictionaries(KEYS, VALUES, max_size=6), body=ANY_TEXT)
def test_every_document_the_product_renders_parses_back_to_what_it_holds(meta, body):
    doc = Document.from_bytes(Document(meta, body).render().encode("utf-8"))
    assert doc.meta == expected(meta)
    assert doc.body == encodable(body).replace("\x00", "")


@PROPERTY
@given(title=ANY_TEXT, content=ANY_TEXT, name=ANY_TEXT, sender=ANY_TEXT)
def test_every_task_written_from_outside_text_loads_back(tmp_path_factory, title, content, name, sender):
    vault = Vault(tmp_path_factory.mktemp("v"), durable=False)
    (vault.root / "Needs_Action").mkdir()
    doc = build_task("20261201T000000Z-file_drop-0123456789", "file_drop", "filesystem", "x", title=title,
                     content=content, extra={"file_name": name, "from": sender, "labels": [name]})
    task = Task.load(write_new_task(vault, doc))
    assert task.title == (one_line(title) or "file_drop")
    assert "\n" not in task.title and all(c >= " " for c in task.title)
    assert task.meta["file_name"] == clean_text(name) and task.meta["from"] == clean_text(sender)
    assert task.meta["labels"] == [clean_text(name)]
    assert clean_text(content).rstrip() in task.doc.body


def test_a_nul_in_an_email_subject_makes_an_ordinary_task(tmp_path):
    vault = Vault(tmp_path)
    (vault.root / "Needs_Action").mkdir()
    msg = {"id": "18c0", "thread_id": "18c0", "from": "Jane <jane@example.com>", "subject": "Invoice\x00 due\x1b[2J",
           "labels": ["INBOX"], "body_text": "Hello\x00 there\r\nbye", "to": "me@example.com"}
    task = Task.load(write_new_task(vault, email_task("20261201T000000Z-email-0123456789", msg)))
    assert task.title == "Email from Jane: Invoice due[2J" and task.meta["subject"] == "Invoice due[2J"
    assert "Hello there\nbye" in task.doc.body


def test_a_newline_in_a_dropped_files_name_makes_an_ordinary_task(suite):
    suite.start_all()
    name = "report\n---\nstatus: done\n.txt"
    suite.drop(name, "the quarterly figures")
    task = wait_until(lambda: md_files(suite.folder("Pending_Approval")) and md_files(suite.folder("In_Progress")),
                      message="the task to be planned")[0]
    meta = Task.load(task).meta
    assert meta["file_name"] == "report --- status: done .txt"
    assert meta["status"] == "waiting_for_approval" and meta["size"] == len("the quarterly figures")
    assert md_files(suite.folder("Quarantine")) == []


@pytest.mark.parametrize("name", ["a\x00b", "\ud800.txt", "x\u202etxt.exe"])
def test_quarantine_notes_read_back_whatever_the_file_was_called(tmp_path, name):
    vault = Vault(tmp_path / "vault")
    vault.ensure_layout()
    raw = os.fsencode(name.replace("\x00", "")) if "\ud800" not in name else b"\xed\xa0\x80.txt"
    src = vault.root / "Inbox" / os.fsdecode(raw)
    src.write_bytes(b"")
    dest = vault.quarantine(src, f"the file {name!r} is empty", actor="test")
    note = Document.from_bytes(Path(f"{dest}.reason.md").read_bytes())
    assert note.meta["type"] == "quarantine" and note.meta["file"] == encodable(dest.name)
    assert "\x00" not in note.body and "\u202e" not in note.body
