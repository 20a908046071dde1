"""The event catalogue: named, versioned notices the hub tells other systems about.

A *notice* is a fact worth telling outside the hub ("contact.created", "message.received"), as
opposed to an *event*, a row of a contact's timeline. Each notice type has a name, a version, a
pydantic schema of its `data`, a description and an example. The core declares its own types
below; extensions and channels add theirs with a `notice_types()` hook.

A cause emits a notice with `emit(session, name, subject=..., data=...)` INSIDE its own
transaction: the data is validated against the type's schema (a bad payload is a bug, so it
raises), then every listener registered on the runtime (`hub.notices.listen(fn)`) is called with
the session and the notice. Listeners write rows (the webhooks extension queues deliveries), never
do I/O, so a rolled-back cause leaves nothing behind and a committed one cannot lose its notice.

    from hub import notices
    notices.emit(session, "contact.created", subject=f"contact:{contact.id}",
                 data={"contact_id": contact.id, "display_name": contact.display_name})
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from hub import clock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.models import Contact, TimelineEvent
    from hub.triggers import TriggerRegistry

log = logging.getLogger("hub.notices")


class NoticeData(BaseModel):
    """Base of every notice schema: unknown fields are refused, so a schema documents all it carries."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class NoticeType:
    """One entry of the catalogue: `name` at `version`, with the schema of its data."""

    name: str
    version: int
    schema: type[BaseModel]
    description: str
    example: Mapping[str, Any]
    # Timeline kinds this notice is the outside view of: (kind, direction or None for any).
    from_timeline: tuple[tuple[str, str | None], ...] = ()

    def json_schema(self) -> dict[str, Any]:
        return self.schema.model_json_schema()


@dataclass(frozen=True)
class Notice:
    """One emitted notice. `id` is unique and stable (receivers deduplicate on it)."""

    id: str
    type: str
    version: int
    subject: str
    data: dict[str, Any]
    occurred_at: datetime

    def payload(self) -> dict[str, Any]:
        """The JSON body sent to receivers (Standard Webhooks shape: type, timestamp, data)."""
        return {"id": self.id, "type": self.type, "version": self.version, "timestamp": self.occurred_at.isoformat(),
                "subject": self.subject, "data": self.data}


class Listener(Protocol):
    def __call__(self, session: Session, notice: Notice) -> None: ...


class BatchListener(Protocol):
    def __call__(self, session: Session, notices: Sequence[Notice]) -> None: ...


class UnknownNotice(LookupError):
    """A name (or version) the catalogue does not hold."""


def new_id() -> str:
    """A notice id: "msg_" + milliseconds (so ids sort by time) + randomness."""
    return f"msg_{int(time.time() * 1000):013x}{secrets.token_hex(8)}"


