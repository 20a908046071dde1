"""The meetings REST API (/api/v1/meeting-types, /api/v1/meetings) on both stores: CRUD, scopes, bad input
changing nothing, slots, and bookings through the booking service (invitation, no double booking)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from hub import clock
from hub.models import Contact, Delivery, TimelineEvent
from hub.runtime import Hub
from channels.meetings.models import Meeting, MeetingType
from tests.channels.meetings.conftest import at, configure, make_host, make_type

NOW = at("2026-06-01 07:30")  # Monday 10:30 Moscow
WED_9 = "2026-06-03T06:00:00Z"  # Wednesday 09:00 Moscow
THU_10 = "2026-06-04T07:00:00Z"


@pytest.fixture
def world(hub: Hub, client, api_key, frozen_clock: clock.FrozenClock):  # type: ignore[no-untyped-def]
    frozen_clock.current = NOW
    configure(hub, smtp_host="127.0.0.1")  # invitations are queued in the outbox (nothing is sent here)
    host = make_host(hub, zone="Europe/Moscow")
    type_id = make_type(hub, host_ids=[host], duration_minutes=60, slot_step_minutes=60, min_notice_minutes=240)
    return hub, client, api_key("meetings:read", "meetings:write"), host, type_id


def count(hub: Hub, model) -> int:  # type: ignore[no-untyped-def]
    with hub.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def booking(type_id: int, **kw: object) -> dict[str, object]:
    return {"meeting_type_id": type_id, "starts_at": WED_9, "name": "Ivan Petrov", "email": "ivan@example.com",
            "locale": "en", "time_zone": "Europe/Berlin", **kw}


def test_meeting_types_crud(world) -> None:  # type: ignore[no-untyped-def]
    hub, client, headers, host, _type_id = world
    body = {"slug": "demo-call", "name": "Demo call", "host_ids": [host], "duration_minutes": 45,
            "location_kind": "phone", "reminder_channels": ["email"]}
    created = client.post("/api/v1/meeting-types", headers=headers, json=body)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["slot_step_minutes"] == 45 and made["booking_url"].endswith("/channels/meetings/demo-call")
    listed = client.get("/api/v1/meeting-types?limit=1", headers=headers).json()
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    second = client.get(f"/api/v1/meeting-types?limit=1&cursor={listed['next_cursor']}", headers=headers).json()
    assert [t["slug"] for t in listed["items"] + second["items"]] == ["consultation", "demo-call"]
    replaced = client.put(f"/api/v1/meeting-types/{made['id']}", headers=headers,
                          json={**body, "name": "Demo", "active": False})
    assert replaced.status_code == 200 and replaced.json()["name"] == "Demo" and replaced.json()["active"] is False
    assert client.get(f"/api/v1/meeting-types/{made['id']}", headers=headers).json()["name"] == "Demo"
    assert client.delete(f"/api/v1/meeting-types/{made['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/meeting-types/{made['id']}", headers=headers).status_code == 404


def test_bad_type_input_is_a_4xx_and_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    hub, client, headers, host, type_id = world
    base = {"slug": "demo-call", "name": "Demo call", "host_ids": [host]}
    for body, field in (({**base, "slug": "Not A Slug"}, "slug"), ({**base, "slug": "consultation"}, "slug"),
                        ({**base, "host_ids": [999]}, "host_ids"), ({**base, "duration_minutes": 1}, "duration_minutes"),
                        ({**base, "reminder_channels": ["fax"]}, "reminder_channels.0"), ({**base, "extra": 1}, "extra")):
        answer = client.post("/api/v1/meeting-types", headers=headers, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in answer.json()["errors"]], answer.json()
    before = client.get(f"/api/v1/meeting-types/{type_id}", headers=headers).json()
    bad = client.put(f"/api/v1/meeting-types/{type_id}", headers=headers, json={**base, "slug": "consultation",
                                                                                "host_ids": [999]})
    assert bad.status_code == 422
    assert client.get(f"/api/v1/meeting-types/{type_id}", headers=headers).json() == before
    assert count(hub, MeetingType) == 1
    # A type somebody booked is kept: its meetings refer to it.
    assert client.post("/api/v1/meetings", headers=headers, json=booking(type_id)).status_code == 201
    refused = client.delete(f"/api/v1/meeting-types/{type_id}", headers=headers)
    assert refused.status_code == 409 and "deactivate" in refused.json()["detail"]
    assert count(hub, MeetingType) == 1


def test_scopes(world) -> None:  # type: ignore[no-untyped-def]
    hub, client, _headers, host, type_id = world
    from hub.auth import create_api_key

    with hub.session() as session, session.begin():
        _, reader = create_api_key(session, name="reader", scopes=["meetings:read"])
        _, other = create_api_key(session, name="other", scopes=["contacts:read"])
    read = {"Authorization": f"Bearer {reader}"}
    assert client.get("/api/v1/meeting-types", headers=read).status_code == 200
    assert client.get(f"/api/v1/meeting-types/{type_id}/slots", headers=read).status_code == 200
    denied = client.post("/api/v1/meetings", headers=read, json=booking(type_id))
    assert denied.status_code == 403 and denied.json()["scope"] == "meetings:write"
    assert client.post("/api/v1/meeting-types", headers=read, json={"slug": "abc", "name": "x", "host_ids": [host]}).status_code == 403
    assert client.get("/api/v1/meetings", headers={"Authorization": f"Bearer {other}"}).status_code == 403
    assert client.get("/api/v1/meetings").status_code == 401
    assert count(hub, Meeting) == 0 and count(hub, MeetingType) == 1


def test_slots_are_the_booking_pages(world) -> None:  # type: ignore[no-untyped-def]
    hub, client, headers, _host, type_id = world
    answer = client.get(f"/api/v1/meeting-types/{type_id}/slots?start=2026-06-01&days=2&time_zone=Europe/Berlin",
                        headers=headers)
    assert answer.status_code == 200, answer.text
    starts = [s["starts_at"] for s in answer.json()["slots"]]
    # Monday: 4 hours of notice from 10:30 Moscow leaves 15:00 and 16:00 Moscow, then Tuesday 09:00–16:00.
    assert starts[:3] == ["2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z", "2026-06-02T06:00:00Z"]
    assert len(starts) == 2 + 8
    agent = client.get(f"/api/v1/meeting-types/{type_id}/slots?start=2026-06-01&days=1&actor=agent", headers=headers)
    assert agent.json()["slots"][0]["starts_at"] == "2026-06-01T08:00:00Z"  # no minimum notice for agents
    assert client.get(f"/api/v1/meeting-types/{type_id}/slots?time_zone=Mars/Base", headers=headers).status_code == 422
    assert client.get(f"/api/v1/meeting-types/{type_id}/slots?days=400", headers=headers).status_code == 422
    assert client.get("/api/v1/meeting-types/999/slots", headers=headers).status_code == 404


def test_book_reschedule_cancel_through_the_booking_service(world) -> None:  # type: ignore[no-untyped-def]
    hub, client, headers, host, type_id = world
    made = client.post("/api/v1/meetings", headers=headers, json=booking(type_id))
    assert made.status_code == 201, made.text
    meeting = made.json()
    assert (meeting["status"], meeting["host_id"], meeting["starts_at"]) == ("booked", host, WED_9)
    assert "/channels/meetings/m/" in meeting["manage_url"]
    with hub.session() as session:
        contact = session.get(Contact, meeting["contact_id"])
        assert contact is not None and contact.display_name == "Ivan Petrov"
        invitation = session.scalars(select(Delivery).where(Delivery.channel == "email", Delivery.address == "ivan@example.com")).one()
    ics = Calendar.from_ical(invitation.content["calendar"]["ics"])
    assert ics["METHOD"] == "REQUEST" and str(ics.walk("VEVENT")[0]["UID"]) == meeting["uid"]
    # The same slot again, by API: the slot check says no.
    taken = client.post("/api/v1/meetings", headers=headers, json=booking(type_id, email="other@example.com"))
    assert taken.status_code == 409 and taken.json()["type"] == "/problems/slot-taken"
    # A known contact, by id: its email is used, no new contact.
    again = client.post("/api/v1/meetings", headers=headers, json={"meeting_type_id": type_id, "starts_at": THU_10,
                                                                   "contact_id": meeting["contact_id"]})
    assert again.status_code == 201 and again.json()["email"] == "ivan@example.com"
    assert count(hub, Contact) == 1
    listed = client.get(f"/api/v1/meetings?contact_id={meeting['contact_id']}&status=booked", headers=headers).json()
    assert [m["id"] for m in listed["items"]] == [again.json()["id"], meeting["id"]]
    window = client.get("/api/v1/meetings?starts_after=2026-06-04T00:00:00Z", headers=headers).json()
    assert [m["id"] for m in window["items"]] == [again.json()["id"]]

    moved = client.post(f"/api/v1/meetings/{meeting['id']}/reschedule", headers=headers,
                        json={"starts_at": "2026-06-05T08:00:00Z"})
    assert moved.status_code == 200 and moved.json()["sequence"] == 1
    assert moved.json()["starts_at"] == "2026-06-05T08:00:00Z"
    clash = client.post(f"/api/v1/meetings/{meeting['id']}/reschedule", headers=headers, json={"starts_at": THU_10})
    assert clash.status_code == 409
    cancelled = client.post(f"/api/v1/meetings/{meeting['id']}/cancel", headers=headers, json={"reason": "ill"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    twice = client.post(f"/api/v1/meetings/{meeting['id']}/cancel", headers=headers, json={})
    assert twice.status_code == 409 and twice.json()["type"] == "/problems/wrong-state"
    with hub.session() as session:
        kinds = list(session.scalars(select(TimelineEvent.kind).where(TimelineEvent.channel == "meetings")
                                     .order_by(TimelineEvent.id)))
        methods = [d.content["calendar"]["method"] for d in session.scalars(
            select(Delivery).where(Delivery.address == "ivan@example.com").order_by(Delivery.id))]
    assert kinds == ["meeting.booked", "meeting.booked", "meeting.rescheduled", "meeting.cancelled"]
    assert methods == ["REQUEST", "REQUEST", "REQUEST", "CANCEL"]


def test_bad_booking_input_is_a_4xx_and_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    hub, client, headers, _host, type_id = world
    cases = [
        (booking(type_id, starts_at="2026-06-03T06:00:00"), 422),  # no zone
        (booking(type_id, starts_at="2026-06-03T06:10:00Z"), 422),  # not a slot
        (booking(type_id, starts_at="2026-06-01T08:00:00Z"), 422),  # inside the minimum notice
        (booking(type_id, email="not-an-email"), 422),
        (booking(type_id, email=None), 422),  # no way to reach them
        (booking(type_id, name=""), 422),
        (booking(type_id, time_zone="Mars/Base"), 422),
        (booking(type_id, contact_id=999), 422),
        (booking(999), 422),
        (booking(type_id, actor="robot"), 422),
    ]
    for body, status in cases:
        answer = client.post("/api/v1/meetings", headers=headers, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert client.post("/api/v1/meetings", headers={**headers, "content-type": "application/json"},
                       content=b"{not json").status_code == 400
    assert client.post("/api/v1/meetings/999/cancel", headers=headers, json={}).status_code == 404
    assert (count(hub, Meeting), count(hub, Contact), count(hub, TimelineEvent), count(hub, Delivery)) == (0, 0, 0, 0)


def test_concurrent_api_bookings_of_one_slot_make_one_meeting(world) -> None:  # type: ignore[no-untyped-def]
    hub, client, headers, _host, type_id = world

    def attempt(i: int) -> int:
        return client.post("/api/v1/meetings", headers=headers,
                           json=booking(type_id, name=f"Visitor {i}", email=f"visitor{i}@example.com")).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, range(20)))
    assert sorted(statuses) == [201] + [409] * 19
    assert count(hub, Meeting) == 1
    # The losers' contacts and timeline events were rolled back with their bookings.
    assert count(hub, Contact) == 1
    with hub.session() as session:
        assert session.scalar(select(func.count()).select_from(TimelineEvent)
                              .where(TimelineEvent.kind == "meeting.booked")) == 1
