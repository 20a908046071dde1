"""Demo data for meetings: the demo agent's weekday hours and one bookable meeting type (idempotent)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from hub.models import User
from channels.meetings import schedule
from channels.meetings.models import AvailabilityRule, LocationKind, MeetingType

if TYPE_CHECKING:
    from hub.runtime import Hub

DEMO_AGENT = "agent@example.com"
DEMO_SLUG = "consultation"


def demo(hub: Hub, *, seed: int) -> str:
    """Give the demo agent Mon–Fri 09:00–13:00 and 14:00–18:00 and a 30-minute consultation."""
    with hub.session() as session, session.begin():
        agent = session.scalars(select(User).where(User.email == DEMO_AGENT)).first()
        if agent is None:
            return f"skipped: no demo user {DEMO_AGENT}"
        added = []
        if session.scalars(select(AvailabilityRule.id).where(AvailabilityRule.user_id == agent.id)).first() is None:
            hours = {day: [(9 * 60, 13 * 60), (14 * 60, 18 * 60)] for day in range(5)}
            zone = agent.time_zone or hub.settings.default_timezone
            schedule.set_hours(session, user_id=agent.id, time_zone=zone, hours=hours)  # type: ignore[arg-type]
            added.append("weekday hours")
        if session.scalars(select(MeetingType.id).where(MeetingType.slug == DEMO_SLUG)).first() is None:
            schedule.create_type(session, data=schedule.TypeIn(
                slug=DEMO_SLUG, name="Консультация", host_ids=[agent.id],  # type: ignore[list-item]
                description="30 минут по видеосвязи: ответим на вопросы о заказе, доставке и оплате.",
                duration_minutes=30, buffer_after_minutes=10, min_notice_minutes=120, horizon_days=30,
                location_kind=LocationKind.VIDEO, location="https://meet.example.com/consultation"))
            added.append("a meeting type")
    page = f"{hub.settings.public_base_url}/channels/meetings/{DEMO_SLUG}"
    return ("added " + " and ".join(added) if added else "already there") + f"; booking page {page}"
