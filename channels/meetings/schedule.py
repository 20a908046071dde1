"""Setting meetings up: meeting types, a host's weekly hours and zone, exceptions and holidays."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub import clock
from hub.models import User
from channels.meetings.models import (
    AvailabilityException, AvailabilityRule, ExceptionKind, HostSchedule, LocationKind, Meeting, MeetingType,
)
from channels.meetings.slots import zone_or_none

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–—]\s*(\d{1,2}):(\d{2})\s*$")
REMINDER_CHANNELS = ("email", "sms")


class ScheduleError(ValueError):
    """A setting that cannot be saved; `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class TypeIn:
    """A meeting type as a form or the demo loader gives it."""

    slug: str
    name: str
    host_ids: list[int]
    description: str = ""
    team_name: str | None = None
    duration_minutes: int = 30
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 240
    horizon_days: int = 30
    slot_step_minutes: int | None = None
    location_kind: str = LocationKind.VIDEO
    location: str = ""
    reminder_offsets: list[int] = field(default_factory=lambda: [1440, 60])
    reminder_channels: list[str] = field(default_factory=lambda: ["email", "sms"])
    active: bool = True


def _check_type(session: Session, data: TypeIn, *, type_id: int | None) -> dict[str, Any]:
    slug = (data.slug or "").strip().lower()
    if not _SLUG.match(slug):
        raise ScheduleError("slug", "use 3–80 lowercase letters, digits and hyphens")
    taken = session.scalars(select(MeetingType.id).where(MeetingType.slug == slug)).first()
    if taken is not None and taken != type_id:
        raise ScheduleError("slug", "another meeting type uses this address")
    name = " ".join((data.name or "").split())[:200]
    if not name:
        raise ScheduleError("name", "a name is required")
    hosts = list(dict.fromkeys(int(h) for h in data.host_ids))
    if not hosts or len(hosts) > 50:
        raise ScheduleError("host_ids", "choose one to fifty hosts")
    known = set(session.scalars(select(User.id).where(User.id.in_(hosts), User.is_active.is_(True))))
    if known != set(hosts):
        raise ScheduleError("host_ids", "every host must be an active user")
    limits = {"duration_minutes": (5, 720), "buffer_before_minutes": (0, 240), "buffer_after_minutes": (0, 240),
              "min_notice_minutes": (0, 60 * 24 * 30), "horizon_days": (1, 365)}
    numbers = {}
    for key, (low, high) in limits.items():
        value = getattr(data, key)
        if not isinstance(value, int) or not low <= value <= high:
            raise ScheduleError(key, f"must be a whole number from {low} to {high}")
        numbers[key] = value
    step = data.slot_step_minutes or numbers["duration_minutes"]
    if not 5 <= step <= 720:
        raise ScheduleError("slot_step_minutes", "must be a whole number from 5 to 720")
    if data.location_kind not in set(LocationKind):
        raise ScheduleError("location_kind", "choose phone, video or address")
    offsets = sorted({int(o) for o in data.reminder_offsets}, reverse=True)
    if len(offsets) > 5 or any(not 5 <= o <= 60 * 24 * 14 for o in offsets):
        raise ScheduleError("reminder_offsets", "up to five offsets, each from 5 minutes to 14 days")
    channels = [c for c in dict.fromkeys(data.reminder_channels) if c]
    if any(c not in REMINDER_CHANNELS for c in channels):
        raise ScheduleError("reminder_channels", "reminders go by email or SMS")
    return dict(slug=slug, name=name, description=(data.description or "")[:5000],
                team_name=(" ".join((data.team_name or "").split())[:200] or None) if len(hosts) > 1 or data.team_name else None,
                host_ids=hosts, owner_user_id=hosts[0] if len(hosts) == 1 else None, slot_step_minutes=step,
                location_kind=data.location_kind, location=(data.location or "").strip()[:500],
                reminder_offsets=offsets, reminder_channels=channels, active=bool(data.active), **numbers)


def create_type(session: Session, *, data: TypeIn) -> MeetingType:
    values = _check_type(session, data, type_id=None)
    row = MeetingType(**values)
    session.add(row)
    session.flush()
    return row


def update_type(session: Session, *, meeting_type: MeetingType, data: TypeIn) -> MeetingType:
    for key, value in _check_type(session, data, type_id=meeting_type.id).items():
        setattr(meeting_type, key, value)
    meeting_type.updated_at = clock.now()
    session.flush()
    return meeting_type


class TypeInUse(ValueError):
    """A meeting type that meetings were booked with is deactivated, not deleted: they refer to it."""


def delete_type(session: Session, *, meeting_type: MeetingType) -> None:
    """Delete a meeting type nobody booked; one with meetings raises TypeInUse."""
    booked = session.scalar(select(func.count()).select_from(Meeting).where(Meeting.meeting_type_id == meeting_type.id))
    if booked:
        raise TypeInUse(f"meeting type {meeting_type.id} has {booked} meetings; deactivate it instead (active false)")
    session.delete(meeting_type)
    session.flush()


def parse_spans(text: str, *, field_name: str) -> list[tuple[int, int]]:
    """"09:00-12:00, 13:00-18:00" → minute spans; "" → none; 24:00 allowed as an end."""
    spans: list[tuple[int, int]] = []
    for part in filter(None, (p.strip() for p in (text or "").replace(";", ",").split(","))):
        match = _SPAN.match(part)
        if not match:
            raise ScheduleError(field_name, "write hours like 09:00-13:00, 14:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or start >= 1440 or end > 1440 or start >= end:
            raise ScheduleError(field_name, "each span must start before it ends, within one day")
        spans.append((start, end))
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise ScheduleError(field_name, "the spans overlap")
    return spans


def format_spans(spans: list[tuple[int, int]]) -> str:
    return ", ".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in sorted(spans))


def weekly_hours(session: Session, *, user_id: int) -> dict[int, list[tuple[int, int]]]:
    hours: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
    for rule in session.scalars(select(AvailabilityRule).where(AvailabilityRule.user_id == user_id)):
        hours[rule.weekday].append((rule.start_minute, rule.end_minute))
    return hours


def host_zone(session: Session, *, user_id: int) -> str | None:
    row = session.get(HostSchedule, user_id)
    return row.time_zone if row else None


def set_hours(session: Session, *, user_id: int, time_zone: str, hours: dict[int, list[tuple[int, int]]]) -> None:
    """Replace a host's weekly hours and zone."""
    if zone_or_none(time_zone) is None:
        raise ScheduleError("time_zone", "choose a time zone from the list")
    row = session.get(HostSchedule, user_id)
    if row is None:
        session.add(HostSchedule(user_id=user_id, time_zone=time_zone, updated_at=clock.now()))
    else:
        row.time_zone, row.updated_at = time_zone, clock.now()
    session.execute(delete(AvailabilityRule).where(AvailabilityRule.user_id == user_id))
    for weekday, spans in hours.items():
        if not 0 <= weekday <= 6:
            raise ScheduleError("hours", "weekday must be 0 (Monday) to 6 (Sunday)")
        for start, end in spans:
            session.add(AvailabilityRule(user_id=user_id, weekday=weekday, start_minute=start, end_minute=end))
    session.flush()


def add_exception(session: Session, *, user_id: int, day: date, kind: ExceptionKind = ExceptionKind.OFF,
                  spans: list[tuple[int, int]] | None = None, note: str = "") -> list[AvailabilityException]:
    """A day off (no spans: the whole day), hours off, or extra hours on one date."""
    if kind == ExceptionKind.EXTRA and not spans:
        raise ScheduleError("hours", "extra hours need at least one span")
    rows = [AvailabilityException(user_id=user_id, day=day, kind=kind.value, start_minute=a, end_minute=b,
                                  note=(note or "")[:200]) for a, b in (spans or [(None, None)])]  # type: ignore[misc]
    session.add_all(rows)
    session.flush()
    return rows


def exceptions_of(session: Session, *, user_id: int, since: date) -> list[AvailabilityException]:
    return list(session.scalars(select(AvailabilityException).where(
        AvailabilityException.user_id == user_id, AvailabilityException.day >= since,
    ).order_by(AvailabilityException.day, AvailabilityException.start_minute)))


def delete_exception(session: Session, *, user_id: int, exception_id: int) -> bool:
    result = session.execute(delete(AvailabilityException).where(
        AvailabilityException.id == exception_id, AvailabilityException.user_id == user_id))
    return bool(result.rowcount)
