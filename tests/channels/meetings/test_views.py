"""The agents' pages: meeting types, weekly hours and exceptions, the contact page's panel, and the
actions on a meeting (reschedule, cancel, completed, no-show), through the real routes and CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from hub import clock
from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.models import IdentityKind, TimelineEvent, User
from hub.runtime import Hub
from channels.meetings.models import AvailabilityException, AvailabilityRule, HostSchedule, Meeting, MeetingType
from tests.channels.meetings.conftest import at
from tests.web.conftest import ORIGIN, login

NOW = at("2026-06-01 07:30")


@pytest.fixture
def web(app: Any, frozen_clock: clock.FrozenClock) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    frozen_clock.current = NOW
    with TestClient(app, base_url=ORIGIN) as client:
        yield client


def post(web: Any, url: str, token: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    return web.post(url, data={**(data or {}), "csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False, **kw)


def agent_id(hub: Hub) -> int:
    with hub.session() as session:
        return session.scalars(select(User.id).where(User.email == "agent@example.com")).one()


def type_form(host: int, **kw: Any) -> dict[str, Any]:
    return {"name": "Консультация", "slug": "consult", "host_ids": [str(host)], "duration_minutes": "60",
            "slot_step_minutes": "60", "buffer_before_minutes": "0", "buffer_after_minutes": "15",
            "min_notice_minutes": "120", "horizon_days": "30", "location_kind": "video",
            "location": "https://meet.example.com/x", "reminder_offsets": "1440, 60", "reminder_channels": ["email"],
            "active": "on", **kw}


def test_an_agent_sets_up_hours_and_a_type_then_books_and_closes_from_the_contact_page(hub: Hub, web: Any) -> None:
    token = login(web, hub)
    me = agent_id(hub)
    assert "Meetings" in web.get("/meetings").text
    # Weekly hours in the agent's own zone, with a bad line refused beside nothing changed.
    bad = post(web, "/meetings/availability", token, {"time_zone": "Europe/Moscow", "day0": "9-17"})
    assert bad.status_code == 422 and "Write hours like" in bad.text
    assert post(web, "/meetings/availability", token, {"time_zone": "Mars/Base", "day0": "09:00-17:00"}).status_code == 422
    saved = post(web, "/meetings/availability", token, {"time_zone": "Europe/Moscow", **{f"day{d}": "09:00-13:00, 14:00-18:00" for d in range(5)}})
    assert saved.status_code == 303
    with hub.session() as session:
        assert session.get(HostSchedule, me).time_zone == "Europe/Moscow"  # type: ignore[union-attr]
        assert len(session.scalars(select(AvailabilityRule)).all()) == 10
    page = web.get("/meetings/availability")
    assert 'value="09:00-13:00, 14:00-18:00"' in page.text
    assert post(web, "/meetings/availability/exceptions", token, {"day": "2026-06-12", "kind": "off"}).status_code == 303
    assert post(web, "/meetings/availability/exceptions", token, {"day": "June 12", "kind": "off"}).status_code == 422
    with hub.session() as session:
        [holiday] = session.scalars(select(AvailabilityException)).all()
    assert post(web, f"/meetings/availability/exceptions/{holiday.id + 100}/delete", token).status_code == 404

    # A meeting type: bad input is shown beside its field, a good one is listed with its booking page.
    refused = post(web, "/meetings/types", token, type_form(me, slug="Bad Slug!"))
    assert refused.status_code == 422 and 't-slug-error' in refused.text
    assert post(web, "/meetings/types", token, type_form(me, duration_minutes="0")).status_code == 422
    assert post(web, "/meetings/types", token, type_form(me)).status_code == 303
    listed = web.get("/meetings/types")
    assert "/channels/meetings/consult" in listed.text
    with hub.session() as session:
        mtype = session.scalars(select(MeetingType)).one()
        assert (mtype.buffer_after_minutes, mtype.reminder_channels) == (15, ["email"])
    assert web.get(f"/meetings/types/{mtype.id}").status_code == 200
    assert post(web, f"/meetings/types/{mtype.id}", token, type_form(me, name="Консультация 2")).status_code == 303
    assert post(web, "/meetings/types", token, type_form(me)).status_code == 422  # the slug is taken now

    # The contact page's panel books a meeting for the contact (agents are not bound by the notice).
    with hub.session() as session, session.begin():
        contact = create_contact(session, actor=SYSTEM, region="RU", display_name="Мария",
                                 identities=[IdentityIn(kind=IdentityKind.EMAIL, value="maria@example.com")])
        contact_id = contact.id
    panel = web.get(f"/contacts/{contact_id}/compose/meetings")
    assert panel.status_code == 200 and "Консультация 2" in panel.text
    first_slot = "2026-06-01T08:00:00+00:00"  # 11:00 Moscow, inside the customers' notice
    assert f'value="{first_slot}"' in panel.text
    booked = post(web, f"/contacts/{contact_id}/compose/meetings", token, {"type_id": str(mtype.id), "start": first_slot})
    assert booked.status_code == 200 and "Meeting booked." in booked.text
    taken = post(web, f"/contacts/{contact_id}/compose/meetings", token, {"type_id": str(mtype.id), "start": first_slot})
    assert taken.status_code == 409 and "just been booked" in taken.text
    with hub.session() as session:
        meeting = session.scalars(select(Meeting)).one()
    assert meeting.contact_id == contact_id and meeting.email == "maria@example.com" and meeting.booked_by_user_id == me

    detail = web.get(f"/meetings/{meeting.id}")
    assert detail.status_code == 200 and "/channels/meetings/m/" in detail.text and "maria@example.com" in detail.text
    assert web.get("/meetings/987654").status_code == 404
    contact_page = web.get(f"/contacts/{contact_id}")
    assert contact_page.status_code == 200 and f"/contacts/{contact_id}/compose/meetings" in contact_page.text
    timeline = web.get(f"/contacts/{contact_id}/timeline")
    assert f'href="/meetings/{meeting.id}"' in timeline.text  # the event leads to the meeting's actions

    # Reschedule, then mark it completed once it has started.
    assert web.get(f"/meetings/{meeting.id}/reschedule").status_code == 200
    moved = post(web, f"/meetings/{meeting.id}/reschedule?back=contact", token, {"start": "2026-06-02T06:00:00+00:00"})
    assert moved.status_code == 303 and moved.headers["location"] == f"/contacts/{contact_id}"
    assert post(web, f"/meetings/{meeting.id}/close", token, {"status": "completed"}).status_code == 409  # not yet
    clock.set_clock(lambda: at("2026-06-02 07:10"))
    try:
        assert post(web, f"/meetings/{meeting.id}/close", token, {"status": "bogus"}).status_code == 422
        assert post(web, f"/meetings/{meeting.id}/close", token, {"status": "completed"}).status_code == 303
    finally:
        clock.set_clock(lambda: NOW)
    assert post(web, f"/meetings/{meeting.id}/cancel", token).status_code == 409
    assert post(web, "/meetings/999999/cancel", token).status_code == 404
    with hub.session() as session:
        kinds = [e.kind for e in session.scalars(select(TimelineEvent).where(TimelineEvent.channel == "meetings").order_by(TimelineEvent.id))]
    assert kinds == ["meeting.booked", "meeting.rescheduled", "meeting.completed"]
    assert "Completed" in web.get("/meetings?show=past").text or "Completed" in web.get("/meetings").text


def test_the_pages_need_sign_in_csrf_and_the_scope(hub: Hub, web: Any) -> None:
    assert web.get("/meetings", follow_redirects=False).status_code in (302, 303)
    token = login(web, hub)
    assert web.post("/meetings/types", data={"csrf_token": "wrong"}, headers={"Origin": ORIGIN}).status_code == 403
    with hub.session() as session:
        assert session.scalars(select(MeetingType)).all() == []
    assert post(web, "/meetings/availability", token, {"time_zone": "UTC"}).status_code == 303
