"""hub.event_updates: the one way a timeline row changes after insert, and the one live message."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub.event_updates import EventChange, update_event, update_events
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import IdentityKind, TimelineEvent


@pytest.fixture
def published(hub, monkeypatch) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(hub.broker, "publish", lambda topic, message: seen.append({"topic": topic, **message}))
    return seen


def _event(hub, external_id: str, phone: str = "+79161234567", **fields: Any) -> TimelineEvent:  # type: ignore[no-untyped-def]
    event = InboundEvent(channel="fake", kind="message", external_id=external_id,
                         identities=[IdentityRef(kind=IdentityKind.PHONE, value=phone)], text="hi", **fields)
    return ingest(hub, event).event  # type: ignore[return-value]


def _row(hub, event_id: int) -> TimelineEvent:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as session:
        return session.scalars(select(TimelineEvent).where(TimelineEvent.id == event_id)).one()


def test_changes_merge_data_keep_what_they_do_not_name_and_publish_one_shape(hub, published):
    first = _event(hub, "a", data={"keep": 1, "over": "old"}, status="sent")
    second = _event(hub, "b", phone="+79161234568")
    published.clear()
    with hub.session() as session:
        changed = update_events(session, [EventChange(first.id, data={"over": "new", "added": True}),
                                          EventChange(second.id, status="delivered", text="edited",
                                                      live={"delivery_id": 7}),
                                          EventChange(10**9, status="read")])  # no such event: skipped
        assert published == []  # nothing before the commit
        session.commit()
    assert sorted(e.event_id for e in changed) == sorted([first.id, second.id])
    one, two = _row(hub, first.id), _row(hub, second.id)
    assert one.data == {"keep": 1, "over": "new", "added": True} and one.status == "sent" and one.text == "hi"
    assert two.status == "delivered" and two.text == "edited"
    by_id = {m["event_id"]: m for m in published}
    assert set(by_id) == {first.id, second.id}
    assert by_id[first.id] == {"topic": f"contact:{one.contact_id}", "type": "event.updated", "contact_id": one.contact_id,
                               "event_id": first.id, "channel": "fake", "kind": "message", "status": "sent"}
    assert by_id[second.id]["delivery_id"] == 7 and by_id[second.id]["status"] == "delivered"


def test_a_rolled_back_change_changes_nothing_and_tells_nobody(hub, published):
    event = _event(hub, "c", data={"n": 1})
    published.clear()
    with hub.session() as session:
        assert update_event(session, event_id=event.id, data={"n": 2}, status="failed")
        session.rollback()
    assert _row(hub, event.id).data == {"n": 1} and published == []
    with hub.session() as session:
        assert not update_event(session, event_id=10**9, data={"n": 3})


def test_a_logged_call_completed_with_its_follow_up_task_says_so_live(hub, published):
    from datetime import timedelta

    from channels.phone.service import ManualCall, log_call
    from hub import clock
    from hub.auth import SYSTEM

    contact_id = _event(hub, "before-the-call").contact_id
    published.clear()
    with hub.session() as session:
        logged = log_call(session, actor=SYSTEM, call=ManualCall.model_validate({
            "contact_id": contact_id, "direction": "in", "outcome": "answered", "notes": "wants a quote",
            "follow_up": {"title": "Send the quote", "due_at": (clock.now() + timedelta(days=1)).isoformat()}}))
        event_id, task_id = logged.event.id, logged.task.id
        session.commit()
    row = _row(hub, event_id)
    assert row.data["task_id"] == task_id and row.data["notes"] == "wants a quote"
    assert [m["event_id"] for m in published if m.get("type") == "event.updated"] == [event_id]
