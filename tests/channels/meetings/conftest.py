"""Helpers for the meetings tests: plain functions that make hosts and meeting types."""

from __future__ import annotations

from datetime import datetime, timezone

from hub.auth import create_user
from hub.models import Role
from hub.runtime import Hub
from channels.meetings import schedule
from channels.meetings.models import MeetingType
from tests.channels.email.conftest import configure, start_smtp, stop_smtp  # noqa: F401 - reused SMTP helpers

UTC = timezone.utc
WEEKDAYS_9_TO_17 = {d: [(9 * 60, 17 * 60)] for d in range(5)}


def make_host(hub: Hub, *, email: str = "host@example.com", zone: str = "Europe/Moscow",
              hours: dict[int, list[tuple[int, int]]] | None = None, name: str = "Анна Хост") -> int:
    with hub.session() as session, session.begin():
        user = create_user(session, email=email, password="host-password-123", role=Role.AGENT, display_name=name)
        schedule.set_hours(session, user_id=user.id, time_zone=zone, hours=WEEKDAYS_9_TO_17 if hours is None else hours)
        return user.id  # type: ignore[return-value]


def make_type(hub: Hub, *, host_ids: list[int], slug: str = "consultation", **overrides: object) -> int:
    data = schedule.TypeIn(slug=slug, name=overrides.pop("name", "Консультация"), host_ids=host_ids,  # type: ignore[arg-type]
                           location="https://meet.example.com/room-1", **overrides)  # type: ignore[arg-type]
    with hub.session() as session, session.begin():
        return schedule.create_type(session, data=data).id  # type: ignore[return-value]


def load_type(hub: Hub, type_id: int) -> MeetingType:
    with hub.session() as session:
        row = session.get(MeetingType, type_id)
        session.expunge(row)
        return row  # type: ignore[return-value]


def at(text: str) -> datetime:
    """An aware UTC instant from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
