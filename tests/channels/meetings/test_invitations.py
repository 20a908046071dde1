"""Invitations (iCalendar REQUEST/CANCEL, parsed back by `icalendar`) received by a real SMTP server,
and reminders: sent once across worker restarts, re-planned on changes, stopped by withdrawn consent."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import select

from hub import clock
from hub.auth import SYSTEM
from hub.contacts import record_consent
from hub.models import ConsentStatus, Contact, Delivery, Purpose
from hub.runtime import Hub
from hub.worker import Worker
from channels.email.mime import EmailContent
from channels.meetings import booking, notify
from channels.meetings.booking import Visitor
from channels.meetings.models import Meeting, MeetingReminder, MeetingType
from tests.channels.meetings.conftest import at, configure, make_host, make_type, start_smtp, stop_smtp

NOW = at("2026-06-01 07:30")
WED_9 = at("2026-06-03 06:00")
LONG_NAME = "Иван; Петров, \\ очень-очень длинное имя участника встречи, чтобы строка точно была длиннее 75 октетов"


@pytest.fixture
def smtp(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = start_smtp(tmp_path / "smtp")
    yield server
    stop_smtp(server)


@pytest.fixture
def world(hub: Hub, frozen_clock: clock.FrozenClock, smtp):  # type: ignore[no-untyped-def]
    frozen_clock.current = NOW
    configure(hub, **smtp.settings())
    host = make_host(hub)
    type_id = make_type(hub, host_ids=[host], duration_minutes=45, slot_step_minutes=30, reminder_offsets=[1440, 60],
                        reminder_channels=["email", "sms"], description="Обсудим заказ: доставка, оплата; вопросы\nи ответы")
    return hub, type_id, smtp, frozen_clock


def book(hub: Hub, type_id: int, starts_at) -> str:  # type: ignore[no-untyped-def]
    with hub.session() as session, session.begin():
        meeting = booking.book(session, meeting_type=session.get(MeetingType, type_id), starts_at=starts_at,  # type: ignore[arg-type]
                               visitor=Visitor(name=LONG_NAME, email="ivan@example.com", phone="+79160001122",
                                               time_zone="Europe/Berlin", locale="ru"))
        return meeting.uid


def act(hub: Hub, uid: str, func, **kw) -> None:  # type: ignore[no-untyped-def]
    with hub.session() as session, session.begin():
        func(session, meeting=session.scalars(select(Meeting).where(Meeting.uid == uid)).one(), **kw)


CUSTOMER, HOST = "ivan@example.com", "host@example.com"


def received(server, to: str = CUSTOMER) -> list[bytes]:  # type: ignore[no-untyped-def]
    """The messages the SMTP server accepted for one recipient, oldest first."""
    return [raw for meta, raw in server.received() if meta["rcpt_tos"] == [to]]


def calendars(server, to: str = CUSTOMER) -> list[tuple[email.message.EmailMessage, str, Calendar, Calendar]]:  # type: ignore[no-untyped-def]
    """Each received message with its MIME method, the calendar of the alternative and of the attachment."""
    out = []
    for raw in received(server, to):
        message = email.message_from_bytes(raw, policy=policy.default)
        parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        if not parts:
            out.append((message, "", None, None))
            continue
        inline = next(p for p in parts if p.get_content_disposition() != "attachment")
        attached = next(p for p in parts if p.get_content_disposition() == "attachment")
        assert attached.get_filename() == "invite.ics"
        assert inline.get_param("method") == attached.get_param("method")
        out.append((message, inline.get_param("method"), Calendar.from_ical(inline.get_payload(decode=True)),
                    Calendar.from_ical(attached.get_payload(decode=True))))
    return out


def event_of(cal: Calendar):  # type: ignore[no-untyped-def]
    [event] = cal.walk("VEVENT")
    return event


def test_invitations_request_then_cancel_with_stable_uid_and_rising_sequence(world) -> None:  # type: ignore[no-untyped-def]
    hub, type_id, smtp, clk = world
    uid = book(hub, type_id, WED_9)
    assert Worker(hub).tick() == 2  # the customer's invitation and the host's copy
    act(hub, uid, booking.reschedule, starts_at=WED_9 + timedelta(days=1))
    act(hub, uid, booking.reschedule, starts_at=WED_9 + timedelta(days=1, hours=2))
    act(hub, uid, booking.cancel)
    assert Worker(hub).tick() == 6
    received = calendars(smtp)
    assert [method for _m, method, _a, _b in received] == ["REQUEST", "REQUEST", "REQUEST", "CANCEL"]
    events = [event_of(inline) for _m, _method, inline, _att in received]
    assert {str(e["UID"]) for e in events} == {uid}
    assert [int(e["SEQUENCE"]) for e in events] == [0, 1, 2, 3]
    assert [str(c["METHOD"]) for _m, _x, c, _y in received] == ["REQUEST", "REQUEST", "REQUEST", "CANCEL"]
    first, last = events[0], events[-1]
    assert first["DTSTART"].dt == WED_9 and first["DTEND"].dt == WED_9 + timedelta(minutes=45)
    assert events[2]["DTSTART"].dt == WED_9 + timedelta(days=1, hours=2)
    assert str(last["STATUS"]) == "CANCELLED" and str(first["STATUS"]) == "CONFIRMED"
    # Text is escaped and long lines are folded on the wire, and both come back intact.
    raw = received[0][0]
    ics_text = next(p for p in raw.walk() if p.get_content_type() == "text/calendar").get_payload(decode=True).decode()
    assert all(len(line.encode()) <= 75 for line in ics_text.split("\r\n"))
    assert "\r\n " in ics_text  # folded continuation lines
    assert "доставка\\, оплата\\; вопросы\\nи ответы" in ics_text.replace("\r\n ", "")
    assert str(first["DESCRIPTION"]).startswith("Обсудим заказ: доставка, оплата; вопросы\nи ответы")
    assert str(first["SUMMARY"]) == f"Консультация: {LONG_NAME}"
    customer, host = first["ATTENDEE"]
    assert str(customer) == "mailto:ivan@example.com" and customer.params["CN"] == LONG_NAME
    assert str(host) == f"mailto:{HOST}" and host.params["ROLE"] == "CHAIR"
    assert str(first["ORGANIZER"]) == "mailto:support@hub.example.com"
    # The host gets the same entries (same UID, same SEQUENCEs) in their own language and zone (Moscow).
    host_copies = calendars(smtp, HOST)
    assert [(m, int(event_of(c)["SEQUENCE"]), str(event_of(c)["UID"])) for _r, m, c, _a in host_copies] == [
        ("REQUEST", 0, uid), ("REQUEST", 1, uid), ("REQUEST", 2, uid), ("CANCEL", 3, uid)]
    assert host_copies[0][0]["Subject"].startswith("Новая встреча:") and "09:00" in host_copies[0][0]["Subject"]
    # The email is in the visitor's language, with the time in their zone (Berlin, 08:00).
    assert raw["Subject"].startswith("Подтверждено: Консультация")
    assert "08:00" in raw.get_body(("plain",)).get_content()


def test_the_email_model_refuses_a_method_that_does_not_match(world) -> None:  # type: ignore[no-untyped-def]
    hub, type_id, _smtp, _clk = world
    uid = book(hub, type_id, WED_9)
    with hub.session() as session:
        meeting = session.scalars(select(Meeting).where(Meeting.uid == uid)).one()
        method, ics = notify.invitation_ics(session, hub, meeting, session.get(MeetingType, type_id), now=NOW)  # type: ignore[arg-type]
    assert method == "REQUEST"
    with pytest.raises(ValueError):
        EmailContent.model_validate({"subject": "x", "text": "y", "calendar": {"method": "CANCEL", "ics": ics}})


def reminder_deliveries(hub: Hub) -> list[Delivery]:
    with hub.session() as session:
        return list(session.scalars(select(Delivery).where(Delivery.idempotency_key.like("%:reminder:%")).order_by(Delivery.id)))


def test_a_reminder_is_sent_once_across_worker_restarts(world) -> None:  # type: ignore[no-untyped-def]
    hub, type_id, smtp, clk = world
    uid = book(hub, type_id, WED_9)
    assert Worker(hub).tick() == 2  # the invitation and the host's copy
    with hub.session() as session:
        planned = list(session.scalars(select(MeetingReminder).order_by(MeetingReminder.due_at)))
    # SMS is not configured on this hub: only email reminders are sent; the SMS rows are skipped when due.
    assert [(r.channel, r.offset_minutes) for r in planned if r.channel == "email"] == [("email", 1440), ("email", 60)]
    assert notify.queue_due(hub) == 0  # nothing due yet
    clk.current = WED_9 - timedelta(hours=24)
    assert notify.queue_due(hub) == 1
    assert notify.queue_due(hub) == 0  # a second tick (or a restarted scheduler) adds nothing
    assert Worker(hub, name="first").tick() == 1
    assert Worker(hub, name="after-restart").tick() == 0
    assert notify.queue_due(hub) == 0
    assert len(received(smtp)) == 2
    [delivery] = reminder_deliveries(hub)
    assert delivery.status == "sent" and delivery.idempotency_key == f"meeting:{uid}:reminder:email:1440:0"
    message = email.message_from_bytes(received(smtp)[-1], policy=policy.default)
    assert message["Subject"].startswith("Напоминание: Консультация")
    with hub.session() as session:
        skipped = session.scalars(select(MeetingReminder).where(MeetingReminder.channel == "sms")).all()
        assert {r.status for r in skipped if r.offset_minutes == 1440} == {"skipped"}


def test_reminders_are_replanned_on_reschedule_and_dropped_on_cancel(world) -> None:  # type: ignore[no-untyped-def]
    hub, type_id, _smtp, clk = world
    uid = book(hub, type_id, WED_9)
    clk.current = WED_9 - timedelta(hours=24)
    assert notify.queue_due(hub) == 1  # queued for now; not sent yet
    act(hub, uid, booking.reschedule, starts_at=WED_9 + timedelta(days=2), actor=booking.Actor.AGENT)
    [old] = reminder_deliveries(hub)
    assert old.status == "cancelled"
    with hub.session() as session:
        current = session.scalars(select(MeetingReminder).where(MeetingReminder.status == "planned",
                                                                MeetingReminder.channel == "email")).all()
    assert sorted(r.due_at for r in current) == [WED_9 + timedelta(days=1), WED_9 + timedelta(days=2, hours=-1)]
    assert {r.sequence for r in current} == {1}
    act(hub, uid, booking.cancel, actor=booking.Actor.AGENT)
    clk.current = WED_9 + timedelta(days=2)
    assert notify.queue_due(hub) == 0
    assert len(reminder_deliveries(hub)) == 1


def test_reminders_respect_withdrawn_consent(world) -> None:  # type: ignore[no-untyped-def]
    hub, type_id, smtp, clk = world
    uid = book(hub, type_id, WED_9)
    Worker(hub).tick()
    with hub.session() as session, session.begin():
        meeting = session.scalars(select(Meeting).where(Meeting.uid == uid)).one()
        record_consent(session, contact=session.get(Contact, meeting.contact_id), actor=SYSTEM, channel="email",  # type: ignore[arg-type]
                       status=ConsentStatus.WITHDRAWN, purpose=Purpose.TRANSACTIONAL, source="asked by phone")
    clk.current = WED_9 - timedelta(minutes=60)
    assert notify.queue_due(hub) == 0
    assert Worker(hub).tick() == 0
    assert reminder_deliveries(hub) == [] and len(received(smtp)) == 1
    with hub.session() as session:
        notes = {r.note for r in session.scalars(select(MeetingReminder).where(MeetingReminder.channel == "email"))}
    assert notes == {"consent withdrawn"}


def test_the_reminder_tick_is_a_valid_once_only_job(world) -> None:  # type: ignore[no-untyped-def]
    from hub.scheduler import validate_jobs

    hub, type_id, smtp, clk = world
    [job] = hub.channel("meetings").jobs()
    assert job.id == "meetings.queue_reminders" and job.once and job.seconds == 60
    assert validate_jobs([job]) == [job]
    book(hub, type_id, WED_9)
    clk.current = WED_9 - timedelta(minutes=59)
    job.func(hub)  # what the scheduler runs; after downtime both are due, and only the nearer one goes
    assert [d.idempotency_key.split(":")[-2] for d in reminder_deliveries(hub)] == ["60"]
    with hub.session() as session:
        day_before = session.scalars(select(MeetingReminder).where(MeetingReminder.channel == "email",
                                                                   MeetingReminder.offset_minutes == 1440)).one()
    assert (day_before.status, day_before.note) == ("skipped", "a nearer reminder is due")
