"""Changing an event already on the timeline (a call as its callbacks arrive), then telling agents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import live
from hub.db import after_commit
from hub.models import TimelineEvent


def locked_event(session: Session, *, channel: str, external_id: str) -> TimelineEvent | None:
    """The event with this (channel, external_id), row-locked until commit on PostgreSQL."""
    return session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.channel == channel, TimelineEvent.external_id == external_id)
        .with_for_update()
    ).first()


def update_event(
    session: Session,
    *,
    channel: str,
    external_id: str,
    change: Callable[[TimelineEvent], bool],
) -> TimelineEvent | None:
    """Apply `change` to the locked event (it returns whether it changed anything); publish after commit.

    None when no such event exists. Callbacks for one event can arrive concurrently; the row lock
    (and SQLite's single writer) makes each read-modify-write of `data` see the previous one.
    """
    event = locked_event(session, channel=channel, external_id=external_id)
    if event is None:
        return None
    if change(event):
        session.flush()
        publish_updated(session, event)
    return event


def merged(data: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    """A new dict (JSON columns only notice reassignment, not mutation in place)."""
    return {**(data or {}), **changes}


def publish_updated(session: Session, event: TimelineEvent) -> None:
    hub = session.info["hub"]
    message = {
        "type": "event.updated",
        "contact_id": event.contact_id,
        "event_id": event.id,
        "channel": event.channel,
        "kind": event.kind,
        "status": event.status,
    }
    topic = live.contact_topic(event.contact_id)
    after_commit(session, lambda: hub.broker.publish(topic, message))
