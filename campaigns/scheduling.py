"""When a campaign runs next: APScheduler's CronTrigger read in the campaign's own time zone.

Two promises live here. A recurring campaign that was due several times while nothing ran runs
once: the next time is always computed from *now*, never by walking the missed ones. And a cron
time that a DST change repeats (01:30 twice on a New York November night) runs at most once that
day: each run is keyed by its local wall-clock time (`run_key`), unique per campaign, so the
second 01:30 finds the first one's row. A time that a DST change skips is APScheduler's business:
it fires once, at the first valid moment after it, or not at all that day — never twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger


class ScheduleError(ValueError):
    """A cron expression or time zone that cannot be used."""


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def cron_trigger(expr: str, zone: str) -> CronTrigger:
    """A CronTrigger for a five-field crontab expression in `zone`; ScheduleError if it is not one."""
    if not expr or len(expr.split()) != 5:
        raise ScheduleError("a cron expression has five fields: minute hour day month weekday")
    try:
        return CronTrigger.from_crontab(expr, timezone=zone_of(zone))
    except ValueError as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: {exc}") from None


def next_cron_time(expr: str, zone: str, *, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`, in UTC (None if the expression never fires again)."""
    trigger = cron_trigger(expr, zone)
    fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return fire.astimezone(timezone.utc) if fire is not None else None


def run_key(when: datetime, zone: str) -> str:
    """A scheduled run's identity: its wall-clock minute in the campaign's zone.

    The repeated hour of an autumn DST change maps both instants to the same key, so the
    unique (campaign, run_key) constraint lets only the first one run.
    """
    return when.astimezone(zone_of(zone)).strftime("%Y-%m-%dT%H:%M")
