"""Business events in: orders, refunds and subscriptions that a shop, ERP or billing system reports.

Each becomes one timeline event through `post_event` on the channel "commerce", with kind = the
event's type ("order.completed"), direction "in", and external_id "<source>:<event_id>": the
caller's own id makes retries idempotent, and the source keeps two systems' ids apart. The typed
`order` sub-object (amounts as decimal strings) is kept in the event's data, where `order_totals`
reads it back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from babel.numbers import list_currencies
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit
from hub.auth import Principal
from hub.identities import InvalidIdentity, normalize_email, normalize_phone
from hub.ingest import IdentityRef, InboundEvent, get_contact, post_event, survivor
from hub.models import Contact, Direction, IdentityKind, TimelineEvent

COMMERCE_CHANNEL = "commerce"
ORDER_COMPLETED = "order.completed"
ORDER_REFUNDED = "order.refunded"
# Dotted lowercase names: "order.completed", "subscription.started".
TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
MAX_DATA_BYTES = 64 * 1024
_CURRENCIES = frozenset(list_currencies())


def _exact_number(value: Any) -> Any:
    # A JSON float has already lost precision by the time it is parsed; ask for a string instead.
    if isinstance(value, float):
        raise ValueError('send amounts as decimal strings, e.g. "1500.00", so no precision is lost')
    return value


Amount = Annotated[Decimal, BeforeValidator(_exact_number), Field(ge=0, max_digits=20, decimal_places=4)]
Quantity = Annotated[Decimal, BeforeValidator(_exact_number), Field(gt=0, max_digits=16, decimal_places=4)]


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str | None = Field(default=None, max_length=100)
    name: str = Field(min_length=1, max_length=500)
    quantity: Quantity
    unit_price: Amount


class Order(BaseModel):
    """An order as a business event carries it; for order.refunded, `amount` is the sum refunded."""

    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=200)
    amount: Amount
    currency: str = Field(description="ISO 4217 code, e.g. RUB, EUR")
    margin: Amount | None = Field(default=None, description="The gross margin of this order (of the sum refunded, for "
                                  "order.refunded) in its currency, when the shop knows it; profitability applies a "
                                  "default rate otherwise")
    items: list[OrderItem] = Field(default_factory=list, max_length=1000)

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        code = value.strip().upper()
        if len(code) != 3 or code not in _CURRENCIES:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. RUB, EUR, USD)")
        return code

    @model_serializer(mode="wrap")
    def _margin_only_when_sent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An order recorded without a margin keeps the shape it always had.
        data: dict[str, Any] = handler(self)
        if self.margin is None:
            data.pop("margin", None)
        return data


class ContactRef(BaseModel):
    """Who the event is about: at least one of email, phone or the source system's customer id."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=300)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    @model_validator(mode="after")
    def _someone(self) -> ContactRef:
        if not (self.email or self.phone or self.external_id):
            raise ValueError("contact needs at least one of email, phone or external_id")
        return self


class BusinessEvent(BaseModel):
    """The body of POST /api/v1/events."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=200, description="Your id for this event; a replay changes nothing.")
    type: str = Field(max_length=60, pattern=TYPE_PATTERN, examples=["order.completed"])
    occurred_at: AwareDatetime | None = None
    source: str | None = Field(default=None, pattern=SOURCE_PATTERN,
                               description="The reporting system; defaults to the API key's name.")
    contact: ContactRef
    data: dict[str, Any] = Field(default_factory=dict, description="Free JSON, at most 64 KB serialized.")
    order: Order | None = Field(default=None, description="Required for order.* types, refused for others.")

    @field_validator("data")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_DATA_BYTES:
            raise ValueError(f"data is {size} bytes serialized; the limit is {MAX_DATA_BYTES}")
        return value

    @model_validator(mode="after")
    def _order_when_needed(self) -> BusinessEvent:
        if self.type.startswith("order.") and self.order is None:
            raise ValueError(f"{self.type} events need an order object (order_id, amount, currency, items)")
        if not self.type.startswith("order.") and self.order is not None:
            raise ValueError("order is only for order.* events; put other details in data")
        return self


class InvalidBusinessEvent(ValueError):
    """Input that passed the schema but not the hub's checks; `field` names it (dotted)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class EventIdReused(ValueError):
    """The caller's event id is already on the timeline as a different type of event."""


@dataclass(frozen=True)
class RecordedEvent:
    event: TimelineEvent
    contact_id: int
    created: bool  # False for a replay of an event id already recorded


def source_name(name: str) -> str:
    """A key or system name as a source: lowercase letters, digits, '_', '.', '-' (at most 64)."""
    slug = re.sub(r"[^a-z0-9_.]+", "-", name.casefold()).strip("-.")[:64].rstrip("-.")
    return slug or "api"


