"""Free slots: a host's weekly hours (in the host's zone) minus exceptions, bookings and notice.

Everything is computed in absolute time (UTC). A span of weekly hours is turned into UTC per local
date with zoneinfo, so a host's 09:00 stays 09:00 on both sides of a DST change, and a day that is
23 or 25 hours long yields as many slots as it really has. A wall-clock time that does not exist (the
hour skipped in spring) is moved forward the way clocks are; one that happens twice takes the first.
The visitor's zone only decides how slots are grouped into days and shown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.meetings.models import (
    AvailabilityException, AvailabilityRule, ExceptionKind, HostSchedule, Meeting, MeetingStatus, MeetingType,
)

UTC = timezone.utc
Span = tuple[datetime, datetime]


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name the system knows, sorted (for the zone picker and validation)."""
    return (*sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))), "UTC")


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The zone called `name`, or None for an unknown or malformed name."""
    if not name or len(name) > 64 or name.startswith("/") or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def wall_to_utc(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The instant a host's clock shows `minute` minutes after midnight of `day` (1440 = next midnight).

    zoneinfo resolves a wall time inside a spring-forward gap with the offset before the change
    (fold=0), which moves it forward by the gap, as clocks do; a repeated autumn hour takes the first.
    """
    day, minute = day + timedelta(days=minute // 1440), minute % 1440
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone).astimezone(UTC)


@dataclass
class HostCalendar:
    """What decides one host's free time: zone, weekly hours, exceptions, and busy spans."""

    user_id: int
    zone: ZoneInfo
    weekly: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    off: dict[date, list[tuple[int | None, int | None]]] = field(default_factory=dict)
    extra: dict[date, list[tuple[int, int]]] = field(default_factory=dict)
    busy: list[Span] = field(default_factory=list)

    def working_spans(self, start: datetime, end: datetime) -> list[Span]:
        """The host's working hours overlapping two instants, as merged UTC spans (not clipped, so
        slots keep starting on the hour the span starts)."""
        first = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date() + timedelta(days=1)
        spans: list[Span] = []
        day = first
        while day <= last:
            local: list[tuple[int, int]] = list(self.weekly.get(day.weekday(), []))
            for off_start, off_end in self.off.get(day, []):
                if off_start is None or off_end is None:
                    local = []
                    break
                local = _subtract_minutes(local, off_start, off_end)
            local += self.extra.get(day, [])
            for a, b in local:
                spans.append((wall_to_utc(day, a, self.zone), wall_to_utc(day, b, self.zone)))
            day += timedelta(days=1)
        return _merge([(a, b) for a, b in spans if b > start and a < end and b > a])


def _subtract_minutes(spans: list[tuple[int, int]], a: int, b: int) -> list[tuple[int, int]]:
    out = []
    for s, e in spans:
        if e <= a or s >= b:
            out.append((s, e))
            continue
        if s < a:
            out.append((s, a))
        if e > b:
            out.append((b, e))
    return out


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


@dataclass(frozen=True)
class Slot:
    starts_at: datetime  # UTC
    ends_at: datetime
    host_ids: tuple[int, ...]  # the hosts free then, in the type's order


