"""Each credential's age and expiry, from a fingerprint (never the secret), and the reminder task filed
once at 80 days or ahead of the platform's own expiry; the Dashboard's section; the handbook's rule."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from core.audit import AuditLog
from core.config import Settings
from core.credentials import DAY, survey
from core.documents import Document
from core.errors import ConfigError
from core.reminders import Reminders, credentials_section
from core.state import StateStore
from core.vault import Vault
from tests.conftest import make_env, md_files

NOW = dt.datetime(2026, 12, 1, 9, 0).astimezone().timestamp()


@pytest.fixture
def place(tmp_path):
    settings = Settings.from_env(make_env(tmp_path), load_dotenv_file=False)
    vault = Vault(settings.vault_path)
    vault.ensure_layout()
    state = StateStore(settings.state_db)
    return vault, state, Reminders(vault, state, AuditLog(vault.root, "scheduler"), state_dir=settings.state_db.parent)


def by_name(seen) -> dict:
    return {s.credential.name: s for s in seen}


def test_age_comes_from_the_fingerprint_and_a_rotated_secret_starts_again(place, tmp_path):
    _, state, _ = place
    token = tmp_path / "token.json"
    token.write_text(json.dumps({"refresh_token": "1//old"}))
    env = {"X_ACCESS_TOKEN": "tok-aaa", "X_ACCESS_TOKEN_SECRET": "sec-bbb", "GMAIL_TOKEN_FILE": str(token)}
    first = by_name(survey(state, env, base=tmp_path, now=NOW))
    assert set(first) == {"X access token", "Gmail token"}  # only what is configured
    later = by_name(survey(state, env, base=tmp_path, now=NOW + 85 * DAY))
    assert later["X access token"].age_days(NOW + 85 * DAY) == pytest.approx(85)
    assert "85 days old" in later["X access token"].reminder_due(NOW + 85 * DAY)
    rotated = by_name(survey(state, {**env, "X_ACCESS_TOKEN_SECRET": "sec-new"}, base=tmp_path, now=NOW + 86 * DAY))
    assert rotated["X access token"].age_days(NOW + 86 * DAY) == 0 and rotated["X access token"].reminder_due(NOW + 86 * DAY) is None
    rows = state.query("SELECT * FROM credentials")
    assert all("sec-" not in json.dumps(dict(r)) and "tok-" not in json.dumps(dict(r)) for r in rows)


def test_the_platforms_own_expiry_comes_first(place, tmp_path):
    _, state, _ = place
    env = {"META_ACCESS_TOKEN": "EAAG-long-lived", "ODOO_API_KEY": "key", "ODOO_API_KEY_EXPIRES": "2026-12-20"}
    seen = by_name(survey(state, env, base=tmp_path, now=NOW))
    meta, odoo = seen["Meta access token"], seen["Odoo API key"]
    assert meta.reminder_due(NOW + 49 * DAY) is None and "expires on" in meta.reminder_due(NOW + 50 * DAY)
    assert "expires on 2026-12-20" in odoo.reminder_due(NOW + 10 * DAY) and odoo.reminder_due(NOW) is None
    with pytest.raises(ConfigError, match="ODOO_API_KEY_EXPIRES"):
        survey(state, {**env, "ODOO_API_KEY_EXPIRES": "soon"}, base=tmp_path, now=NOW)


def test_a_reminder_is_filed_once_and_the_dashboard_says_which_needs_rotating(place, tmp_path):
    vault, state, reminders = place
    env = {"LLM_API_KEY": "sk-secret-value"}
    survey(state, env, base=tmp_path, now=NOW)
    [seen] = survey(state, env, base=tmp_path, now=NOW + 81 * DAY)
    why = seen.reminder_due(NOW + 81 * DAY)
    assert reminders.file(seen, why) and reminders.file(seen, why) is None  # once
    [task] = md_files(vault.folder("Needs_Action"))
    doc = Document.parse(task.read_text("utf-8"))
    assert doc.meta["type"] == "reminder" and doc.meta["credential"] == "LLM API key"
    assert "81 days old" in doc.body and "sk-secret-value" not in task.read_text("utf-8")
    section = credentials_section([seen], NOW + 81 * DAY)
    assert section["title"] == "Credentials" and "| LLM API key | 81 days | — | **rotate: is 81 days old" in \
        "\n".join(section["lines"])


def test_the_handbook_turns_a_reminder_into_a_request_the_owner_approves_when_done(place, tmp_path):
    from core.approval.policy import PolicySource
    from core.engine.planning import PlanContext, RuleBasedPlanner
    from core.engine.skills import SkillRegistry
    from core.tasks import Task
    from tests.conftest import ROOT
    vault, state, reminders = place
    (vault.root / "Company_Handbook.md").write_text((ROOT / "core" / "defaults" / "Company_Handbook.md").read_text())
    survey(state, {"MCP_AUTH_TOKEN": "t0k3n"}, base=tmp_path, now=NOW)
    [seen] = survey(state, {"MCP_AUTH_TOKEN": "t0k3n"}, base=tmp_path, now=NOW + 80 * DAY)
    reminders.file(seen, seen.reminder_due(NOW + 80 * DAY))
    [path] = md_files(vault.folder("Needs_Action"))
    policy = PolicySource(vault.root / "Company_Handbook.md").current()
    ctx = PlanContext(policy=policy, registry=SkillRegistry().discover(ROOT / ".qwen" / "skills"))
    [step] = RuleBasedPlanner().plan(Task.load(path), [], ctx)
    assert (step.skill, step.action) == ("vault_skill", "acknowledge") and "Rotate the MCP auth token" in step.title