@dataclass
class Catalogue:
    """The notice types a runtime knows, and who listens to them."""

    types: dict[tuple[str, int], NoticeType] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)
    batch_listeners: list[BatchListener] = field(default_factory=list)

    def add(self, notice_type: NoticeType) -> None:
        key = (notice_type.name, notice_type.version)
        if key in self.types and self.types[key] is not notice_type:
            raise ValueError(f"notice type {notice_type.name} v{notice_type.version} is declared twice")
        self.types[key] = notice_type

    def add_all(self, notice_types: Iterable[NoticeType]) -> None:
        for notice_type in notice_types:
            self.add(notice_type)

    def get(self, name: str, version: int | None = None) -> NoticeType:
        """The type `name` at `version` (the newest when None)."""
        if version is not None:
            try:
                return self.types[(name, version)]
            except KeyError:
                raise UnknownNotice(f"no notice type {name} v{version}") from None
        found = [t for (n, _), t in self.types.items() if n == name]
        if not found:
            raise UnknownNotice(f"no notice type {name!r}; known: {', '.join(self.names())}")
        return max(found, key=lambda t: t.version)

    def names(self) -> list[str]:
        return sorted({name for name, _ in self.types})

    def latest(self) -> list[NoticeType]:
        """The newest version of each type, by name."""
        return [self.get(name) for name in self.names()]

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(session, notice)` for every notice emitted; returns the unsubscriber."""
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    def listen_many(self, listener: BatchListener) -> Callable[[], None]:
        """Call `listener(session, notices)` once per `emit_many` (and with one notice per `emit`),
        for a listener that writes a batch in fewer statements than one per notice; returns the
        unsubscriber."""
        self.batch_listeners.append(listener)
        return lambda: self.batch_listeners.remove(listener) if listener in self.batch_listeners else None

    def install(self, triggers: TriggerRegistry) -> None:
        """Emit the notices that are the outside view of timeline events (a "call" is "call.logged")."""
        by_kind: dict[str, list[tuple[NoticeType, str | None]]] = {}
        for notice_type in self.latest():
            for kind, direction in notice_type.from_timeline:
                by_kind.setdefault(kind, []).append((notice_type, direction))
        for kind, wanted in by_kind.items():
            def fire(session: Session, *, event: TimelineEvent, contact: Contact,
                     wanted: list[tuple[NoticeType, str | None]] = wanted) -> None:
                for notice_type, direction in wanted:
                    if direction is None or str(event.direction) == direction:
                        emit(session, notice_type.name, version=notice_type.version, subject=f"contact:{contact.id}",
                             data=timeline_data(event), occurred_at=event.occurred_at)
            # Outgoing timeline rows only matter where a type asks for them (a logged outbound call):
            # a campaign's thousands of messages then need not be loaded to fire nothing.
            triggers.register(kind, fire, outgoing=any(d != "in" for _, d in wanted))


def emit(session: Session, name: str, *, subject: str, data: Mapping[str, Any] | BaseModel,
         version: int | None = None, occurred_at: datetime | None = None) -> Notice | None:
    """Validate `data` against the type's schema and hand the notice to the runtime's listeners,
    inside the caller's transaction. ValueError for data the schema refuses, UnknownNotice for a
    name the catalogue lacks. Returns the notice (None from a session without a runtime, where no
    listener can be reached)."""
    emitted = emit_many(session, name, [(subject, data)], version=version, occurred_at=occurred_at)
    return emitted[0] if emitted else None


def emit_many(session: Session, name: str, items: Sequence[tuple[str, Mapping[str, Any] | BaseModel]], *,
              version: int | None = None, occurred_at: datetime | None = None) -> list[Notice]:
    """`emit` for many notices of one type, as (subject, data) pairs: the type is looked up and the
    data validated once for the batch, and batch listeners write them together (a worker's recorded
    batch tells one `message.sent` per delivery: one by one they cost ~5% of a campaign worker).
    All or none: one bad item raises before any listener hears of the batch. Empty without a runtime."""
    hub = session.info.get("hub")
    catalogue: Catalogue = hub.notices if hub is not None else CORE
    notice_type = catalogue.get(name, version)
    raw = [data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data) for _, data in items]
    batch = _batch_schema(notice_type.schema)
    try:
        clean = batch.dump_python(batch.validate_python(raw), mode="json")
    except ValidationError as exc:
        raise ValueError(f"notice {name} v{notice_type.version} has invalid data: {exc}") from exc
    if hub is None or not items:
        return []
    at = occurred_at or clock.now()
    emitted = [Notice(id=new_id(), type=notice_type.name, version=notice_type.version, subject=subject, data=data,
                      occurred_at=at) for (subject, _), data in zip(items, clean)]
    for listener in catalogue.listeners:
        for notice in emitted:
            listener(session, notice)
    for batch_listener in catalogue.batch_listeners:
        batch_listener(session, emitted)
    return emitted


@lru_cache(maxsize=None)
def _batch_schema(schema: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    # One adapter per schema class, which lives as long as the process: validating a list is one call
    # into pydantic-core instead of one per notice.
    return TypeAdapter(list[schema])  # type: ignore[valid-type]


def timeline_data(event: TimelineEvent) -> dict[str, Any]:
    """What a timeline-sourced notice carries: the event's identity and its short fields."""
    return {"event_id": event.id, "contact_id": event.contact_id, "channel": event.channel, "kind": event.kind,
            "direction": str(event.direction), "occurred_at": event.occurred_at.isoformat(),
            "subject": event.subject, "text": (event.text or "")[:2000] or None, "status": event.status,
            "data": dict(event.data or {})}


# --- the core's catalogue ---------------------------------------------------------------------

class ContactData(NoticeData):
    contact_id: int
    display_name: str | None = None
    lifecycle_stage: str | None = None
    changes: dict[str, list[Any]] = Field(default_factory=dict, description="field: [old, new], for updates")


class ContactMerged(NoticeData):
    survivor_id: int = Field(description="The contact that remains")
    merged_id: int = Field(description="The duplicate folded into it (now points to the survivor)")
    merge_id: int


class ContactErased(NoticeData):
    contact_id: int
    contact_ids: list[int] = Field(description="Every record of the person (merged duplicates included)")


class TimelineData(NoticeData):
    event_id: int
    contact_id: int
    channel: str
    kind: str
    direction: str = Field(description="in, out or internal")
    occurred_at: datetime
    subject: str | None = None
    text: str | None = Field(None, description="The first 2000 characters")
    status: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="The event's own fields (kind-specific)")


class DeliveryData(NoticeData):
    delivery_id: int
    event_id: int | None = None
    contact_id: int | None = None
    channel: str
    status: str = Field(description="sent, delivered, failed, undelivered, bounced or dead")
    error: str | None = None


class ConsentData(NoticeData):
    contact_id: int
    channel: str
    purpose: str = Field(description="marketing or transactional")
    status: str = Field(description="granted or withdrawn")
    source: str = ""


def timeline_example(kind: str, channel: str, direction: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An example payload of a timeline-sourced notice (the catalogue shows one per type)."""
    return {"event_id": 9001, "contact_id": 42, "channel": channel, "kind": kind, "direction": direction,
            "occurred_at": "2026-12-06T10:15:00+00:00", "subject": extra.get("subject"), "text": extra.get("text"),
            "status": extra.get("status"), "data": data}


def timeline_type(name: str, description: str, sources: tuple[tuple[str, str | None], ...], example: dict[str, Any]) -> NoticeType:
    """A notice type emitted for timeline events of the (kind, direction or None) `sources`: plug-ins
    declare theirs with it (`Plugin.notice_types`)."""
    return NoticeType(name, 1, TimelineData, description, example, from_timeline=sources)


CORE_TYPES: tuple[NoticeType, ...] = (
    NoticeType("contact.created", 1, ContactData, "A contact was created (by an agent, the API, an import or a first message).",
               {"contact_id": 42, "display_name": "Анна Петрова", "lifecycle_stage": "lead", "changes": {}}),
    NoticeType("contact.updated", 1, ContactData, "A contact's fields changed; `changes` holds field: [old, new].",
               {"contact_id": 42, "display_name": "Анна Петрова", "lifecycle_stage": "customer",
                "changes": {"lifecycle_stage": ["lead", "customer"]}}),
    NoticeType("contact.merged", 1, ContactMerged, "A duplicate was merged into another contact.",
               {"survivor_id": 42, "merged_id": 57, "merge_id": 3}),
    NoticeType("contact.erased", 1, ContactErased, "A person's data was erased on request (their ids stay, nothing else).",
               {"contact_id": 42, "contact_ids": [42, 57]}),
    NoticeType("consent.changed", 1, ConsentData, "A contact granted or withdrew consent for a channel and purpose.",
               {"contact_id": 42, "channel": "email", "purpose": "marketing", "status": "withdrawn", "source": "unsubscribe link"}),
    NoticeType("message.sent", 1, DeliveryData, "A provider accepted an outbound message.",
               {"delivery_id": 812, "event_id": 9002, "contact_id": 42, "channel": "email", "status": "sent", "error": None}),
    NoticeType("message.delivered", 1, DeliveryData, "A provider reported an outbound message delivered (or read).",
               {"delivery_id": 812, "event_id": 9002, "contact_id": 42, "channel": "sms", "status": "delivered", "error": None}),
    NoticeType("message.failed", 1, DeliveryData, "An outbound message failed: the provider refused or bounced it, or the hub gave up.",
               {"delivery_id": 812, "event_id": 9002, "contact_id": 42, "channel": "email", "status": "bounced",
                "error": "550 5.1.1 mailbox unavailable"}),
    timeline_type("message.received", "A message from a contact arrived (email, SMS, any channel).",
                   (("message", "in"),), timeline_example("message", "email", "in", {"address": "anna@example.ru"},
                                                           subject="Заказ 1042", text="Когда приедет курьер?")),
    timeline_type("call.logged", "A phone call was logged (inbound or outbound), with its duration and outcome in data.",
                   (("call", None),), timeline_example("call", "phone", "in", {"duration_seconds": 184, "outcome": "answered"})),
)

# The catalogue of a session without a runtime: the core's types only (used to validate).
CORE = Catalogue()
CORE.add_all(CORE_TYPES)


def build_catalogue(sources: Iterable[Any]) -> Catalogue:
    """The core's types plus those every extension or channel in `sources` declares (`notice_types()`)."""
    catalogue = Catalogue()
    catalogue.add_all(CORE_TYPES)
    for source in sources:
        declare = getattr(source, "notice_types", None)
        if declare is not None:
            catalogue.add_all(declare())
    return catalogue


__all__ = ["CORE_TYPES", "BatchListener", "Catalogue", "Notice", "NoticeData", "NoticeType", "UnknownNotice", "build_catalogue",
           "emit", "emit_many", "timeline_data", "timeline_example", "timeline_type"]
