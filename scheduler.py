"""The scheduler (PM2 app ``scheduler``): the time-based work, each job declared once below with its
cadence, each a skill call or a kernel function.

    python scheduler.py

Timing is the ``schedule`` library's; which run is owed is core.scheduling's: a slot is claimed in
the state store before it runs, so two schedulers started by mistake never run a job twice, and a
Monday missed while the machine was off is caught up once at the next start. Each job's last run,
outcome and next run are in the state store, on the Dashboard and in the scheduler's health.
"""
from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import schedule

from core.audit import AuditLog
from core.config import Settings
from briefing.week import last_full_week
from core.content_calendar import ContentCalendar
from core.credentials import survey
from core.reminders import Reminders, credentials_section
from core.suite_health import suite_health
from core.daemon import Daemon, run_daemon
from core.engine.skills import ActionContext, SkillRegistry
from core.errors import ConfigError, NotConfiguredError, error_for_code
from core.intake import Intake
from core.scheduling import Cadence, Job, JobBook
from core.state import StateStore
from core.tasks import build_task
from core.vault import Vault

log = logging.getLogger("scheduler")
PROCESS = "scheduler"

# (job, variable that sets its cadence, default cadence, what it does)
CADENCES = {
    "weekly_briefing": ("BRIEFING_AT", "monday 07:00",
                        "the Monday briefing of the week before, to Briefings/ (a briefing task the loop carries out)"),
    "social_summaries": ("SOCIAL_SUMMARY_AT", "monday 06:30",
                         "the week on X, the Facebook Page and Instagram, to Social_Media_Summaries/"),
    "scheduled_posts": ("SCHEDULED_POSTS_EVERY", "every 30s", "posts in Scheduled/ whose publish_at has come"),
    "credentials": ("CREDENTIALS_CHECK_EVERY", "every 6h",
                    "each credential's age and expiry on the Dashboard; a reminder task when one is due"),
    "health_checks": ("HEALTH_CHECK_EVERY", "every 1m", "every server's /health and every process's heartbeat"),
}
SUMMARIES = (("twitter", "twitter_skill"), ("meta", "facebook_instagram_skill"))


