"""Changing an event already on the timeline (a call as its callbacks arrive), then telling agents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.event_updates import publish_event_updated
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
        publish_event_updated(session, event)
    return event


def merged(data: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    """A new dict (JSON columns only notice reassignment, not mutation in place)."""
    return {**(data or {}), **changes}
