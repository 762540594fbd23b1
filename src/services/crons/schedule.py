"""Cron schedules (croniter) and the clock the scheduler reads.

A schedule has the standard 5 fields (minute hour day-of-month month day-of-week), read in
UTC unless the cron names an IANA time zone; croniter's 6th field (seconds) and its @hourly
style aliases are accepted too, as the LangGraph API accepts them.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from src.services.errors import InvalidRequest

SCHEDULE_HINT = (
    "expected the 5-field cron format (minute hour day-of-month month day-of-week), "
    "e.g. '*/5 * * * *' for every 5 minutes"
)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def check_schedule(schedule: str) -> str:
    """The schedule, stripped; InvalidRequest (422) when croniter cannot read it."""
    text = schedule.strip()
    fields = text.split()
    if not text.startswith("@") and len(fields) not in (5, 6):
        raise InvalidRequest(f"schedule {schedule!r} has {len(fields)} fields; {SCHEDULE_HINT}")
    if not croniter.is_valid(text):
        raise InvalidRequest(f"schedule {schedule!r} is not a valid cron schedule; {SCHEDULE_HINT}")
    return text


def zone(timezone: str | None) -> tzinfo:
    """The zone a schedule is read in: UTC, or an IANA name; InvalidRequest for an unknown one."""
    if timezone is None:
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(
            f"timezone {timezone!r} is not an IANA time zone (e.g. 'America/New_York', 'Europe/Paris')"
        ) from None


def next_run(schedule: str, after: datetime, timezone: str | None = None) -> datetime:
    """The first time after `after` that `schedule` (read in `timezone`) names, in UTC."""
    start = after.astimezone(zone(timezone))
    following: datetime = croniter(schedule, start).get_next(datetime)
    return following.astimezone(UTC)
