"""A customer who gave only a phone: the confirmation and the reminders go by SMS through the local
Twilio-compatible server, once each, and a withdrawal of SMS consent stops the reminders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub import clock
from hub.auth import SYSTEM
from hub.contacts import record_consent
from hub.models import ConsentStatus, Contact, Purpose
from hub.runtime import Hub
from hub.worker import Worker
from channels.meetings import booking, notify
from channels.meetings.booking import Visitor
from channels.meetings.models import Meeting, MeetingReminder, MeetingType
from tests.channels.meetings.conftest import at, make_host, make_type
from tests.channels.sms.harness import World, make_world

NOW = at("2026-06-01 07:30")
WED_9 = at("2026-06-03 06:00")


@pytest.fixture
def world(hub: Hub, frozen_clock: clock.FrozenClock) -> Iterator[World]:
    frozen_clock.current = NOW
    with make_world(hub) as w:
        yield w


def texts(world: World) -> list[str]:
    world.server.wait_idle()
    return [m["body"] for m in world.server.messages.values()]


def book_by_phone(world: World) -> Meeting:
    host = make_host(world.hub)
    type_id = make_type(world.hub, host_ids=[host], reminder_offsets=[60], reminder_channels=["sms"])
    with world.hub.session() as session, session.begin():
        meeting = booking.book(session, meeting_type=session.get(MeetingType, type_id), starts_at=WED_9,  # type: ignore[arg-type]
                               visitor=Visitor(name="Олег", phone="+7 916 555-00-11", time_zone="Europe/Moscow"))
        session.expunge(meeting)
        return meeting


def test_sms_confirmation_and_one_reminder(world: World, frozen_clock: clock.FrozenClock) -> None:
    meeting = book_by_phone(world)
    assert Worker(world.hub).tick() == 1
    [confirmation] = texts(world)
    assert confirmation.startswith("Записано: Консультация") and "/channels/meetings/m/" in confirmation
    frozen_clock.current = WED_9 - timedelta(minutes=60)
    assert notify.queue_due(world.hub) == 1
    assert Worker(world.hub).tick() == 1
    assert notify.queue_due(world.hub) == 0 and Worker(world.hub).tick() == 0
    sent = texts(world)
    assert len(sent) == 2 and sent[1].startswith("Напоминание: Консультация") and "09:00" in sent[1]
    with world.hub.session() as session:
        [reminder] = session.scalars(select(MeetingReminder).where(MeetingReminder.meeting_id == meeting.id)).all()
    assert reminder.status == "queued" and reminder.channel == "sms"


def test_withdrawn_sms_consent_stops_the_reminder(world: World, frozen_clock: clock.FrozenClock) -> None:
    meeting = book_by_phone(world)
    Worker(world.hub).tick()
    with world.hub.session() as session, session.begin():
        record_consent(session, contact=session.get(Contact, meeting.contact_id), actor=SYSTEM, channel="sms",  # type: ignore[arg-type]
                       status=ConsentStatus.WITHDRAWN, purpose=Purpose.TRANSACTIONAL, source="replied STOP")
    frozen_clock.current = WED_9 - timedelta(minutes=60)
    assert notify.queue_due(world.hub) == 0
    assert Worker(world.hub).tick() == 0
    assert len(texts(world)) == 1  # the confirmation only
