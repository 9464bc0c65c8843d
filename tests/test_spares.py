"""Rewrites recycle inodes (core.spares): atomic for readers, never free an inode, never write
into a file that has another name, and survive the janitor taking a spare away."""
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
    vault.write_atomic(target, "first version, rather long\n", sync=False)
    first_ino = target.stat().st_ino
    reader = open(target, "rb")  # a reader that opened the old version before the rewrite
    vault.write_atomic(target, "second\n", sync=False)
    assert target.read_text() == "second\n"
    assert reader.read() == b"first version, rather long\n"
    reader.close()
    assert len(hidden(vault.folder("Plans"))) == 1  # the old inode, kept as a spare

    other = vault.folder("Completed") / "other.md"
    vault.write_atomic(other, "short\n", sync=False)  # a new file in another folder takes the spare
    assert other.stat().st_ino == first_ino
    assert other.read_text() == "short\n"  # truncated: nothing of the longer old content is left
    assert oct(other.stat().st_mode & 0o777) == oct(0o644)
    assert hidden(vault.folder("Plans")) == []


def test_rewrites_free_no_inode(vault):
    target = vault.folder("In_Progress") / "task.md"
    vault.write_atomic(target, "v0\n", sync=False)
    inodes = {target.stat().st_ino}
    for n in range(1, 20):
        vault.write_atomic(target, f"v{n}\n", sync=False)
        inodes.add(target.stat().st_ino)
    # with every spare reusable at once, two inodes take turns: nothing is created or freed
    assert len(inodes) == 2
    assert target.read_text() == "v19\n"


def test_a_spare_with_another_name_is_never_written(vault, tmp_path):
    target = vault.folder("Pending_Approval") / "request.md"
    vault.write_atomic(target, "the owner's text\n")
    os.link(target, tmp_path / "owners-copy.md")  # the owner keeps a hard link elsewhere
    vault.write_atomic(target, "rewritten\n")
    vault.write_atomic(vault.folder("Completed") / "new.md", "new file\n")
    assert (tmp_path / "owners-copy.md").read_text() == "the owner's text\n"
    assert (vault.folder("Completed") / "new.md").read_text() == "new file\n"


def test_a_spare_removed_by_the_janitor_is_skipped(vault):
    target = vault.folder("Plans") / "PLAN_b.md"
    vault.write_atomic(target, "one\n", sync=False)
    vault.write_atomic(target, "two\n", sync=False)
    (spare,) = hidden(vault.folder("Plans"))
    os.unlink(vault.folder("Plans") / spare)
    vault.write_atomic(target, "three\n", sync=False)
    assert target.read_text() == "three\n"


def test_exclusive_writes_take_a_spare_and_still_refuse_to_replace(vault):
    target = vault.folder("Plans") / "PLAN_c.md"
    vault.write_atomic(target, "one\n", sync=False)
    vault.write_atomic(target, "two\n", sync=False)
    new = vault.folder("Needs_Action") / "task.md"
    vault.write_atomic(new, "task\n", exclusive=True)
    with pytest.raises(FileExistsError):
        vault.write_atomic(new, "again\n", exclusive=True)
    assert new.read_text() == "task\n"
    assert hidden(vault.folder("Needs_Action")) == []


def test_a_link_or_folder_in_the_way_is_not_kept_as_a_spare(vault, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("not the vault's\n")
    link = vault.folder("Plans") / "PLAN_d.md"
    link.symlink_to(outside)
    vault.write_atomic(link, "plan\n", sync=False)
    assert not link.is_symlink() and link.read_text() == "plan\n"
    assert outside.read_text() == "not the vault's\n"
    assert hidden(vault.folder("Plans")) == []
    folder = vault.folder("Plans") / "PLAN_e.md"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        vault.write_atomic(folder, "plan\n", sync=False)
    assert folder.is_dir() and hidden(vault.folder("Plans")) == []


def test_where_names_cannot_be_exchanged_rewrites_replace(vault, monkeypatch):
    import core.vault as vault_module

    def refuse(a, b):
        raise spares.Unsupported(22, "Invalid argument", b)

    monkeypatch.setattr(vault_module, "exchange", refuse)
    target = vault.folder("Plans") / "PLAN_f.md"
    vault.write_atomic(target, "one\n", sync=False)
    vault.write_atomic(target, "two\n", sync=False)
    vault.write_atomic(target, "three\n", sync=False)
    assert target.read_text() == "three\n"
    assert hidden(vault.folder("Plans")) == []
    assert spares.pool(str(vault.root)).enabled is False


def test_a_clean_exit_leaves_no_spare(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys; from pathlib import Path; from core.vault import Vault; v = Vault(Path(sys.argv[1])); "
            "v.ensure_layout(); p = v.folder('Plans') / 'PLAN_g.md'; "
            "[v.write_atomic(p, f'v{n}', sync=False) for n in range(5)]")
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "v")], cwd=root, check=True, timeout=60)
    assert (tmp_path / "v" / "Plans" / "PLAN_g.md").read_text() == "v4"
    leftovers = [p for p in (tmp_path / "v").rglob(f"{TMP_PREFIX}*")]
    assert leftovers == []
