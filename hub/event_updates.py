"""The one way to change a timeline row after it is written, and the one live message that says so.

A timeline event is written once by `hub.ingest.post_event`; what happens to it later — a delivery's
status from the provider, a call's duration and recording, a survey answer edited by the customer —
changes its `status`, `text` or merges keys into its `data` (top-level keys, the new ones win, as
`{**old, **new}` does). Every such change goes through `update_events` (or `publish_updated`, for a
row the caller changed under its own lock), so agents' open pages hear of each change in one shape:

    {"type": "event.updated", "contact_id", "event_id", "channel", "kind", "status", ...extra}

sent after the transaction commits (`hub.db.after_commit`), never for a rolled-back change.
What is known when an event is written is written with it (`post_event`'s data, `enqueue`'s
`event_data`); what its own transaction learns only after the insert (the meeting row a booking
claimed, the task a logged call made) is merged by `complete_event`, which publishes the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from hub import live
from hub.db import among, dumps_compact, is_postgres
from hub.models import TimelineEvent

E = TimelineEvent.__table__


class UpdatedEvent(NamedTuple):
    """An event a change reached, as it is now."""

    event_id: int
    contact_id: int
    channel: str
    kind: str
    status: str | None


@dataclass(frozen=True)
class EventChange:
    """What to change on one event; None leaves a field as it is."""

    event_id: int
    status: str | None = None
    text: str | None = None
    data: Mapping[str, Any] | None = None  # merged into the event's data
    live: Mapping[str, Any] = field(default_factory=dict)  # extra fields of the live message (delivery_id)


# One statement for a batch on PostgreSQL: the changes as one JSON parameter, data merged by the
# server (jsonb ||), status and text kept where the change gives none.
_BATCH = text(
    "UPDATE timeline_event AS e SET status = COALESCE(v.status, e.status), text = COALESCE(v.text, e.text), "
    "data = e.data || COALESCE(v.data, '{}'::jsonb) "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(id bigint, status text, text text, data jsonb) "
    "WHERE e.id = v.id RETURNING e.id, e.contact_id, e.channel, e.kind, e.status")


def update_events(session: Session, changes: Sequence[EventChange]) -> list[UpdatedEvent]:
    """Apply the changes (one per event; the last wins) and publish each after commit; the events changed."""
    wanted = {change.event_id: change for change in changes}
    if not wanted:
        return []
    if is_postgres(session):
        payload = dumps_compact([{"id": c.event_id, "status": c.status, "text": c.text,
                                  "data": dict(c.data) if c.data else None} for c in wanted.values()])
        rows = session.execute(_BATCH, {"rows": payload}).all()
    else:
        current = session.execute(select(E.c.id, E.c.contact_id, E.c.channel, E.c.kind, E.c.status, E.c.text, E.c.data)
                                  .where(among(session, E.c.id, wanted))).all()
        params, rows = [], []
        for row in current:
            change = wanted[row.id]
            status = change.status if change.status is not None else row.status
            params.append({"event": row.id, "new_status": status,
                           "new_text": change.text if change.text is not None else row.text,
                           "new_data": {**(row.data or {}), **change.data} if change.data else row.data})
            rows.append((row.id, row.contact_id, row.channel, row.kind, status))
        if params:
            session.execute(update(E).where(E.c.id == bindparam("event")).values(
                status=bindparam("new_status"), text=bindparam("new_text"), data=bindparam("new_data")), params)
    for event_id, contact_id, channel, kind, status in rows:
        publish_updated(session, event_id=event_id, contact_id=contact_id, channel=channel, kind=kind, status=status,
                        **wanted[event_id].live)
    return [UpdatedEvent(*row) for row in rows]


def update_event(session: Session, *, event_id: int, status: str | None = None, text: str | None = None,
                 data: Mapping[str, Any] | None = None) -> bool:
    """One event's change (see `update_events`); whether the event exists."""
    return bool(update_events(session, [EventChange(event_id, status=status, text=text, data=data)]))


def publish_updated(session: Session, *, event_id: int, contact_id: int, channel: str, kind: str,
                    status: str | None, **extra: Any) -> None:
    """Tell agents' open pages, after commit, that an event changed (the one shape of that message)."""
    message = {"type": "event.updated", "contact_id": contact_id, "event_id": event_id, "channel": channel,
               "kind": kind, "status": None if status is None else str(status), **extra}
    live.publish_after_commit(session, live.contact_topic(contact_id), message)


def publish_event_updated(session: Session, event: TimelineEvent, **extra: Any) -> None:
    """`publish_updated` for an ORM row the caller changed itself (under its own row lock)."""
    publish_updated(session, event_id=event.id, contact_id=event.contact_id, channel=event.channel, kind=event.kind,
                    status=event.status, **extra)


def complete_event(session: Session, event: TimelineEvent, **data: Any) -> None:
    """Merge into an event this transaction wrote what was learnt only after writing it (the meeting
    row it booked, the task a logged call made), and publish the change like any other."""
    event.data = {**(event.data or {}), **data}
    session.flush()
    publish_event_updated(session, event)
