"""Calls logged by hand through POST /channels/phone/calls, with an optional follow-up task."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.models import AuditEntry, IdentityKind, Task, TimelineEvent
from hub.runtime import Hub


def make_contact(hub: Hub) -> int:
    with hub.session() as s, s.begin():
        return create_contact(s, actor=SYSTEM, region="RU", display_name="Ирина",  # type: ignore[return-value]
                              identities=[IdentityIn(kind=IdentityKind.PHONE, value="+79161234567")]).id


def count(hub: Hub, model: Any) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))  # type: ignore[return-value]


def test_a_logged_call_with_a_follow_up_task(hub: Hub, client: Any, api_key: Any) -> None:
    contact_id = make_contact(hub)
    headers = api_key("timeline:write")
    body = {"contact_id": contact_id, "direction": "out", "outcome": "missed", "number": "8 916 123-45-67",
            "occurred_at": "2026-01-14T16:20:00+03:00", "notes": "No answer; will try tomorrow.",
            "follow_up": {"title": "Call Ирина back", "due_at": "2026-01-16T10:00:00+03:00"}, "client_id": "c-1"}
    answer = client.post("/channels/phone/calls", headers=headers, json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["created"] is True and answer.json()["outcome"] == "missed"
    with hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, answer.json()["event_id"])
        task = s.get(Task, answer.json()["task_id"])
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "call.logged")).one()
    assert (event.channel, event.kind, event.direction, event.status) == ("phone", "call", "out", "missed")
    assert event.data["to"] == "+79161234567" and event.data["source"] == "manual"
    assert event.text.startswith("Call to +79161234567: missed") and "will try tomorrow" in event.text
    assert event.occurred_at.isoformat() == "2026-01-14T13:20:00+00:00"
    assert task.title == "Call Ирина back" and task.source_event_id == event.id and task.contact_id == contact_id
    assert audit.contact_id == contact_id

    again = client.post("/channels/phone/calls", headers=headers, json=body)
    assert again.status_code == 201 and again.json()["created"] is False
    assert again.json()["event_id"] == event.id
    assert count(hub, Task) == 1


@pytest.mark.parametrize(("change", "status"), [
    ({"outcome": "lost"}, 422),
    ({"direction": "sideways"}, 422),
    ({"occurred_at": "2026-01-14T16:20:00"}, 422),  # no zone offset
    ({"occurred_at": "2999-01-01T00:00:00+00:00"}, 422),
    ({"duration_seconds": -5}, 422),
    ({"number": "not a number"}, 422),
    ({"contact_id": 999_999}, 404),
    ({"follow_up": {"title": ""}}, 422),
    ({"follow_up": {"title": "Call back", "assignee_id": 424_242}}, 422),
    ({"colour": "red"}, 422),
])
def test_bad_input_gets_a_clear_4xx_and_writes_nothing(hub: Hub, client: Any, api_key: Any,
                                                       change: dict[str, Any], status: int) -> None:
    contact_id = make_contact(hub)
    body = {"contact_id": contact_id, "direction": "in", "outcome": "answered", **change}
    answer = client.post("/channels/phone/calls", headers=api_key("timeline:write"), json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert count(hub, TimelineEvent) == count(hub, Task) == 0


def test_logging_a_call_needs_timeline_write(hub: Hub, client: Any, api_key: Any) -> None:
    contact_id = make_contact(hub)
    body = {"contact_id": contact_id, "direction": "in", "outcome": "answered"}
    assert client.post("/channels/phone/calls", json=body).status_code == 401
    assert client.post("/channels/phone/calls", headers=api_key("timeline:read"), json=body).status_code == 403
    assert count(hub, TimelineEvent) == 0