def record_business_event(session: Session, *, event: BusinessEvent, actor: Principal) -> RecordedEvent:
    """Put one business event on its contact's timeline (at most once per source and event id)."""
    hub = session.info.get("hub")
    if hub is None:
        raise RuntimeError("record_business_event needs a session from Hub.session()")
    source = event.source or source_name(actor.name)
    identities = _identities(event.contact, source=source, region=hub.settings.default_region)
    result = post_event(session, event=InboundEvent(
        channel=COMMERCE_CHANNEL,
        kind=event.type,
        direction=Direction.IN,
        external_id=f"{source}:{event.event_id}",
        occurred_at=event.occurred_at,
        identities=identities,
        display_name=event.contact.name,
        subject=_subject(event),
        text=_text(event.order),
        data={
            "source": source,
            "event_id": event.event_id,
            **({"order": event.order.model_dump(mode="json")} if event.order is not None else {}),
            "data": event.data,
        },
    ))
    if not result.created:
        if result.event.kind != event.type:
            raise EventIdReused(
                f"event_id {event.event_id!r} from {source!r} was already recorded as {result.event.kind!r}; "
                "use a new event_id for a different event"
            )
        contact_id = survivor(session, result.contact).id
        return RecordedEvent(event=result.event, contact_id=contact_id, created=False)  # type: ignore[arg-type]
    audit.record(
        session, actor=actor, action="business_event.recorded", entity="timeline_event", entity_id=result.event.id,
        contact_id=result.contact.id,
        changes={"type": event.type, "source": source, "event_id": event.event_id,
                 "contact_created": result.contact_created},
    )
    return RecordedEvent(event=result.event, contact_id=result.contact.id, created=True)  # type: ignore[arg-type]


def _identities(contact: ContactRef, *, source: str, region: str) -> list[IdentityRef]:
    refs = []
    if contact.email:
        refs.append(IdentityRef(kind=IdentityKind.EMAIL, value=contact.email))
    if contact.phone:
        try:
            refs.append(IdentityRef(kind=IdentityKind.PHONE, value=normalize_phone(contact.phone, region)))
        except InvalidIdentity as exc:
            raise InvalidBusinessEvent("contact.phone", str(exc)) from None
    if contact.external_id:
        # Customer ids are only unique within the system that issued them.
        refs.append(IdentityRef(kind=IdentityKind.EXTERNAL, value=f"{source}:{contact.external_id.strip()}"))
    return refs


def _subject(event: BusinessEvent) -> str:
    head, _, rest = event.type.partition(".")
    what = rest.replace(".", " ").replace("_", " ")
    if event.order is not None:
        return f"Order {event.order.order_id} {what}"[:1000]
    return f"{head.replace('_', ' ').capitalize()} {what}"


def _text(order: Order | None) -> str | None:
    if order is None:
        return None
    lines = [f"{order.amount} {order.currency}"]
    lines += [
        f"{item.quantity} × {item.name}{f' ({item.sku})' if item.sku else ''} at {item.unit_price}"
        for item in order.items
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class OrderTotals:
    count: int  # distinct orders completed
    totals: dict[str, Decimal]  # completed minus refunded, by currency
    last_order_at: datetime | None


def order_totals(session: Session, *, contact_id: int) -> OrderTotals:
    """What a contact has bought, from the commerce events on their timeline.

    An order counts once however often it was reported completed (the latest report wins);
    refunds subtract their amount. A merged contact's id gives its survivor's totals.
    """
    contact: Contact = get_contact(session, contact_id)
    rows = session.execute(
        select(TimelineEvent.kind, TimelineEvent.occurred_at, TimelineEvent.data)
        .where(
            TimelineEvent.contact_id == contact.id,
            TimelineEvent.channel == COMMERCE_CHANNEL,
            TimelineEvent.kind.in_([ORDER_COMPLETED, ORDER_REFUNDED]),
        )
        .order_by(TimelineEvent.occurred_at, TimelineEvent.id)
    ).all()
    completed: dict[tuple[str, str], tuple[str, Decimal]] = {}
    refunds: list[tuple[str, Decimal]] = []
    last_order_at = None
    for kind, occurred_at, data in rows:
        order = (data or {}).get("order") or {}
        try:
            currency, amount = str(order["currency"]), Decimal(str(order["amount"]))
        except (KeyError, ArithmeticError):
            continue  # written by something other than record_business_event
        if kind == ORDER_COMPLETED:
            completed[(str(data.get("source")), str(order.get("order_id")))] = (currency, amount)
            last_order_at = occurred_at
        else:
            refunds.append((currency, amount))
    totals: dict[str, Decimal] = {}
    for currency, amount in [*completed.values(), *((c, -a) for c, a in refunds)]:
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return OrderTotals(count=len(completed), totals=totals, last_order_at=last_order_at)
