"""Business hours: weekly opening times and holidays in a team's time zone (zoneinfo), and adding a
number of working minutes to an instant (pure: no store, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = {d: [["09:00", "18:00"]] for d in DAYS[:5]}
# Beyond this many days without an open hour the calendar is treated as never open.
HORIZON_DAYS = 400


def _minute(text: str) -> int:
    hours, minutes = text.split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= 24 * 60:
        raise ValueError(f"{text!r} is not a time of day")
    return value


def parse_hours(hours: dict[str, Any]) -> dict[int, list[tuple[int, int]]]:
    """{"mon": [["09:00","18:00"]]} as {0: [(540, 1080)]}; ValueError on a bad day or span."""
    out: dict[int, list[tuple[int, int]]] = {}
    for day, spans in hours.items():
        if day not in DAYS:
            raise ValueError(f"unknown day {day!r}; use {', '.join(DAYS)}")
        parsed = sorted((_minute(a), _minute(b)) for a, b in spans)
        for start, end in parsed:
            if end <= start:
                raise ValueError(f"{day}: a span must end after it starts")
        out[DAYS.index(day)] = parsed
    return out


@dataclass(frozen=True)
class Calendar:
    """When a team works; `always` is a calendar open round the clock (no hours configured)."""

    zone: ZoneInfo
    week: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    always: bool = False

    @classmethod
    def of(cls, *, time_zone: str, hours: dict[str, Any] | None, holidays: list[str] | None) -> Calendar:
        return cls(zone=ZoneInfo(time_zone), week=parse_hours(hours or {}),
                   holidays=frozenset(date.fromisoformat(d) for d in holidays or ()), always=not hours)

    def _spans(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.holidays:
            return []
        spans = []
        for start, end in self.week.get(day.weekday(), []):
            # Wall-clock minutes: a span across a DST change keeps its local opening and closing.
            a = (datetime.combine(day, time(0)) + timedelta(minutes=start)).replace(tzinfo=self.zone)
            b = (datetime.combine(day, time(0)) + timedelta(minutes=end)).replace(tzinfo=self.zone)
            spans.append((a.astimezone(timezone.utc), b.astimezone(timezone.utc)))
        return spans

    def is_open(self, at: datetime) -> bool:
        if self.always:
            return True
        local = at.astimezone(self.zone).date()
        return any(a <= at < b for a, b in self._spans(local) + self._spans(local - timedelta(days=1)))

    def add(self, start: datetime, minutes: float) -> datetime:
        """The instant `minutes` working minutes after `start` (counting only open hours)."""
        if self.always:
            return start + timedelta(minutes=minutes)
        left = timedelta(minutes=minutes)
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(HORIZON_DAYS):
            for a, b in self._spans(day):
                a = max(a, start)
                if b <= a:
                    continue
                if b - a >= left:
                    return a + left
                left -= b - a
            day += timedelta(days=1)
        return start + timedelta(minutes=minutes)  # never open: count plain minutes rather than never

    def between(self, start: datetime, end: datetime) -> float:
        """Working minutes from start to end (0 when end is not after start)."""
        if end <= start:
            return 0.0
        if self.always:
            return (end - start).total_seconds() / 60
        total = timedelta()
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date()
        while day <= last:
            for a, b in self._spans(day):
                a, b = max(a, start), min(b, end)
                if b > a:
                    total += b - a
            day += timedelta(days=1)
        return total.total_seconds() / 60
