"""When time-based work is due, and the one run of each due moment: a job's cadence ("monday 07:00",
"daily 06:30", "every 30s") gives its *slots*, the moments it is owed; a scheduler claims a slot in
the state store before running it, so a slot runs once however many schedulers there are, and a slot
missed while the machine was off is run once at the next start (only the latest: a fortnight away
owes one briefing, not two). Framework-free: ``scheduler.py`` drives it with the ``schedule`` library."""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Callable

from core.errors import ConfigError, NotConfiguredError
from core.state import StateStore

log = logging.getLogger(__name__)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_AT = re.compile(r"^(?:(?P<day>daily|" + "|".join(WEEKDAYS) + r")\s+(?P<hh>\d{1,2}):(?P<mm>\d{2})|"
                 r"every\s+(?P<n>\d+)\s*(?P<unit>s|m|h))$", re.IGNORECASE)


@dataclass(frozen=True)
class Cadence:
    text: str
    weekday: int | None = None        # 0 = Monday; None: every day
    at: dt.time | None = None         # local wall-clock time of a calendar cadence
    seconds: float | None = None      # an interval cadence

    @classmethod
    def parse(cls, text: str, *, variable: str = "") -> "Cadence":
        m = _AT.match(text.strip())
        if not m:
            raise ConfigError(f"{variable or 'cadence'} must look like 'monday 07:00', 'daily 06:30' or 'every 30s', "
                              f"not {text!r}")
        if m["n"]:
            seconds = int(m["n"]) * {"s": 1, "m": 60, "h": 3600}[m["unit"].lower()]
            if seconds < 1:
                raise ConfigError(f"{variable or 'cadence'}: the interval must be at least 1 s")
            return cls(text.strip(), seconds=float(seconds))
        hh, mm = int(m["hh"]), int(m["mm"])
        if hh > 23 or mm > 59:
            raise ConfigError(f"{variable or 'cadence'}: {hh:02d}:{mm:02d} is not a time of day")
        day = m["day"].lower()
        return cls(text.strip(), weekday=None if day == "daily" else WEEKDAYS.index(day), at=dt.time(hh, mm))

    @property
    def calendar(self) -> bool:
        return self.seconds is None

    def last_slot(self, now: dt.datetime) -> float:
        """The latest moment at or before ``now`` (aware) this cadence was due, as epoch seconds."""
        if self.seconds is not None:
            return (now.timestamp() // self.seconds) * self.seconds
        return max(m for m in self._moments(now, range(-7, 1)) if m <= now.timestamp())

    def next_slot(self, now: dt.datetime) -> float:
        """The first moment after ``now`` this cadence is due."""
        if self.seconds is not None:
            return self.last_slot(now) + self.seconds
        return min(m for m in self._moments(now, range(0, 8)) if m > now.timestamp())

    def _moments(self, now: dt.datetime, days: range) -> list[float]:
        """The due moments on the days around ``now``'s local date (local time, DST as it is that day)."""
        today = now.astimezone().date()
        dates = [today + dt.timedelta(days=d) for d in days]
        return [dt.datetime.combine(d, self.at).astimezone().timestamp() for d in dates  # type: ignore[arg-type]
                if self.weekday is None or d.weekday() == self.weekday]


# A job's work: returns what happened in a few words (shown on the Dashboard), raises on failure.
Work = Callable[[], str]


@dataclass(frozen=True)
class Job:
    name: str
    cadence: Cadence
    work: Work
    description: str = ""


class JobBook:
    """Runs each due slot of each job once, recording outcomes in the state store."""

    def __init__(self, state: StateStore, jobs: list[Job], *, clock: Callable[[], dt.datetime] | None = None,
                 pid: int | None = None, on_ran: Callable[[str, float, str, str, float], None] | None = None) -> None:
        self.state, self.jobs, self.on_ran = state, {j.name: j for j in jobs}, on_ran
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.pid = pid or os.getpid()

    def owed(self) -> list[tuple[str, float]]:
        """At start: each calendar job whose latest slot was missed (or died mid-run) is owed that one
        slot; a job never seen before owes nothing from before it existed."""
        owed = []
        for job in self.jobs.values():
            if not job.cadence.calendar:
                continue
            slot = job.cadence.last_slot(self.clock())
            row = self.state.job(job.name)
            if row is None:
                self.state.job_baseline(job.name, slot)
            elif row["slot"] < slot or (row["status"] == "running" and not _alive(row["pid"])):
                owed.append((job.name, slot))
            self._plan(job)
        return owed

    def catch_up(self) -> list[str]:
        """Run what is owed, here and now; the jobs that ran."""
        return [name for name, slot in self.owed() if self.run(name, slot)]

    def run_due(self, name: str) -> bool:
        """The scheduler's timer fired for ``name``: run its latest slot, unless someone did."""
        job = self.jobs[name]
        ran = self.run(name, job.cadence.last_slot(self.clock()))
        self._plan(job)
        return ran

    def run(self, name: str, slot: float) -> bool:
        row = self.state.job(name)
        stale = row["pid"] if row is not None and row["slot"] == slot and row["status"] == "running" \
            and not _alive(row["pid"]) else None
        if not self.state.job_claim(name, slot, self.pid, stale_pid=stale):
            return False  # this slot is done or being done
        status, detail, started = "ok", "", time.monotonic()
        try:
            detail = self.jobs[name].work() or "done"
        except NotConfiguredError as err:
            status, detail = "skipped", str(err)
        except Exception as err:  # noqa: BLE001 - a failed job is recorded and shown; the others go on
            log.exception("job %s failed", name)
            status, detail = "failed", f"{type(err).__name__}: {err}"
        self.state.job_finish(name, slot, status, detail)
        log.info("job %s: %s: %s", name, status, detail)
        if self.on_ran is not None:
            self.on_ran(name, slot, status, detail, time.monotonic() - started)
        return True

    def _plan(self, job: Job) -> None:
        self.state.job_plan(job.name, job.cadence.text, job.cadence.next_slot(self.clock()))


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
