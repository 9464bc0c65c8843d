"""The owner's command line when it races someone: two `approve` commands for one request, or an
approve while the owner drags the file. The loser is told plainly; nothing crashes."""
from __future__ import annotations

import os

import pytest

import agent_interface
from core.approval.approvals import Approvals
from core.config import Settings
from core.state import StateStore
from core.vault import Vault


@pytest.fixture
def pending(tmp_path, monkeypatch):
    env = {"VAULT_PATH": str(tmp_path / "vault")}
    for key in [k for k in os.environ if k.startswith(("VAULT_", "STATE_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env(env)
    vault = Vault(settings.vault_path)
    vault.ensure_layout()
    approvals = Approvals(vault, StateStore(settings.state_db))
    row = approvals.request(task_id="t-1", step_no=1, skill="test_skill", action="record", params={"note": "x"},
                            text_param=None, risk="medium", reason="test", subject="race")
    return vault, row


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_the_loser_of_a_race_is_told_the_request_moved_already(pending, monkeypatch, capsys, command):
    vault, row = pending
    real_move = Vault.move

    def rival_first(self, src, dest_dir, name=None):
        real_move(self, src, vault.folder("Approved"))  # the other command (or the owner's drag) wins
        return real_move(self, src, dest_dir, name)
    monkeypatch.setattr(Vault, "move", rival_first)
    with pytest.raises(SystemExit) as lost:
        agent_interface.main([command, row["id"]])
    assert "moved already" in str(lost.value.code)
    assert (vault.root / "Approved" / row["file_name"]).exists()
