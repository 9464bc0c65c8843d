"""A corpus of bad input through Inbox/ and Needs_Action/ (DESIGN §2): each file ends where the
contract says, with a clear reason, nothing outside the vault is touched and no process dies."""
from __future__ import annotations

import os

import yaml
from inotify_simple import INotify, flags

from tests.conftest import md_files, wait_until


def quarantine_reasons(suite) -> dict[str, str]:
    """original name -> reason, from the ``.reason.md`` notes."""
    out = {}
    for note in suite.folder("Quarantine").glob("*.reason.md"):
        text = note.read_text("utf-8")
        meta = yaml.safe_load(text.split("---\n")[1])
        out[meta["original"].rsplit("/", 1)[-1]] = text.split("**Why:** ", 1)[1].split("\n")[0]
    return out


def tasks_by_file_name(suite) -> dict[str, dict]:
    out = {}
    for folder in ("Needs_Action", "In_Progress", "Completed", "Failed"):
        for path in md_files(suite.folder(folder)):
            meta = yaml.safe_load(path.read_text("utf-8").split("---\n")[1])
            if meta.get("type") == "file_drop":
                out[meta["file_name"]] = meta
    return out


def test_inbox_corpus(suite, tmp_path):
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("do not touch")
    suite.start_all()
    inbox = suite.folder("Inbox")
    big = os.urandom(1024) * (50 * 1024)  # 50 MiB
    suite.drop("big.bin", big)
    suite.drop("binary.dat", bytes(range(256)) * 10)
    suite.drop("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    suite.drop("report ..\\..\\evil.txt", "backslashes are legal in Linux names")
    long_name = "L" * 240 + ".txt"
    suite.drop(long_name, "long")
    suite.drop("résumé 日本語 🚀.txt", "unicode")
    raw_name = os.fsdecode(b"bad\xffname.txt")
    (suite.tmp / "staging").mkdir(exist_ok=True)
    (suite.tmp / "staging" / raw_name).write_bytes(b"x")
    os.rename(suite.tmp / "staging" / raw_name, inbox / raw_name)
    os.symlink(outside, inbox / "link-to-secret.txt")
    (inbox / "a-folder").mkdir()
    (inbox / "empty.txt").write_bytes(b"")
    (inbox / ".hidden-editor-swap").write_bytes(b"left alone, as the README says")
    # A file still being written: it must become one task with all of its bytes.
    with open(inbox / "slow.txt", "wb") as fh, INotify() as watch:
        fh.write(b"first half ")
        fh.flush()
        # Genuinely slow: the writer is still at it when the watcher, the file having held still
        # past its settle time, opens it to check whether anyone still writes (the lease test).
        watch.add_watch(inbox, flags.OPEN)
        wait_until(lambda: any(e.name == "slow.txt" for e in watch.read(timeout=100)), timeout=30,
                   message="the watcher to look at the file being written")
        fh.write(b"second half")

    expected_tasks = {"big.bin", "binary.dat", "latin1.txt", "report ..\\..\\evil.txt", long_name, "résumé 日本語 🚀.txt",
                      "bad\ufffdname.txt", "slow.txt"}
    wait_until(lambda: expected_tasks <= set(tasks_by_file_name(suite)), timeout=30,
               message=f"tasks for {expected_tasks - set(tasks_by_file_name(suite))}")
    wait_until(lambda: {"link-to-secret.txt", "a-folder", "empty.txt"} <= set(quarantine_reasons(suite)), timeout=30,
               message="the quarantined inputs")
    reasons = quarantine_reasons(suite)
    assert "symbolic links are not followed" in reasons["link-to-secret.txt"]
    assert "folders are not taken" in reasons["a-folder"]
    assert reasons["empty.txt"] == "the file is empty"
    tasks = tasks_by_file_name(suite)
    assert tasks["big.bin"]["size"] == len(big)
    stored = suite.vault / tasks["big.bin"]["file"]
    assert stored.stat().st_size == len(big)
    assert tasks["slow.txt"]["size"] == len(b"first half second half")
    for name in expected_tasks:
        path = (suite.vault / tasks[name]["file"]).resolve()
        assert (suite.vault / "Attachments").resolve() in path.parents, path
        assert path.name.startswith(tasks[name]["id"] + "__") and len(path.name.encode()) < 255
    assert outside.read_text() == "do not touch" and (suite.folder("Quarantine") / "link-to-secret.txt").is_symlink()
    assert [p.name for p in inbox.iterdir()] == [".hidden-editor-swap"]
    binary_task = next(p for p in md_files(suite.vault) if tasks["binary.dat"]["id"] in p.name and "PLAN" not in p.name)
    assert "no preview" in binary_task.read_text()
    wait_until(lambda: len(md_files(suite.folder("Pending_Approval"))) == len(expected_tasks), timeout=30,
               message="one approval request per task")
    suite.assert_alive()


def write(path, data: bytes) -> None:
    tmp = path.parent / f".tmp-{path.name}"
    tmp.write_bytes(data)
    os.rename(tmp, path)


def test_needs_action_corpus(suite, tmp_path):
    suite.start_all()
    na = suite.folder("Needs_Action")
    cases = {
        "broken-yaml.md": (b"---\nid: [unclosed\n---\nbody\n", "YAML frontmatter is invalid"),
        "missing-keys.md": (b"---\nid: x\ntype: email\n---\n# hi\n", "missing required key(s): source, created, status"),
        "no-front.md": (b"# just markdown\n", "no YAML frontmatter"),
        "binary.md": (b"---\x00\x01\x02", "binary"),
        "latin1.md": (b"---\nid: caf\xe9\n---\n", "not valid UTF-8"),
        "empty.md": (b"", "no YAML frontmatter"),
        "wrong-id.md": (b"---\nid: other\ntype: x\nsource: y\ncreated: 2026-01-01T00:00:00Z\nstatus: needs_action\n---\n",
                        "does not match the file name"),
        "list.md": (b"---\n- a\n- b\n---\n", "must be a mapping"),
        "notes.txt": (b"not a task", "not a task file"),
    }
    for name, (data, _) in cases.items():
        write(na / name, data)
    secret = tmp_path / "secret.md"
    secret.write_text("---\nid: secret\n---\n")
    os.symlink(secret, na / "link.md")
    wait_until(lambda: set(cases) | {"link.md"} <= set(quarantine_reasons(suite)), timeout=30,
               message=f"quarantine of {set(cases) | {'link.md'} - set(quarantine_reasons(suite))}")
    reasons = quarantine_reasons(suite)
    for name, (_, reason) in cases.items():
        assert reason in reasons[name], (name, reasons[name])
    assert "not a task file" in reasons["link.md"] and secret.exists()
    # Nothing was planned from bad input, and everything is still running.
    assert md_files(suite.folder("Pending_Approval")) == [] and suite.runs() == []
    assert md_files(na) == []
    suite.assert_alive()
    # A good task dropped afterwards still flows.
    suite.drop("after.txt", "fine")
    wait_until(lambda: md_files(suite.folder("Pending_Approval")), message="the good task to be planned")
