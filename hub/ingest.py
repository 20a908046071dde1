"""The one write path to the timeline: every channel, campaign, survey and agent action posts here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import and_, bindparam, literal, select, tuple_
from sqlalchemy.orm import Session

from hub import clock, live, notices
from hub.db import after_commit, among, insert_ignore, insert_ignore_many, is_postgres
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


C = TypeVar("C")


def follow_merges(contact: C, load: Callable[[int], C | None]) -> C | None:
    """Follow `merged_into` from `contact` to the contact it now lives in, reading each next one with
    `load(id)` (an ORM object or a row: anything with `id` and `merged_into`); a loop stops it."""
    seen = set()
    current: C | None = contact
    while current is not None and current.merged_into is not None and current.id not in seen:
        seen.add(current.id)
        current = load(current.merged_into)
    return current


def survivor(session: Session, contact: Contact) -> Contact:
    """The contact a merged one now lives in (follows merged_into to the end)."""
    return follow_merges(contact, lambda contact_id: session.get(Contact, contact_id))  # type: ignore[return-value]


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
    known = event.contact_id is not None and not event.identities
    if event.contact_id is None:
        # A provider's webhook: whether it is a replay and whose first identity it carries, in one
        # statement (looked at before resolving, so a replay creates no contact).
        idents = _normalized(event, hub.settings.default_region)
        existing_id, first = session.execute(_FIRST_LOOK, {"channel": event.channel, "external_id": external_id,
                                                           "kind": idents[0][0], "value": idents[0][1]}).one()
        if existing_id is not None:
            return _replayed(session, event, existing_id)
        contact, contact_created = _resolve(session, event, idents, first=first)
    else:
        if not known:  # look before attaching identities, so a replay changes nothing
            existing_id = session.scalar(_EXISTING_ID, {"channel": event.channel, "external_id": external_id})
            if existing_id is not None:
                return _replayed(session, event, existing_id)
        contact, contact_created = get_contact(session, event.contact_id), False
        if event.identities:
            _attach(session, contact, _normalized(event, hub.settings.default_region))

    # A known contact's event is inserted at once: ON CONFLICT tells a replay apart (one statement
    # fewer than looking first, for the common case).
    loaded: dict[int, TimelineEvent] = {}
    [(event_id, created)] = _record(session, hub, [(event, contact, external_id)], loaded=loaded)
    if not created:
        return _replayed(session, event, event_id)
    row = loaded.get(event_id) or session.get(TimelineEvent, event_id)
    assert row is not None
    return IngestResult(event=row, contact=contact, created=True, contact_created=contact_created)


def _replayed(session: Session, event: InboundEvent, event_id: int) -> IngestResult:
    EVENTS_INGESTED.labels(event.channel, "false").inc()
    existing = session.get_one(TimelineEvent, event_id)
    return IngestResult(event=existing, contact=session.get(Contact, existing.contact_id), created=False)  # type: ignore[arg-type]


def post_events(session: Session, *, events: Sequence[InboundEvent], contacts: Mapping[int, Any] = {},
                ) -> list[int]:
    """What post_event does, for many events of known contacts in a few statements (a campaign's
    batch of outgoing messages); the timeline event ids in order (the existing one for a replay).

    Every event needs `contact_id`: there is no identity resolution here. `contacts`: contacts the
    caller has read already, by id (see `survivors`), which the triggers then get as they are.
    """
    hub = _runtime(session)
    if any(e.contact_id is None for e in events):
        raise ValueError("post_events needs contact_id on every event")
    keys = [(e.channel, e.external_id or f"local:{uuid.uuid4().hex}") for e in events]
    contacts = survivors(session, [e.contact_id for e in events], known=contacts)  # type: ignore[misc]
    # Inserted straight away: ON CONFLICT tells replays apart, and _record finds their ids.
    unique = {key: (event, contacts[event.contact_id], key[1]) for event, key in zip(events, keys)}  # type: ignore[index]
    ids: dict[tuple[str, str], int] = {}
    for key, (event_id, created) in zip(unique, _record(session, hub, list(unique.values()))):
        ids[key] = event_id
        if not created:
            EVENTS_INGESTED.labels(key[0], "false").inc()
    return [ids[key] for key in keys]


def _record(session: Session, hub: Hub, items: Sequence[tuple[InboundEvent, Contact, str]], *,
            loaded: dict[int, TimelineEvent] | None = None) -> list[tuple[int, bool]]:
    """Insert (event, contact, external_id) rows idempotently, fire triggers and publish for the new
    ones; (event id, created) for each item, in order.

    With `loaded`, the triggers get ORM objects and they go into `loaded`: the session only holds
    clean rows weakly, so a caller that needs them again would otherwise read them again. Without
    it, the triggers get read-only rows and nothing is loaded into the session."""
    if not items:
        return []
    now = clock.now()
    rows = [dict(contact_id=contact.id, occurred_at=event.occurred_at or now, channel=event.channel,
                 direction=event.direction.value, kind=event.kind, subject=event.subject, text=event.text,
                 html=event.html, data=event.data, external_id=external_id, thread_key=event.thread_key,
                 status=event.status, actor_user_id=event.actor_user_id, created_at=now)
             for event, contact, external_id in items]
    # When a trigger listens, the insert returns the new rows whole, for the triggers: as ORM objects
    # when the caller keeps them (post_event's result), else as read-only rows of timeline_event (each
    # column an attribute, as on the object), which cost ~0.3 ms of CPU less per batch than objects
    # loaded into the session (docs/benchmarks.md, "Survey page", issue 24 session 13).
    listening = hub.triggers.listening({(event.kind, event.direction.value) for event, _c, _x in items})
    whole = TimelineEvent if loaded is not None else _EVENT_COLUMNS
    new = insert_ignore_many(session, TimelineEvent, rows, ["channel", "external_id"],
                             whole if listening else ["id", "channel", "external_id"])
    inserted = {(r.channel, r.external_id): r.id for r in new}
    keys = [(event.channel, external_id) for event, _contact, external_id in items]
    raced = _existing_many(session, [k for k in keys if k not in inserted])  # concurrent replays won these
    created = [row for row, key in zip(items, keys) if key in inserted]
    if created and listening:
        objects = {row.id: row for row in new}
        if loaded is not None:
            loaded.update(objects)
        for event, contact, external_id in created:
            hub.triggers.fire(session, event=objects[inserted[(event.channel, external_id)]], contact=contact)
    for event, contact, external_id in created:
        _announce(session, hub, event_id=inserted[(event.channel, external_id)], contact_id=contact.id,  # type: ignore[arg-type]
                  channel=event.channel, kind=event.kind, direction=event.direction.value)
    return [(inserted[key], True) if key in inserted else (raced[key], False) for key in keys]


_EVENT_COLUMNS = [column.name for column in TimelineEvent.__table__.c]  # type: ignore[attr-defined]


def _announce(session: Session, hub: Hub, *, event_id: int, contact_id: int, channel: str, kind: str,
              direction: str) -> None:
    """After the commit: tell the contact's screens (and every agent's, for a ringing call)."""
    message = {"type": "event.created", "contact_id": contact_id, "event_id": event_id, "channel": channel,
               "kind": kind, "direction": direction}
    # The callbacks run after the commit has expired the ORM rows: they use plain values only.
    live.publish_after_commit(session, live.contact_topic(contact_id), message)
    if kind == INCOMING_CALL:  # every agent's screen pops the caller's card, whatever the channel
        live.publish_after_commit(session, live.AGENTS_TOPIC, {**message, "type": INCOMING_CALL})
    after_commit(session, lambda: EVENTS_INGESTED.labels(channel, "true").inc())


def _existing_many(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Ids of the events already on the timeline among (channel, external_id) keys."""
    found: dict[tuple[str, str], int] = {}
    unique = list(dict.fromkeys(keys))
    if not unique:
        return found
    if is_postgres(session):  # by external id as one array, the channel checked here: a short statement
        wanted = set(unique)
        rows = session.execute(select(TimelineEvent.id, TimelineEvent.channel, TimelineEvent.external_id).where(
            among(session, TimelineEvent.external_id, {x for _c, x in unique}))).all()
        return {(r.channel, r.external_id): r.id for r in rows if (r.channel, r.external_id) in wanted}
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        found.update({(r.channel, r.external_id): r.id for r in session.execute(
            select(TimelineEvent.id, TimelineEvent.channel, TimelineEvent.external_id)
            .where(tuple_(TimelineEvent.channel, TimelineEvent.external_id).in_(chunk))).all()})
    return found


