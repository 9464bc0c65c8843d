"""Rewrites recycle inodes (core.spares): atomic for readers, they free no inode, and a spare is
filled only by a view (or an fsynced write), never while someone has it open, never when it has
another name; the janitor taking a spare away, or a folder on another mount, costs nothing."""
from __future__ import annotations

import os

import pytest

from core import spares
from core.vault import TMP_PREFIX, Vault


@pytest.fixture
def vault(tmp_path, monkeypatch) -> Vault:
    monkeypatch.setattr(spares, "REUSE_AFTER", 0.0)  # no rest: reuse at the next write
    v = Vault(tmp_path / "vault")
    v.ensure_layout()
    return v


def hidden(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(TMP_PREFIX))


def test_a_rewrite_keeps_the_old_inode_and_the_next_write_fills_it(vault):
    target = vault.folder("Plans") / "PLAN_a.md"
    vault.write_atomic(target, "first version, rather long\n", view=True)
    first_ino = target.stat().st_ino
    vault.write_atomic(target, "second\n", view=True)
    assert target.read_text() == "second\n"
    assert len(hidden(vault.folder("Plans"))) == 1  # the old inode, kept as a spare

    other = vault.folder("Completed") / "other.md"
    vault.write_atomic(other, "short\n", view=True)  # a new file in another folder takes the spare
    assert other.stat().st_ino == first_ino
    assert other.read_text() == "short\n"  # truncated: nothing of the longer old content is left
    assert other.stat().st_mode & 0o777 == spares.FILE_MODE
    assert hidden(vault.folder("Plans")) == []


def test_a_spare_someone_still_reads_is_not_filled(vault):
    target = vault.folder("Plans") / "PLAN_r.md"
    vault.write_atomic(target, "old version\n", view=True)
    with open(target, "rb") as reader:  # opened before the rewrite, read after it
        vault.write_atomic(target, "new version\n", view=True)
        other = vault.folder("Plans") / "PLAN_s.md"
        vault.write_atomic(other, "another file\n", view=True)
        assert reader.read() == b"old version\n"
        assert os.fstat(reader.fileno()).st_ino != other.stat().st_ino
    assert target.read_text() == "new version\n" and other.read_text() == "another file\n"


def test_a_status_rewrite_takes_a_fresh_inode_but_keeps_the_old_one(vault):
    vault.write_atomic(vault.folder("Plans") / "PLAN_t.md", "plan\n", view=True)
    vault.write_atomic(vault.folder("Plans") / "PLAN_t.md", "plan, rewritten\n", view=True)
    (spare,) = hidden(vault.folder("Plans"))
    task = vault.folder("In_Progress") / "task.md"
    vault.write_atomic(task, "needs_action\n", exclusive=True, sync=False)
    before = task.stat().st_ino
    # not fsynced and not a view: a power cut must not leave another file's bytes in a task
    vault.write_atomic(task, "completed\n", sync=False)
    assert task.stat().st_ino != before
    assert hidden(vault.folder("Plans")) == [spare]  # not taken
    assert len(hidden(vault.folder("In_Progress"))) == 1  # the task's old inode, kept


def test_spares_follow_the_umask(tmp_path, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path
    code = ("import os, sys; os.umask(0o077); from pathlib import Path; from core import spares; "
            "spares.REUSE_AFTER = 0; from core.vault import Vault; v = Vault(Path(sys.argv[1])); v.ensure_layout(); "
            "p = v.folder('Plans') / 'PLAN_u.md'; v.write_atomic(p, 'a', view=True); v.write_atomic(p, 'b', view=True); "
            "q = v.folder('Plans') / 'PLAN_v.md'; v.write_atomic(q, 'c', view=True); "
            "print(oct(os.stat(q).st_mode & 0o777), os.stat(q).st_ino == os.stat(p).st_ino)")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "v")], cwd=root, check=True, timeout=60,
                         capture_output=True, text=True).stdout.split()
    assert out == ["0o600", "False"]


def test_view_rewrites_free_no_inode(vault):
    target = vault.folder("Plans") / "PLAN_z.md"
    vault.write_atomic(target, "v0\n", view=True)
    inodes = {target.stat().st_ino}
    for n in range(1, 20):
        vault.write_atomic(target, f"v{n}\n", view=True)
        inodes.add(target.stat().st_ino)
    # with every spare reusable at once, two inodes take turns: nothing is created or freed
    assert len(inodes) == 2
    assert target.read_text() == "v19\n"


def test_a_spare_with_another_name_is_never_written(vault, tmp_path):
    target = vault.folder("Pending_Approval") / "request.md"
    vault.write_atomic(target, "the owner's text\n")
    os.link(target, tmp_path / "owners-copy.md")  # the owner keeps a hard link elsewhere
    vault.write_atomic(target, "rewritten\n")
    vault.write_atomic(vault.folder("Completed") / "new.md", "new file\n", view=True)
    assert (tmp_path / "owners-copy.md").read_text() == "the owner's text\n"
    assert (vault.folder("Completed") / "new.md").read_text() == "new file\n"


