"""Booking, moving, cancelling and closing meetings at the service level, on both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hub import clock
from hub.models import Contact, Identity, TimelineEvent
from hub.runtime import Hub
from channels.meetings import booking
from channels.meetings.booking import Actor, BookingError, NotAvailable, SlotTaken, TooLate, Visitor, WrongState
from channels.meetings.models import AvailabilityRule, Meeting, MeetingStatus, MeetingType
from tests.channels.meetings.conftest import at, make_host, make_type

NOW = at("2026-06-01 07:30")  # Monday 10:30 in Moscow
WED_9 = at("2026-06-03 06:00")  # Wednesday 09:00 in Moscow


@pytest.fixture
def setup(hub: Hub, frozen_clock: clock.FrozenClock) -> tuple[Hub, int, int]:
    frozen_clock.current = NOW
    host = make_host(hub)
    type_id = make_type(hub, host_ids=[host], duration_minutes=30, slot_step_minutes=30, min_notice_minutes=240)
    return hub, host, type_id


def book(hub: Hub, type_id: int, starts_at, visitor: Visitor | None = None, **kw) -> Meeting:  # type: ignore[no-untyped-def]
    with hub.session() as session, session.begin():
        mtype = session.get(MeetingType, type_id)
        meeting = booking.book(session, meeting_type=mtype, starts_at=starts_at,  # type: ignore[arg-type]
                               visitor=visitor or Visitor(name="Иван Петров", email="ivan@example.com", time_zone="Europe/Berlin"), **kw)
        session.expunge(meeting)
        return meeting


def act(hub: Hub, uid: str, func, **kw) -> Meeting:  # type: ignore[no-untyped-def]
    with hub.session() as session, session.begin():
        meeting = session.scalars(select(Meeting).where(Meeting.uid == uid)).one()
        func(session, meeting=meeting, **kw)
        session.flush()
        session.expunge(meeting)
        return meeting


def events(hub: Hub, kind: str | None = None) -> list[TimelineEvent]:
    with hub.session() as session:
        query = select(TimelineEvent).where(TimelineEvent.channel == "meetings").order_by(TimelineEvent.id)
        if kind:
            query = query.where(TimelineEvent.kind == kind)
        return list(session.scalars(query))


def test_booking_lands_on_the_timeline_and_finds_the_contact(setup) -> None:  # type: ignore[no-untyped-def]
    hub, host, type_id = setup
    first = book(hub, type_id, WED_9)
    assert first.status == "booked" and first.host_id == host and first.sequence == 0
    assert first.ends_at - first.starts_at == timedelta(minutes=30) and first.visitor_time_zone == "Europe/Berlin"
    # The same person again, by phone and a differently cased email: one contact, the phone attached.
    second = book(hub, type_id, WED_9 + timedelta(hours=1),
                  Visitor(name="Иван", email="IVAN@example.com", phone="+7 916 000-11-22"))
    assert second.contact_id == first.contact_id
    with hub.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 1
        contact = session.get(Contact, first.contact_id)
        assert (contact.display_name, contact.locale, contact.time_zone) == ("Иван Петров", "ru", "Europe/Berlin")
        kinds = {(i.kind, i.value) for i in session.scalars(select(Identity))}
    assert kinds == {("email", "ivan@example.com"), ("phone", "+79160001122")}
    booked = events(hub, "meeting.booked")
    assert len(booked) == 2 and booked[0].contact_id == first.contact_id
    assert booked[0].data["uid"] == first.uid and booked[0].data["meeting_id"] == first.id
    assert booked[0].text == "2026-06-03 08:00–08:30 (Europe/Berlin)"  # the visitor's time, as they chose it


def test_bad_requests_change_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    hub, _host, type_id = setup
    with pytest.raises(BookingError) as missing:
        book(hub, type_id, WED_9, Visitor(name="Никто"))
    assert missing.value.field == "email"
    with pytest.raises(BookingError) as bad:
        book(hub, type_id, WED_9, Visitor(name="X", email="not-an-email"))
    assert bad.value.field == "email"
    with pytest.raises(NotAvailable):  # Saturday
        book(hub, type_id, at("2026-06-06 08:00"))
    with pytest.raises(NotAvailable):  # off the grid: 09:10
        book(hub, type_id, WED_9 + timedelta(minutes=10))
    with pytest.raises(NotAvailable):  # inside the 4 hours of notice (today 12:00 Moscow)
        book(hub, type_id, at("2026-06-01 09:00"))
    with hub.session() as session:
        assert session.scalar(select(func.count()).select_from(Meeting)) == 0
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
    assert events(hub) == []


def test_agents_are_not_bound_by_the_notice(setup) -> None:  # type: ignore[no-untyped-def]
    hub, _host, type_id = setup
    meeting = book(hub, type_id, at("2026-06-01 09:00"), actor=Actor.AGENT)
    assert meeting.status == "booked"


def test_the_second_booking_of_a_slot_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    hub, _host, type_id = setup
    book(hub, type_id, WED_9)
    with pytest.raises(SlotTaken):
        book(hub, type_id, WED_9, Visitor(name="Other", email="other@example.com"))


def test_the_database_refuses_overlaps_even_without_the_check(setup) -> None:  # type: ignore[no-untyped-def]
    hub, host, type_id = setup
    first = book(hub, type_id, WED_9)
    values = {c: getattr(first, c) for c in ("meeting_type_id", "host_id", "contact_id")}
    with pytest.raises(IntegrityError):
        with hub.session() as session, session.begin():
            session.add(Meeting(uid="overlap@test", starts_at=WED_9 + timedelta(minutes=15), ends_at=WED_9 + timedelta(minutes=45),
                                blocked_from=WED_9 + timedelta(minutes=15), blocked_until=WED_9 + timedelta(minutes=45), **values))
    # Touching ranges are fine, and so is overlapping a cancelled meeting.
    with hub.session() as session, session.begin():
        session.add(Meeting(uid="adjacent@test", starts_at=WED_9 + timedelta(minutes=30), ends_at=WED_9 + timedelta(minutes=60),
                            blocked_from=WED_9 + timedelta(minutes=30), blocked_until=WED_9 + timedelta(minutes=60), **values))
    act(hub, first.uid, booking.cancel)
    with hub.session() as session, session.begin():
        session.add(Meeting(uid="after-cancel@test", starts_at=WED_9, ends_at=WED_9 + timedelta(minutes=30),
                            blocked_from=WED_9, blocked_until=WED_9 + timedelta(minutes=30), **values))
    # Moving a meeting onto another one is refused by the update trigger / constraint too.
    with pytest.raises(IntegrityError):
        with hub.session() as session, session.begin():
            row = session.scalars(select(Meeting).where(Meeting.uid == "adjacent@test")).one()
            row.blocked_from, row.blocked_until = WED_9, WED_9 + timedelta(minutes=40)


def test_reschedule_raises_the_sequence_and_keeps_the_uid(setup) -> None:  # type: ignore[no-untyped-def]
    hub, _host, type_id = setup
    meeting = book(hub, type_id, WED_9)
    moved = act(hub, meeting.uid, booking.reschedule, starts_at=WED_9 + timedelta(days=1))
    assert moved.uid == meeting.uid and moved.sequence == 1 and moved.starts_at == WED_9 + timedelta(days=1)
    # The old time is free again; the new one is not.
    book(hub, type_id, WED_9, Visitor(name="B", email="b@example.com"))
    with pytest.raises(SlotTaken):
        book(hub, type_id, WED_9 + timedelta(days=1), Visitor(name="C", email="c@example.com"))
    [event] = events(hub, "meeting.rescheduled")
    assert event.data["previous_starts_at"] == WED_9.isoformat() and event.data["sequence"] == 1


def test_customers_respect_the_minimum_notice_agents_do_not(setup, frozen_clock) -> None:  # type: ignore[no-untyped-def]
    hub, _host, type_id = setup
    meeting = book(hub, type_id, WED_9)
    frozen_clock.current = WED_9 - timedelta(hours=3)  # inside the 4 hours
    with pytest.raises(TooLate):
        act(hub, meeting.uid, booking.cancel)
    with pytest.raises(TooLate):
        act(hub, meeting.uid, booking.reschedule, starts_at=WED_9 + timedelta(days=1))
    with hub.session() as session:
        row = session.scalars(select(Meeting).where(Meeting.uid == meeting.uid)).one()
        assert (row.status, row.sequence, row.starts_at) == ("booked", 0, WED_9)
    cancelled = act(hub, meeting.uid, booking.cancel, actor=Actor.AGENT)
    assert cancelled.status == "cancelled" and cancelled.sequence == 1
    with pytest.raises(WrongState):
        act(hub, meeting.uid, booking.cancel, actor=Actor.AGENT)


def test_completed_fires_the_trigger_and_no_show_is_recorded(setup, frozen_clock) -> None:  # type: ignore[no-untyped-def]
    hub, _host, type_id = setup
    fired = []
    hub.triggers.register("meeting.completed", lambda session, *, event, contact: fired.append((event.kind, contact.id)))
    first = book(hub, type_id, WED_9)
    second = book(hub, type_id, WED_9 + timedelta(hours=1), Visitor(name="B", email="b@example.com"))
    with pytest.raises(WrongState):  # not started yet
        act(hub, first.uid, booking.close, status=MeetingStatus.COMPLETED)
    frozen_clock.current = WED_9 + timedelta(hours=2)
    act(hub, first.uid, booking.close, status=MeetingStatus.COMPLETED)
    act(hub, second.uid, booking.close, status=MeetingStatus.NO_SHOW)
    assert fired == [("meeting.completed", first.contact_id)]
    assert [e.kind for e in events(hub)][-2:] == ["meeting.completed", "meeting.no_show"]
    with pytest.raises(WrongState):
        act(hub, first.uid, booking.close, status=MeetingStatus.NO_SHOW)


def test_a_team_type_gives_the_slot_to_the_next_free_member(setup) -> None:  # type: ignore[no-untyped-def]
    hub, host, _type_id = setup
    other = make_host(hub, email="second@example.com", zone="Europe/Moscow")
    team = make_type(hub, host_ids=[host, other], slug="team-call", team_name="Отдел продаж", duration_minutes=30,
                     slot_step_minutes=30)
    a = book(hub, team, WED_9)
    b = book(hub, team, WED_9, Visitor(name="B", email="b@example.com"))
    assert (a.host_id, b.host_id) == (host, other)
    with pytest.raises(SlotTaken):
        book(hub, team, WED_9, Visitor(name="C", email="c@example.com"))
    # Round robin by load: with one meeting each, the next goes to the first; then the second catches up.
    c = book(hub, team, WED_9 + timedelta(hours=2), Visitor(name="C", email="c@example.com"))
    d = book(hub, team, WED_9 + timedelta(hours=3), Visitor(name="D", email="d@example.com"))
    book(hub, team, WED_9 + timedelta(hours=4), Visitor(name="E", email="e@example.com"))
    assert (c.host_id, d.host_id) == (host, other)
    with hub.session() as session:
        counts = dict(session.execute(select(Meeting.host_id, func.count()).group_by(Meeting.host_id)).all())
    assert counts == {host: 3, other: 2}


def test_demo_data_is_idempotent(hub: Hub) -> None:
    from channels.meetings.demo import demo

    assert demo(hub, seed=7).startswith("skipped")
    make_host(hub, email="agent@example.com", hours={})
    with hub.session() as session, session.begin():
        session.execute(AvailabilityRule.__table__.delete())
    assert "meeting type" in demo(hub, seed=7)
    assert demo(hub, seed=7).startswith("already there; booking page http")
    with hub.session() as session:
        assert session.scalars(select(MeetingType.slug)).all() == ["consultation"]
        assert len(session.scalars(select(AvailabilityRule)).all()) == 10
