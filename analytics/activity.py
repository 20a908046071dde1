"""Channel and team activity: timeline events in and out per channel and month, and what each user
sent or logged, from the precomputed `analytics_channel_month`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import ChannelMonth, ResponseMonth
from hub.models import User


@dataclass
class ChannelRow:
    channel: str
    incoming: dict[int, int] = field(default_factory=dict)  # month -> events
    outgoing: dict[int, int] = field(default_factory=dict)
    internal: dict[int, int] = field(default_factory=dict)

    def total(self, direction: str) -> int:
        return sum(getattr(self, direction).values())


@dataclass(frozen=True)
class TeamRow:
    user_id: int
    name: str
    by_month: dict[int, int]  # events the user acted in (sent, logged, answered)

    @property
    def total(self) -> int:
        return sum(self.by_month.values())


_DIRECTIONS = {"in": "incoming", "out": "outgoing", "internal": "internal"}


def channels(session: Session, *, now: datetime, months: int = 12) -> tuple[list[int], list[ChannelRow]]:
    """(the months, one row per channel) over the last `months` months."""
    current = now.year * 12 + now.month - 1
    span = list(range(current - months + 1, current + 1))
    rows: dict[str, ChannelRow] = {}
    for month, channel, direction, n in session.execute(
            select(ChannelMonth.month, ChannelMonth.channel, ChannelMonth.direction, func.sum(ChannelMonth.events))
            .where(ChannelMonth.month >= span[0], ChannelMonth.month <= span[-1])
            .group_by(ChannelMonth.month, ChannelMonth.channel, ChannelMonth.direction)):
        row = rows.setdefault(channel, ChannelRow(channel))
        bucket = getattr(row, _DIRECTIONS.get(direction, "internal"))
        bucket[int(month)] = bucket.get(int(month), 0) + int(n)
    return span, sorted(rows.values(), key=lambda r: -(r.total("incoming") + r.total("outgoing")))


def team(session: Session, *, now: datetime, months: int = 12) -> tuple[list[int], list[TeamRow]]:
    """(the months, one row per user who acted on the timeline) over the last `months` months."""
    current = now.year * 12 + now.month - 1
    span = list(range(current - months + 1, current + 1))
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    for user_id, month, n in session.execute(
            select(ChannelMonth.user_id, ChannelMonth.month, func.sum(ChannelMonth.events))
            .where(ChannelMonth.user_id != 0, ChannelMonth.month >= span[0], ChannelMonth.month <= span[-1])
            .group_by(ChannelMonth.user_id, ChannelMonth.month)):
        counts[int(user_id)][int(month)] = int(n)
    names = {u.id: u.display_name or u.email for u in session.scalars(select(User).where(User.id.in_(list(counts))))}
    rows = [TeamRow(uid, names.get(uid, f"#{uid}"), by) for uid, by in counts.items()]
    return span, sorted(rows, key=lambda r: (-r.total, r.name))


def responses(session: Session, *, now: datetime, months: int = 12) -> tuple[list[int], dict[str, dict[int, tuple[int, float]]]]:
    """(the months, channel -> month -> (replies, mean hours to reply)) over the last `months` months."""
    current = now.year * 12 + now.month - 1
    span = list(range(current - months + 1, current + 1))
    found: dict[str, dict[int, tuple[int, float]]] = defaultdict(dict)
    for row in session.scalars(select(ResponseMonth).where(ResponseMonth.month >= span[0],
                                                           ResponseMonth.month <= span[-1])):
        # julianday() carries about a millisecond of float noise: hours to three decimals are exact enough.
        found[row.channel][row.month] = (row.replies, round(row.seconds / row.replies / 3600, 3) if row.replies else 0.0)
    return span, dict(found)