def survivors(session: Session, contact_ids: Sequence[int], *, known: Mapping[int, Any] = {}) -> dict[int, Contact]:
    """Each id's surviving contact, loaded in one query; ContactNotFound for an unknown id.

    `known`: contacts the caller has read already, by id, as ORM objects or read-only rows of
    `contact` (a survey answer's link reads its contact as a row in the link's statement: as an ORM
    object it cost ~0.2 ms of CPU more, docs/benchmarks.md "Survey page"). One not merged is used as
    it is; a merged one is followed to its survivor as ever."""
    unique = list(dict.fromkeys(contact_ids))
    # Contacts the session holds already (a campaign batch loaded them) are not read again.
    loaded = {cid: c for cid in unique if (c := _held(session, cid)) is not None}
    loaded.update({cid: c for cid in unique if cid not in loaded and (c := known.get(cid)) is not None
                   and c.merged_into is None})
    unread = [cid for cid in unique if cid not in loaded]
    if unread:
        loaded.update({c.id: c for c in session.scalars(select(Contact).where(among(session, Contact.id, unread))).all()})
    missing = [cid for cid in unique if cid not in loaded]
    if missing:
        raise ContactNotFound(f"contact {missing[0]} does not exist")
    return {cid: survivor(session, loaded[cid]) for cid in unique}  # type: ignore[misc]


