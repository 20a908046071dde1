"""The one write path to the timeline: every channel, campaign, survey and agent action posts here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock, live
from hub.db import after_commit, insert_ignore
from hub.identities import fold, normalize
from hub.observability import EVENTS_INGESTED
from hub.models import Contact, Direction, Identity, IdentityKind, TimelineEvent

if TYPE_CHECKING:
    from hub.runtime import Hub


# The event kind a phone adapter posts when a call starts ringing: it pops the caller on agents' screens.
INCOMING_CALL = "call.incoming"


class IdentityRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)


class InboundEvent(BaseModel):
    """A normalized event as an adapter's `parse` (or any other cause) produces it."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=40)
    kind: str = Field(min_length=1, max_length=60)
    direction: Direction = Direction.IN
    # The provider's id for this event; replays with the same (channel, external_id) change nothing.
    external_id: str | None = Field(default=None, max_length=300)
    occurred_at: datetime | None = None
    # Either a known contact, or the identities to resolve (the first one found wins).
    contact_id: int | None = None
    identities: list[IdentityRef] = Field(default_factory=list, max_length=20)
    display_name: str | None = Field(default=None, max_length=300)
    subject: str | None = Field(default=None, max_length=1000)
    text: str | None = None
    html: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    thread_key: str | None = Field(default=None, max_length=300)
    status: str | None = Field(default=None, max_length=20)
    actor_user_id: int | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone offset (e.g. 2026-01-01T10:00:00+03:00)")
        return value

    @model_validator(mode="after")
    def _someone(self) -> InboundEvent:
        if self.contact_id is None and not self.identities:
            raise ValueError("an event needs contact_id or at least one identity (email, phone or external id)")
        return self


@dataclass(frozen=True)
class IngestResult:
    event: TimelineEvent
    contact: Contact
    created: bool  # False when this (channel, external_id) was already on the timeline
    contact_created: bool = False


class ContactNotFound(LookupError):
    pass


def survivor(session: Session, contact: Contact) -> Contact:
    """The contact a merged one now lives in (follows merged_into to the end)."""
    seen = set()
    while contact.merged_into is not None and contact.id not in seen:
        seen.add(contact.id)
        contact = session.get(Contact, contact.merged_into)  # type: ignore[assignment]
    return contact


def get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} does not exist")
    return survivor(session, contact)


def _runtime(session: Session) -> Hub:
    hub = session.info.get("hub")
    if hub is None:
        raise RuntimeError("post_event needs a session from Hub.session() (it publishes and fires triggers)")
    return hub


def post_event(session: Session, *, event: InboundEvent) -> IngestResult:
    """Record `event` on its contact's timeline inside the caller's transaction, at most once.

    Resolves identities to a contact (creating it if new), inserts the event idempotently on
    (channel, external_id), runs registered triggers for a new event, and publishes a live
    update once the caller commits.
    """
    hub = _runtime(session)
    external_id = event.external_id or f"local:{uuid.uuid4().hex}"
    existing = _existing(session, event.channel, external_id)
    if existing is not None:
        EVENTS_INGESTED.labels(event.channel, "false").inc()
        return IngestResult(event=existing, contact=session.get(Contact, existing.contact_id), created=False)  # type: ignore[arg-type]

    if event.contact_id is not None:
        contact, contact_created = get_contact(session, event.contact_id), False
        if event.identities:
            _attach(session, contact, _normalized(event, hub.settings.default_region))
    else:
        contact, contact_created = _resolve(session, event, hub.settings.default_region)

    now = clock.now()
    values = dict(
        contact_id=contact.id,
        occurred_at=event.occurred_at or now,
        channel=event.channel,
        direction=event.direction.value,
        kind=event.kind,
        subject=event.subject,
        text=event.text,
        html=event.html,
        data=event.data,
        external_id=external_id,
        thread_key=event.thread_key,
        status=event.status,
        actor_user_id=event.actor_user_id,
        created_at=now,
    )
    new_id = insert_ignore(session, TimelineEvent, values, ["channel", "external_id"])
    if new_id is None:  # a concurrent replay won the race
        row = _existing(session, event.channel, external_id)
        assert row is not None
        return IngestResult(event=row, contact=session.get(Contact, row.contact_id), created=False)  # type: ignore[arg-type]

    row = session.get(TimelineEvent, new_id)
    assert row is not None
    hub.triggers.fire(session, event=row, contact=contact)
    message = {
        "type": "event.created",
        "contact_id": contact.id,
        "event_id": row.id,
        "channel": row.channel,
        "kind": row.kind,
        "direction": row.direction,
    }
    # The callbacks run after the commit has expired the ORM rows: they use plain values only.
    topic, channel = live.contact_topic(message["contact_id"]), row.channel  # type: ignore[arg-type]
    after_commit(session, lambda: hub.broker.publish(topic, message))
    if row.kind == INCOMING_CALL:  # every agent's screen pops the caller's card, whatever the channel
        after_commit(session, lambda: hub.broker.publish(live.AGENTS_TOPIC, {**message, "type": INCOMING_CALL}))
    after_commit(session, lambda: EVENTS_INGESTED.labels(channel, "true").inc())
    return IngestResult(event=row, contact=contact, created=True, contact_created=contact_created)


def ingest(hub: Hub, event: InboundEvent) -> IngestResult:
    """Post one event in its own transaction and commit (what webhook routes call)."""
    with hub.session() as session:
        with session.begin():
            result = post_event(session, event=event)
        return result


def _existing(session: Session, channel: str, external_id: str) -> TimelineEvent | None:
    return session.scalars(
        select(TimelineEvent).where(TimelineEvent.channel == channel, TimelineEvent.external_id == external_id)
    ).first()


def _normalized(event: InboundEvent, region: str) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for ref in event.identities:
        seen[(ref.kind.value, normalize(ref.kind, ref.value, region=region))] = None
    return list(seen)


def _lookup(session: Session, idents: list[tuple[str, str]]) -> Contact | None:
    for kind, value in idents:
        contact_id = session.scalars(
            select(Identity.contact_id).where(Identity.kind == kind, Identity.value == value)
        ).first()
        if contact_id is not None:
            return survivor(session, session.get(Contact, contact_id))  # type: ignore[arg-type]
    return None


def _attach(session: Session, contact: Contact, idents: list[tuple[str, str]]) -> None:
    """Give the contact identities it does not have yet; ones owned by another contact stay there."""
    for kind, value in idents:
        insert_ignore(
            session,
            Identity,
            dict(contact_id=contact.id, kind=kind, value=value, is_primary=False, created_at=clock.now()),
            ["kind", "value"],
        )


def _resolve(session: Session, event: InboundEvent, region: str) -> tuple[Contact, bool]:
    idents = _normalized(event, region)
    for _attempt in range(5):
        found = _lookup(session, idents)
        if found is not None:
            _attach(session, found, idents)
            return found, False
        savepoint = session.begin_nested()
        name = event.display_name or idents[0][1]
        contact = Contact(display_name=name, search_name=fold(name))
        session.add(contact)
        session.flush()
        primary_id = insert_ignore(
            session,
            Identity,
            dict(contact_id=contact.id, kind=idents[0][0], value=idents[0][1], is_primary=True, created_at=clock.now()),
            ["kind", "value"],
        )
        if primary_id is None:  # another transaction created this person first: use theirs
            savepoint.rollback()
            continue
        savepoint.commit()
        _attach(session, contact, idents[1:])
        return contact, True
    raise RuntimeError("could not resolve the contact after repeated concurrent conflicts")
