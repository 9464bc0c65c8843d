"""The briefing's week: Monday to Sunday in the owner's local time, and the Monday it is read on."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Week:
    start: dt.date                 # the Monday
    tz: dt.tzinfo | None = None    # None: the machine's local time (the owner's), with its summer time

    @property
    def end(self) -> dt.date:
        """The Sunday (included)."""
        return self.start + dt.timedelta(days=6)

    @property
    def briefing_date(self) -> dt.date:
        """The Monday after the week: the day the briefing is read and the date in its file name."""
        return self.start + dt.timedelta(days=7)

    def _midnight(self, day: dt.date) -> dt.datetime:
        if self.tz is not None:
            return dt.datetime.combine(day, dt.time(), self.tz)
        return dt.datetime.combine(day, dt.time()).astimezone()  # that day's own UTC offset

    @property
    def begins(self) -> dt.datetime:
        """Midnight at the start of the Monday: a task finished late on Sunday belongs to Sunday."""
        return self._midnight(self.start)

    @property
    def ends(self) -> dt.datetime:
        """Exclusive: midnight at the start of the briefing's Monday."""
        return self._midnight(self.briefing_date)

    def contains(self, moment: dt.datetime) -> bool:
        return self.begins <= moment < self.ends

    def label(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def week_of(day: dt.date, tz: dt.tzinfo | None = None) -> Week:
    """The week (Monday to Sunday) that holds ``day``."""
    return Week(day - dt.timedelta(days=day.weekday()), tz)


def last_full_week(today: dt.date, tz: dt.tzinfo | None = None) -> Week:
    """The last whole week before ``today``: on a Monday, the seven days that just ended."""
    return week_of(today - dt.timedelta(days=today.weekday() + 7), tz)