def test_a_spare_removed_by_the_janitor_is_skipped(vault):
    target = vault.folder("Plans") / "PLAN_b.md"
    vault.write_atomic(target, "one\n", view=True)
    vault.write_atomic(target, "two\n", view=True)
    (spare,) = hidden(vault.folder("Plans"))
    os.unlink(vault.folder("Plans") / spare)
    vault.write_atomic(target, "three\n", view=True)
    assert target.read_text() == "three\n"


def test_a_spare_removed_while_being_filled_is_written_again_fresh(vault, monkeypatch):
    target = vault.folder("Plans") / "PLAN_j.md"
    vault.write_atomic(target, "one\n", view=True)
    vault.write_atomic(target, "two\n", view=True)
    pool = spares.pool(str(vault.root))
    real = pool.open_rested

    def janitor_strikes():
        found = real()
        if found is not None:
            os.unlink(found[0])  # the janitor, between our open and our rename
        return found

    monkeypatch.setattr(pool, "open_rested", janitor_strikes)
    vault.write_atomic(target, "three\n", view=True)
    assert target.read_text() == "three\n"


def test_a_spare_on_another_mount_is_not_used_there(vault, monkeypatch):
    import errno
    import core.vault as vault_module
    vault.write_atomic(vault.folder("Plans") / "PLAN_k.md", "one\n", view=True)
    vault.write_atomic(vault.folder("Plans") / "PLAN_k.md", "two\n", view=True)
    real = vault_module.os.replace

    def across_mounts(src, dst):  # Briefings/ is a mount of its own in this story
        if "Briefings" in str(dst) and "Briefings" not in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst)

    monkeypatch.setattr(vault_module.os, "replace", across_mounts)
    report = vault.folder("Briefings") / "2026-11-23.md"
    vault.write_atomic(report, "briefing\n", view=True)
    assert report.read_text() == "briefing\n"


def test_exclusive_writes_take_a_spare_and_still_refuse_to_replace(vault):
    target = vault.folder("Plans") / "PLAN_c.md"
    vault.write_atomic(target, "one\n", view=True)
    vault.write_atomic(target, "two\n", view=True)
    (spare,) = hidden(vault.folder("Plans"))
    spare_ino = (vault.folder("Plans") / spare).stat().st_ino
    new = vault.folder("Needs_Action") / "task.md"
    vault.write_atomic(new, "task\n", exclusive=True)  # fsynced: may fill a spare
    assert new.stat().st_ino == spare_ino and hidden(vault.folder("Plans")) == []
    with pytest.raises(FileExistsError):
        vault.write_atomic(new, "again\n", exclusive=True)
    assert new.read_text() == "task\n"
    assert hidden(vault.folder("Needs_Action")) == []


def test_a_link_or_folder_in_the_way_is_not_kept_as_a_spare(vault, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("not the vault's\n")
    link = vault.folder("Plans") / "PLAN_d.md"
    link.symlink_to(outside)
    vault.write_atomic(link, "plan\n", view=True)
    assert not link.is_symlink() and link.read_text() == "plan\n"
    assert outside.read_text() == "not the vault's\n"
    assert hidden(vault.folder("Plans")) == []
    folder = vault.folder("Plans") / "PLAN_e.md"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        vault.write_atomic(folder, "plan\n", view=True)
    assert folder.is_dir() and hidden(vault.folder("Plans")) == []


def test_where_names_cannot_be_exchanged_rewrites_replace(vault, monkeypatch):
    import core.vault as vault_module

    def refuse(a, b):
        raise spares.Unsupported(22, "Invalid argument", b)

    monkeypatch.setattr(vault_module, "exchange", refuse)
    target = vault.folder("Plans") / "PLAN_f.md"
    vault.write_atomic(target, "one\n", view=True)
    vault.write_atomic(target, "two\n", view=True)
    vault.write_atomic(target, "three\n", view=True)
    assert target.read_text() == "three\n"
    assert hidden(vault.folder("Plans")) == []
    assert spares.pool(str(vault.root)).enabled is False


def test_a_clean_exit_leaves_no_spare(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys; from pathlib import Path; from core.vault import Vault; v = Vault(Path(sys.argv[1])); "
            "v.ensure_layout(); p = v.folder('Plans') / 'PLAN_g.md'; "
            "[v.write_atomic(p, f'v{n}', view=True) for n in range(5)]")
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "v")], cwd=root, check=True, timeout=60)
    assert (tmp_path / "v" / "Plans" / "PLAN_g.md").read_text() == "v4"
    leftovers = [p for p in (tmp_path / "v").rglob(f"{TMP_PREFIX}*")]
    assert leftovers == []
