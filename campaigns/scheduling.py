"""When a campaign runs next: APScheduler's CronTrigger read in the campaign's own time zone.

Two promises live here. A recurring campaign that was due several times while nothing ran runs
once: the next time is always computed from *now*, never by walking the missed ones. And a cron
time that a DST change repeats (01:30 twice on a New York November night) runs at most once that
day: each run is keyed by its local wall-clock time (`run_key`), unique per campaign, so the
second 01:30 finds the first one's row. A time that a DST change skips is APScheduler's business:
it fires once, at the first valid moment after it, or not at all that day — never twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from hub.web.i18n import N_


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
    minute, hour, day, month, weekday = expr.split()
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday),
                           timezone=zone_of(zone))
    except ValueError as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: {exc}") from None


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 is Sunday, 1 Monday) in APScheduler's names: its numbers count
    from Monday = 0, and `CronTrigger.from_crontab` passes them through, so "0 10 * * 1" ran on Tuesdays."""
    def one(part: str) -> str:
        body, _, step = part.partition("/")
        ends = body.split("-")
        if not all(e.isdigit() and int(e) <= 7 for e in ends) or len(ends) > 2:
            return part  # "*", a name, or a mistake APScheduler reports
        names = [_DAY_NAMES[int(e)] for e in ends]
        if len(ends) == 2 and int(ends[0]) == 0:  # "0-5": Sunday, then Monday to Friday
            rest = f"mon-{names[1]}" if int(ends[1]) > 1 else "mon" if int(ends[1]) == 1 else ""
            return ",".join(x for x in ("sun", rest) if x) if not step else part
        return "-".join(names) + (f"/{step}" if step else "")

    return ",".join(one(p) for p in field.split(","))


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


# --- cron in words, and the editor's picker for the common cases ----------------------------------

# Crontab weekdays: 0 and 7 are Sunday. Each day has its own phrase, since Russian declines it
# ("каждый понедельник", "каждую среду", "каждое воскресенье").
EVERY_WEEKDAY = {1: N_("every Monday"), 2: N_("every Tuesday"), 3: N_("every Wednesday"), 4: N_("every Thursday"),
                 5: N_("every Friday"), 6: N_("every Saturday"), 0: N_("every Sunday")}
WEEKDAY_NAMES = {1: N_("Monday"), 2: N_("Tuesday"), 3: N_("Wednesday"), 4: N_("Thursday"), 5: N_("Friday"),
                 6: N_("Saturday"), 0: N_("Sunday")}
REPEATS = {"daily": N_("Every day"), "weekly": N_("Every week"), "monthly": N_("Every month"),
           "custom": N_("Custom (cron)")}
_NUMBER = re.compile(r"^\d{1,2}$")


@dataclass(frozen=True)
class Picked:
    """A cron expression as the editor's picker shows it: how often, which day, at what time."""

    every: str  # a key of REPEATS
    weekday: int = 1
    monthday: int = 1
    at: str = "10:00"


def picked(expr: str | None) -> Picked:
    """The picker's reading of `expr`: "custom" unless it is a plain daily, weekly or monthly time."""
    fields = (expr or "").split()
    if len(fields) != 5 or not (_NUMBER.match(fields[0]) and _NUMBER.match(fields[1])) or fields[3] != "*":
        return Picked("custom")
    minute, hour, day, _month, weekday = fields
    if int(minute) > 59 or int(hour) > 23:
        return Picked("custom")
    at = f"{int(hour):02d}:{int(minute):02d}"
    if day == "*" and weekday == "*":
        return Picked("daily", at=at)
    if day == "*" and _NUMBER.match(weekday) and int(weekday) <= 7:
        return Picked("weekly", weekday=int(weekday) % 7, at=at)
    if _NUMBER.match(day) and 1 <= int(day) <= 31 and weekday == "*":
        return Picked("monthly", monthday=int(day), at=at)
    return Picked("custom")


def cron_of(every: str, *, weekday: int = 1, monthday: int = 1, at: str = "10:00") -> str | None:
    """The cron expression of a picker choice; None for "custom" or a time that is not HH:MM."""
    match = re.match(r"^([01]?\d|2[0-3]):([0-5]\d)$", at or "")
    if every not in ("daily", "weekly", "monthly") or match is None:
        return None
    hour, minute = int(match[1]), int(match[2])
    if every == "daily":
        return f"{minute} {hour} * * *"
    if every == "weekly":
        return f"{minute} {hour} * * {weekday % 7}"
    return f"{minute} {hour} {min(max(monthday, 1), 31)} * *"


def in_words(expr: str | None, zone: str, gettext: Callable[[str], str]) -> str | None:
    """"every Monday at 10:00, Europe/Moscow" in the reader's language; None when the expression is
    not one of the shapes said in words (the page then shows the expression itself)."""
    choice = picked(expr)
    if choice.every == "daily":
        when = gettext(N_("every day"))
    elif choice.every == "weekly":
        when = gettext(EVERY_WEEKDAY[choice.weekday])
    elif choice.every == "monthly":
        when = gettext(N_("on day %(day)s of every month")) % {"day": choice.monthday}
    else:
        fields = (expr or "").split()
        if len(fields) == 5 and fields[2:4] == ["*", "*"] and fields[4] == "1-5" and picked(
                " ".join([*fields[:4], "*"])).every == "daily":
            when, choice = gettext(N_("every weekday (Monday to Friday)")), picked(" ".join([*fields[:4], "*"]))
        else:
            return None
    return gettext(N_("%(when)s at %(time)s, %(zone)s")) % {"when": when, "time": choice.at, "zone": zone}