def host_calendars(session: Session, *, host_ids: Sequence[int], start: datetime, end: datetime,
                   default_zone: str, ignore_meeting_id: int | None = None) -> list[HostCalendar]:
    """Load the hosts' schedules and their bookings between two instants."""
    if not host_ids:
        return []
    zones = {row.user_id: row.time_zone for row in session.scalars(
        select(HostSchedule).where(HostSchedule.user_id.in_(host_ids)))}
    calendars = {hid: HostCalendar(user_id=hid, zone=zone_or_none(zones.get(hid)) or ZoneInfo(default_zone))
                 for hid in host_ids}
    for rule in session.scalars(select(AvailabilityRule).where(AvailabilityRule.user_id.in_(host_ids))):
        calendars[rule.user_id].weekly.setdefault(rule.weekday, []).append((rule.start_minute, rule.end_minute))
    first, last = (start - timedelta(days=2)).date(), (end + timedelta(days=2)).date()
    for exc in session.scalars(select(AvailabilityException).where(
            AvailabilityException.user_id.in_(host_ids), AvailabilityException.day >= first,
            AvailabilityException.day <= last)):
        cal = calendars[exc.user_id]
        if exc.kind == ExceptionKind.EXTRA and exc.start_minute is not None and exc.end_minute is not None:
            cal.extra.setdefault(exc.day, []).append((exc.start_minute, exc.end_minute))
        elif exc.kind == ExceptionKind.OFF:
            cal.off.setdefault(exc.day, []).append((exc.start_minute, exc.end_minute))
    busy = select(Meeting.host_id, Meeting.blocked_from, Meeting.blocked_until, Meeting.id).where(
        Meeting.host_id.in_(host_ids), Meeting.status != MeetingStatus.CANCELLED,
        Meeting.blocked_until > start - timedelta(days=1), Meeting.blocked_from < end + timedelta(days=1))
    for row in session.execute(busy):
        if row.id != ignore_meeting_id:
            calendars[row.host_id].busy.append((row.blocked_from, row.blocked_until))
    return [calendars[hid] for hid in host_ids]


def free_slots(meeting_type: MeetingType, calendars: Sequence[HostCalendar], *, now: datetime,
               start: datetime, end: datetime) -> list[Slot]:
    """Bookable slots of a type starting in [start, end): inside working hours, outside other
    meetings and their buffers, after the minimum notice and before the booking horizon."""
    duration = timedelta(minutes=meeting_type.duration_minutes)
    before = timedelta(minutes=meeting_type.buffer_before_minutes)
    after = timedelta(minutes=meeting_type.buffer_after_minutes)
    step = timedelta(minutes=max(5, meeting_type.slot_step_minutes or meeting_type.duration_minutes))
    earliest = max(start, now + timedelta(minutes=meeting_type.min_notice_minutes))
    latest = min(end, now + timedelta(days=meeting_type.horizon_days))
    if earliest >= latest:
        return []
    hosts_at: dict[datetime, list[int]] = defaultdict(list)
    for cal in calendars:
        for span_start, span_end in cal.working_spans(earliest - duration, latest + duration):
            # Slots start on the span's own start (09:00, 09:30…), not on a global grid.
            candidate = span_start
            while candidate + duration <= span_end:
                if earliest <= candidate < latest and not _collides(cal.busy, candidate - before, candidate + duration + after):
                    hosts_at[candidate].append(cal.user_id)
                candidate += step
    order = {cal.user_id: i for i, cal in enumerate(calendars)}
    return [Slot(at, at + duration, tuple(sorted(set(hosts), key=order.__getitem__)))
            for at, hosts in sorted(hosts_at.items())]


def _collides(busy: Sequence[Span], a: datetime, b: datetime) -> bool:
    return any(s < b and e > a for s, e in busy)


def slots_for(session: Session, meeting_type: MeetingType, *, now: datetime, start: datetime, end: datetime,
              default_zone: str, ignore_meeting_id: int | None = None) -> list[Slot]:
    """Free slots of a stored type between two instants (the page's week, or one slot being booked)."""
    calendars = host_calendars(session, host_ids=list(meeting_type.host_ids), start=start, end=end,
                               default_zone=default_zone, ignore_meeting_id=ignore_meeting_id)
    return free_slots(meeting_type, calendars, now=now, start=start, end=end)


def group_by_day(slots: Iterable[Slot], zone: ZoneInfo) -> dict[date, list[tuple[Slot, datetime]]]:
    """Slots by the visitor's local date, each with its local start time."""
    days: dict[date, list[tuple[Slot, datetime]]] = defaultdict(list)
    for slot in slots:
        local = slot.starts_at.astimezone(zone)
        days[local.date()].append((slot, local))
    return dict(days)


def repeated_wall_time(local: datetime) -> bool:
    """Whether this local time happens twice that day (the hour a zone's clocks fall back repeats)."""
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


def local_day_bounds(day: date, zone: ZoneInfo, days: int = 1) -> Span:
    """The instants a visitor's run of local days starts and ends (days of 23 or 25 hours included)."""
    return wall_to_utc(day, 0, zone), wall_to_utc(day + timedelta(days=days), 0, zone)
