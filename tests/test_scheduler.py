"""The scheduler: cadences and their slots; a missed Monday caught up exactly once after a restart; no
job run twice by two schedulers (in process, and as two real processes); scheduled posts released once
at their moment, to one request per platform; a file that cannot be read quarantined with the reason."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from aiohttp import web

from core.audit import AuditLog
from core.config import Settings
from core.content_calendar import ContentCalendar
from core.documents import Document
from core.errors import ConfigError
from core.scheduling import Cadence, Job, JobBook
from core.state import StateStore
from core.vault import Vault
from tests.conftest import ROOT, PYTHON, make_env, md_files, wait_until
from tests.fakes.threaded import ThreadedServer

pytestmark = pytest.mark.timeout(120)
UTC = dt.timezone.utc


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args).astimezone()  # the owner's wall clock, as the cadences are


def test_cadences_and_their_slots():
    monday = Cadence.parse("Monday 07:00")
    tuesday_noon = local(2026, 12, 1, 12, 0)
    assert monday.last_slot(tuesday_noon) == local(2026, 11, 30, 7, 0).timestamp()
    assert monday.next_slot(tuesday_noon) == local(2026, 12, 7, 7, 0).timestamp()
    at_seven = local(2026, 11, 30, 7, 0)
    assert monday.last_slot(at_seven) == at_seven.timestamp() and monday.next_slot(at_seven) > at_seven.timestamp()
    daily = Cadence.parse("daily 06:30")
    assert daily.last_slot(local(2026, 12, 1, 6, 29)) == local(2026, 11, 30, 6, 30).timestamp()
    every = Cadence.parse("every 5m")
    assert every.seconds == 300 and every.next_slot(tuesday_noon) - every.last_slot(tuesday_noon) == 300
    for bad in ("mondays 7:00", "monday 25:00", "every 0s", "07:00", "weekly"):
        with pytest.raises(ConfigError, match="SOCIAL_SUMMARY_AT"):
            Cadence.parse(bad, variable="SOCIAL_SUMMARY_AT")


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_missed_monday_is_caught_up_exactly_once_after_a_restart(tmp_path):
    state = StateStore(tmp_path / "state.db")
    runs: list[str] = []
    job = Job("weekly", Cadence.parse("monday 07:00"), lambda: runs.append("ran") or "briefing written")
    clock = Clock(local(2026, 11, 16, 9, 0))           # first start, a Monday after 07:00
    JobBook(state, [job], clock=clock).catch_up()
    assert runs == []                                   # nothing is owed from before it existed
    clock.now = local(2026, 11, 23, 7, 0, 1)            # the next Monday: the timer fires
    assert JobBook(state, [job], clock=clock).run_due("weekly") and runs == ["ran"]
    # The machine is off from Saturday until Wednesday of the week after next: two Mondays missed.
    clock.now = local(2026, 12, 9, 8, 0)
    assert JobBook(state, [job], clock=clock).catch_up() == ["weekly"] and runs == ["ran", "ran"]
    assert JobBook(state, [job], clock=clock, pid=os.getpid() + 1).catch_up() == []  # restarted again: done
    assert runs == ["ran", "ran"]
    row = state.job("weekly")
    assert row["slot"] == local(2026, 12, 7, 7, 0).timestamp() and row["status"] == "ok"
    assert row["detail"] == "briefing written" and row["next_run"] == local(2026, 12, 14, 7, 0).timestamp()


def test_a_run_its_process_died_in_is_run_again_once(tmp_path):
    state = StateStore(tmp_path / "state.db")
    runs: list[int] = []
    job = Job("weekly", Cadence.parse("monday 07:00"), lambda: runs.append(1) or "ok")
    clock = Clock(local(2026, 11, 30, 8, 0))
    slot = job.cadence.last_slot(clock.now)
    dead = _dead_pid()
    assert state.job_claim("weekly", slot, dead)        # claimed, then the process was killed
    assert JobBook(state, [job], clock=clock).catch_up() == ["weekly"] and runs == [1]
    assert JobBook(state, [job], clock=clock).catch_up() == [] and runs == [1]


def _dead_pid() -> int:
    import subprocess
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_two_schedulers_at_once_run_a_slot_once(tmp_path):
    runs: list[str] = []
    barrier = threading.Barrier(2)

    def work() -> str:
        runs.append(threading.current_thread().name)
        return "ok"

    job = Job("summaries", Cadence.parse("daily 06:30"), work)
    clock = Clock(local(2026, 12, 1, 6, 30, 5))
    books = [JobBook(StateStore(tmp_path / "state.db"), [job], clock=clock, pid=os.getpid() + n) for n in (0, 1)]
    outcomes: list[bool] = []

    def fire(book: JobBook) -> None:
        barrier.wait()
        outcomes.append(book.run_due("summaries"))

    threads = [threading.Thread(target=fire, args=(b,), name=f"scheduler-{n}") for n, b in enumerate(books)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes) == [False, True] and len(runs) == 1


def post_file(folder: Path, name: str, text: str, **meta) -> Path:
    path = folder / name
    path.write_text(Document(meta, text).render() if meta else text, "utf-8")
    return path


def test_scheduled_posts_are_released_once_at_their_moment(tmp_path):
    env = make_env(tmp_path)
    settings = Settings.from_env(env, load_dotenv_file=False)
    vault = Vault(settings.vault_path)
    vault.ensure_layout()
    state = StateStore(settings.state_db)
    calendar = ContentCalendar(vault, state, AuditLog(vault.root, "scheduler"), state_dir=settings.state_db.parent)
    folder = vault.folder("Scheduled")
    now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    post_file(folder, "winter hours.md", "Winter hours: 10 to 4.\nimage: https://cdn.example.com/w.jpg\n",
              publish_at="2026-12-07T08:59:00+00:00")
    post_file(folder, "later.md", "Not yet.\n", publish_at="2026-12-07T10:00:00+00:00")
    post_file(folder, "thread.md", "One.\n\nTwo.\n", publish_at="2026-12-06T09:00:00+00:00", thread=True)
    post_file(folder, "broken.md", "---\npublish_at: [not closed\n---\nHello\n")
    made = calendar.release_due(now)
    assert len(made) == 2 and calendar.release_due(now) == []       # once, however often it is asked
    tasks = {Document.parse(p.read_text("utf-8")).meta["file_name"]: Document.parse(p.read_text("utf-8"))
             for p in md_files(vault.folder("Needs_Action"))}
    assert set(tasks) == {"winter hours.md", "thread.md"}
    winter = tasks["winter hours.md"]
    assert winter.meta["type"] == "social_post" and winter.meta["thread"] is False
    assert "Winter hours: 10 to 4." in winter.body and (vault.root / winter.meta["file"]).exists()
    assert tasks["thread.md"].meta["thread"] is True
    assert sorted(p.name for p in folder.iterdir()) == ["later.md"]
    [reason] = [p for p in vault.folder("Quarantine").iterdir() if p.name.endswith(".reason.md")]
    assert "publish_at" in reason.read_text("utf-8")
    assert len(calendar.release_due(dt.datetime(2026, 12, 7, 10, 0, tzinfo=UTC))) == 1  # its moment comes


class SummaryStub(ThreadedServer):
    """Both social servers' GET /summary, counted: what the scheduler's job asks."""
    name = "summary-stub"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def build_app(self) -> web.Application:
        async def summary(request: web.Request) -> web.Response:
            self.calls += 1
            figures = {"posts": 3, "reach": 1200, "engagement": 40, "previous": {}, "path": "x"}
            return web.json_response({"success": True, "data": {**figures, "facebook": figures, "instagram": None,
                                                                  "paths": ["x"]}})
        app = web.Application()
        app.router.add_get("/summary", summary)
        return app


def test_two_scheduler_processes_catch_up_a_missed_monday_once(tmp_path):
    import subprocess
    with SummaryStub() as stub:
        env = make_env(tmp_path, TWITTER_MCP_PORT=str(stub.port), META_MCP_PORT=str(stub.port),
                       SOCIAL_SUMMARY_AT="monday 06:30", SCHEDULED_POSTS_EVERY="every 1h")
        for skill in ("twitter_skill", "facebook_instagram_skill"):
            shutil.copytree(ROOT / ".qwen" / "skills" / skill, tmp_path / "skills" / skill)
        state = StateStore(Settings.from_env(env, load_dotenv_file=False).state_db)
        fortnight_ago = Cadence.parse("monday 06:30").last_slot(dt.datetime.now(UTC)) - 14 * 86400
        state.job_baseline("social_summaries", fortnight_ago)      # it last ran two Mondays ago
        procs = [subprocess.Popen([PYTHON, "scheduler.py"], cwd=ROOT, env=env, stdout=open(tmp_path / f"s{n}.log", "wb"),
                                  stderr=subprocess.STDOUT) for n in (1, 2)]
        try:
            row = wait_until(lambda: (r := state.job("social_summaries")) and r["status"] == "ok" and r,
                             timeout=30, message="the caught-up summaries")
            for n in (1, 2):  # both really ran (each past its start), not one killed while importing
                wait_until(lambda: "running the schedule" in (tmp_path / f"s{n}.log").read_text(), timeout=30,
                           message=f"scheduler {n} to run")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                assert proc.wait(15) == 0
        assert stub.calls == 2                                     # X and Meta, once: not once per scheduler
        assert row["detail"] == "X: 3 posts, reach 1,200; facebook: 3 posts, reach 1,200"
        ran = [json.loads(line) for f in sorted((Path(env["VAULT_PATH"]) / "Logs").glob("*.jsonl"))
               for line in f.read_text("utf-8").splitlines() if '"job.ran"' in line]
        slots = [r["parameters"]["slot"] for r in ran if r["target"] == "social_summaries"]
        assert len(slots) == 1 and slots[0] > fortnight_ago


def test_a_scheduled_file_becomes_one_request_per_platform(tmp_path):
    from tests.conftest import Suite
    env = make_env(tmp_path, handbook=(ROOT / "core" / "defaults" / "Company_Handbook.md").read_text("utf-8"),
                   SCHEDULED_POSTS_EVERY="every 1s", SOCIAL_SUMMARY_AT="monday 06:30")
    for skill in ("social_skill", "twitter_skill", "facebook_instagram_skill"):
        shutil.copytree(ROOT / ".qwen" / "skills" / skill, tmp_path / "skills" / skill)
    suite = Suite(tmp_path, env)
    try:
        suite.start("loop")
        suite.start("scheduler")
        folder = suite.folder("Scheduled")
        post_file(folder, "sale.md", "Winter sale starts now.\n\nimage: https://cdn.example.com/sale.jpg\n",
                  publish_at=(dt.datetime.now(UTC) - dt.timedelta(minutes=1)).isoformat())
        files = wait_until(lambda: len(found := md_files(suite.folder("Pending_Approval"))) >= 3 and found,
                           timeout=60, message="the requests")
        actions = sorted(Document.parse(p.read_text("utf-8")).meta["action"] for p in files)
        assert actions == ["post_facebook", "post_instagram", "post_tweet"]
        assert all("## Message\nWinter sale starts now.\n" in p.read_text("utf-8") for p in files)
    finally:
        suite.stop_all()


def test_the_dashboard_shows_each_job_its_last_outcome_and_next_run(tmp_path):
    from core.approval.approvals import Approvals
    from core.engine.dashboard import render
    settings = Settings.from_env(make_env(tmp_path), load_dotenv_file=False)
    vault, state = Vault(settings.vault_path), StateStore(settings.state_db)
    vault.ensure_layout()
    job = Job("social_summaries", Cadence.parse("monday 06:30"), lambda: "X: 3 posts, reach 1,200")
    clock = Clock(local(2026, 11, 29, 12, 0))  # installed on a Sunday
    book = JobBook(state, [job], clock=clock)
    book.catch_up()
    clock.now = local(2026, 11, 30, 6, 30, 1)
    assert book.run_due("social_summaries")
    page = render(vault, state, Approvals(vault, state), dry_run=True)
    assert "## Schedule" in page
    assert "| social_summaries | monday 06:30 |" in page and "| ok: X: 3 posts, reach 1,200 | Mon 07 Dec 06:30 |" in page


class HealthStub(ThreadedServer):
    """A server's /health: degraded, its outbox waiting."""
    name = "health-stub"

    def build_app(self) -> web.Application:
        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "degraded", "checks": {
                "x": {"status": "healthy"}, "outbox": {"status": "degraded", "detail": "2 write(s) wait"}}})
        app = web.Application()
        app.router.add_get("/health", health)
        return app


def test_the_health_job_sees_every_server_and_every_silent_process(tmp_path):
    from core.suite_health import suite_health
    from tests.conftest import free_port
    with HealthStub() as stub:
        closed = free_port()  # nothing listens there: a server that is down
        env = make_env(tmp_path, TWITTER_MCP_PORT=str(stub.port), EMAIL_MCP_PORT=str(closed),
                       BROWSER_MCP_PORT=str(closed), ODOO_MCP_PORT=str(closed), META_MCP_PORT=str(closed))
        settings = Settings.from_env(env, load_dotenv_file=False)
        state = StateStore(settings.state_db)
        state.heartbeat("watcher-files", "healthy", "watching", os.getpid())
        section, problems = suite_health(settings, state, now=time.time() + 60)
    table = "\n".join(section["lines"])
    assert "| mcp-twitter | degraded | outbox: 2 write(s) wait |" in table
    assert "| mcp-email | down | does not answer /health |" in table
    assert "mcp-email does not answer /health" in problems and "watcher-files silent for 60 s" in problems