class Scheduler:
    def __init__(self, settings: Settings, *, registry: SkillRegistry | None = None) -> None:
        self.settings = settings
        self.vault = Vault(settings.vault_path)
        self.vault.ensure_layout()
        self.state = StateStore(settings.state_db)
        self.audit = AuditLog(self.vault.root, PROCESS)
        self.registry = registry or SkillRegistry().discover(settings.skills_dir)
        self.daemon = Daemon(PROCESS, self.state)
        self.calendar = ContentCalendar(self.vault, self.state, self.audit, state_dir=settings.state_db.parent)
        self.reminders = Reminders(self.vault, self.state, self.audit, state_dir=settings.state_db.parent)
        self.briefings = Intake(self.vault, self.state, self.audit, source="schedule", kind="briefing",
                                state_dir=settings.state_db.parent)
        self.jobs = self._jobs()
        self.book = JobBook(self.state, self.jobs, on_ran=self._ran)
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="job")

    # -- the jobs ---------------------------------------------------------------------------------
    def _jobs(self) -> list[Job]:
        work = {"weekly_briefing": self.weekly_briefing, "social_summaries": self.social_summaries, "scheduled_posts": self.scheduled_posts,
                "credentials": self.credentials, "health_checks": self.health_checks}
        jobs = []
        for name, (variable, default, description) in CADENCES.items():
            cadence = Cadence.parse(self.settings.env.get(variable) or default, variable=variable)
            jobs.append(Job(name, cadence, work[name], description))
        return jobs

    def weekly_briefing(self) -> str:
        """A briefing task for the last full week: the handbook's rule writes the briefing and turns each
        subscription finding into a request for the owner (the scheduler itself never acts)."""
        week = last_full_week(dt.date.today())
        task = self.briefings.emit(f"briefing|{week.start.isoformat()}", lambda task_id, d: build_task(
            task_id, "briefing", "schedule", f"briefing|{week.start.isoformat()}",
            title=f"Monday briefing: the week of {week.label()}",
            content=f"The Monday briefing of the week {week.start.isoformat()} to {week.end.isoformat()}.",
            extra={"week": week.start.isoformat()}))
        return f"briefing task for the week of {week.start.isoformat()}" + ("" if task else " (filed already)")

    def social_summaries(self) -> str:
        said, configured = [], False
        for service, skill in SUMMARIES:
            try:
                data = self._call(skill, "get_summary", {"days": 7})
            except NotConfiguredError:
                said.append(f"{service}: not configured")
                continue
            configured = True
            said.append(_summary_line(service, data))
        if not configured:
            raise NotConfiguredError("; ".join(said))
        return "; ".join(said)

    def scheduled_posts(self) -> str:
        made = self.calendar.release_due()
        return f"{len(made)} scheduled post(s) released" if made else "nothing due"

    def credentials(self) -> str:
        seen = survey(self.state, self.settings.env, base=self.settings.vault_path.parent)
        now = time.time()
        made = [task for s in seen if (why := s.reminder_due(now)) and (task := self.reminders.file(s, why))]
        self.state.cache_put("dashboard:credentials", credentials_section(seen, now))
        return f"{len(seen)} credential(s) checked" + (f"; {len(made)} reminder(s) filed" if made else "")

    def health_checks(self) -> str:
        section, problems = suite_health(self.settings, self.state)
        self.state.cache_put("dashboard:health", section)
        if problems:
            raise RuntimeError("; ".join(problems))  # recorded as the job's outcome: failed, with what
        return "every server answers and every process beats"

    def _call(self, skill: str, action: str, params: dict) -> dict:
        ctx = ActionContext(f"scheduler:{skill}.{action}", None, None, self.settings.dry_run, self.settings)
        outcome = self.registry.invoke(skill, action, params, ctx)
        if not outcome.success:
            raise error_for_code(outcome.error_code, outcome.error)
        return outcome.data

    # -- running ----------------------------------------------------------------------------------
    def run(self) -> None:
        self.daemon.beat("healthy", "starting", force=True)
        timer = schedule.Scheduler()
        for job in self.jobs:
            _every(timer, job.cadence).do(self._submit, job.name)
        for name, slot in self.book.owed():  # a run missed while the machine was off, once
            log.info("catching up %s", name)
            self._submit(name, lambda name=name, slot=slot: self.book.run(name, slot))
        for job in self.jobs:
            if not job.cadence.calendar:
                self._submit(job.name)  # interval jobs: their first turn now, not one interval from now
        try:
            while not self.daemon.stop.is_set():
                timer.run_pending()
                self.daemon.beat("healthy", "running the schedule", note=self._next_runs())
                self.daemon.stop.wait(max(0.2, min(1.0, timer.idle_seconds or 1.0)))
        finally:
            self.pool.shutdown(wait=True)  # SIGTERM: a job in hand finishes and is recorded

    def _submit(self, name: str, run: Callable[[], bool] | None = None) -> None:
        with self._lock:
            if name in self._running:
                return  # its last turn is still running: this one is not owed twice
            self._running.add(name)
        self.pool.submit(self._run_job, name, run or (lambda: self.book.run_due(name)))

    def _run_job(self, name: str, run: Callable[[], bool]) -> None:
        try:
            run()
        except Exception:  # noqa: BLE001 - the scheduler outlives any one job's failure
            log.exception("job %s could not be run", name)
        finally:
            with self._lock:
                self._running.discard(name)

    def _ran(self, name: str, slot: float, status: str, detail: str, seconds: float) -> None:
        self.audit.record("job.ran", target=name, parameters={"slot": slot},
                          result={"status": status, "detail": detail, "seconds": round(seconds, 3)})

    def _next_runs(self) -> str:
        rows = [r for r in self.state.job_rows() if r["next_run"] and r["name"] in CADENCES]
        soonest = sorted(rows, key=lambda r: r["next_run"])[:2]
        return "next: " + ", ".join(f"{r['name']} {time.strftime('%a %H:%M', time.localtime(r['next_run']))}"
                                    for r in soonest) if soonest else ""


def _every(timer: schedule.Scheduler, cadence: Cadence) -> schedule.Job:
    if cadence.seconds is not None:
        return timer.every(int(cadence.seconds)).seconds
    assert cadence.at is not None
    day = timer.every().day if cadence.weekday is None else \
        getattr(timer.every(), ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                "sunday")[cadence.weekday])
    return day.at(cadence.at.strftime("%H:%M"))


def _summary_line(service: str, data: dict) -> str:
    if service == "twitter":
        return f"X: {data['posts']} posts, reach {data['reach']:,}"
    parts = [f"{name}: {d['posts']} posts, reach {d['reach']:,}" for name in ("facebook", "instagram")
             if (d := data.get(name))]
    return "; ".join(parts) or "meta: nothing configured"


def build(settings: Settings) -> Scheduler:
    return Scheduler(settings)


def main() -> int:
    try:
        return run_daemon(PROCESS, build)
    except ConfigError as err:
        print(f"{PROCESS}: configuration error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