def _held(session: Session, contact_id: int) -> Contact | None:
    contact = session.identity_map.get(session.identity_key(Contact, contact_id))
    return contact if isinstance(contact, Contact) else None


def ingest(hub: Hub, event: InboundEvent) -> IngestResult:
    """Post one event in its own transaction and commit (what webhook routes call)."""
    with hub.session() as session:
        with session.begin():
            result = post_event(session, event=event)
        return result


# Built once: every new event asks it first, and it only needs the id (the row is loaded on a replay).
_EXISTING_ID = select(TimelineEvent.id).where(TimelineEvent.channel == bindparam("channel"),
                                              TimelineEvent.external_id == bindparam("external_id"))


def _normalized(event: InboundEvent, region: str) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for ref in event.identities:
        seen[(ref.kind.value, normalize(ref.kind, ref.value, region=region))] = None
    return list(seen)


def _lookup(session: Session, idents: list[tuple[str, str]], *, start: int = 0) -> tuple[Contact, int] | None:
    """The contact the first known identity belongs to (its survivor), and that identity's index;
    identities before `start` are not looked up (their lookup found nothing already)."""
    for index, (kind, value) in enumerate(idents[start:], start):
        # The identity and its contact in one round trip (a returning customer's every message).
        contact = session.scalars(_BY_IDENTITY, {"kind": kind, "value": value}).first()
        if contact is not None:
            return survivor(session, contact), index
    return None


_BY_IDENTITY = (select(Contact).join(Identity, Identity.contact_id == Contact.id)
                .where(Identity.kind == bindparam("kind"), Identity.value == bindparam("value")))
# The replay check and the first identity's contact in one row, whether either exists or not: one
# row of nothing, outer-joined to the identity and its contact (a NULL contact comes back as None).
_ONE_ROW = select(literal(1).label("one")).subquery("one_row")
_FIRST_LOOK = (select(_EXISTING_ID.scalar_subquery(), Contact).select_from(_ONE_ROW)
               .outerjoin(Identity, and_(Identity.kind == bindparam("kind"), Identity.value == bindparam("value")))
               .outerjoin(Contact, Contact.id == Identity.contact_id))


def _attach(session: Session, contact: Contact, idents: list[tuple[str, str]]) -> None:
    """Give the contact identities it does not have yet; ones owned by another contact stay there."""
    for kind, value in idents:
        insert_ignore(
            session,
            Identity,
            dict(contact_id=contact.id, kind=kind, value=value, is_primary=False, created_at=clock.now()),
            ["kind", "value"],
        )


def _resolve(session: Session, event: InboundEvent, idents: list[tuple[str, str]], *,
             first: Contact | None) -> tuple[Contact, bool]:
    """The contact the identities belong to, created if none does; `first` is the first identity's
    contact as post_event's first look found it (None: not known then)."""
    for attempt in range(5):
        if attempt == 0:  # the first identity was looked up already
            found = (survivor(session, first), 0) if first is not None else _lookup(session, idents, start=1)
        else:
            found = _lookup(session, idents)
        if found is not None:
            contact, index = found
            # The identity that found it is taken already: its insert would only do nothing.
            _attach(session, contact, idents[:index] + idents[index + 1:])
            return contact, False
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
        notices.emit(session, "contact.created", subject=f"contact:{contact.id}",
                     data={"contact_id": contact.id, "display_name": contact.display_name,
                           "lifecycle_stage": contact.lifecycle_stage})
        return contact, True
    raise RuntimeError("could not resolve the contact after repeated concurrent conflicts")
