"""The Monday briefing as the suite runs it: the scheduler files one briefing task per week (once, also
when asked again), the reasoning loop with the shipped handbook writes the briefing from it, and
`agent_interface.py briefing --week` writes any week's on demand; with Odoo unreachable each says so."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess

from briefing.week import last_full_week
from core.config import Settings
from core.documents import Document
from scheduler import Scheduler
from tests.conftest import PYTHON, ROOT, Suite, free_port, make_env, md_files, wait_until

HANDBOOK = (ROOT / "core" / "defaults" / "Company_Handbook.md").read_text("utf-8")


def env_for(tmp_path):
    env = make_env(tmp_path, handbook=HANDBOOK, ODOO_MCP_PORT=str(free_port()))  # nothing listens: Odoo is down
    shutil.copytree(ROOT / ".qwen" / "skills" / "ceo_briefing_skill", tmp_path / "skills" / "ceo_briefing_skill")
    return env


def test_the_monday_job_files_one_briefing_task_that_the_loop_turns_into_the_briefing(tmp_path):
    env = env_for(tmp_path)
    scheduler = Scheduler(Settings.from_env(env, load_dotenv_file=False))
    said = scheduler.weekly_briefing()
    again = scheduler.weekly_briefing()
    week = last_full_week(dt.date.today())
    [task] = md_files(scheduler.vault.folder("Needs_Action"))
    meta = Document.parse(task.read_text("utf-8")).meta
    assert (meta["type"], meta["week"]) == ("briefing", week.start.isoformat())
    assert "filed already" in again and "filed already" not in said
    suite = Suite(tmp_path, env)
    try:
        suite.start("loop")
        briefings = scheduler.vault.folder("Briefings")
        note = wait_until(lambda: [p for p in briefings.glob("*_Monday_Briefing.md")], timeout=60,
                          message="the briefing")[0]
        doc = Document.parse(note.read_text("utf-8"))
        assert doc.meta["type"] == "briefing" and doc.meta["week_start"] == week.start.isoformat()
        assert "Odoo unreachable" in doc.body  # the revenue section says so instead of failing
        wait_until(lambda: (scheduler.vault.folder("Completed") / task.name).exists(), timeout=60,
                   message="the briefing task done (no subscription to ask about)")
    finally:
        suite.stop_all()


def test_the_briefing_of_any_week_on_demand(tmp_path):
    env = env_for(tmp_path)
    result = subprocess.run([PYTHON, "agent_interface.py", "briefing", "--week", "2026-11-25"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Briefings/2026-11-30_Monday_Briefing.md" in result.stdout and "the week 2026-11-23 to 2026-11-29" in result.stdout
    assert "Stale or missing:" in result.stdout
    vault = Settings.from_env(env, load_dotenv_file=False).vault_path
    note = Document.parse((vault / "Briefings" / "2026-11-30_Monday_Briefing.md").read_text("utf-8"))
    assert note.meta["week_end"] == "2026-11-29" and "Odoo unreachable" in note.body
