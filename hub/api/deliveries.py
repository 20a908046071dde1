"""REST routes: deliveries. An agent or an integration sends a message to a contact on a channel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit, outbox
from hub.api.deps import SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.ingest import ContactNotFound, get_contact
from hub.models import Delivery

router = APIRouter(tags=["deliveries"])


class DeliveryContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, max_length=1000)
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=1_000_000)
    # Replies go in the conversation they answer (an email's References, say).
    thread_key: str | None = Field(default=None, max_length=300)


class DeliveryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=40)
    contact_id: int = Field(ge=1)
    address: str = Field(min_length=1, max_length=320)
    content: DeliveryContent
    # Retrying a request with the same key returns the first delivery instead of sending twice.
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    send_after: datetime | None = None

    @field_validator("send_after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("send_after needs a time zone offset (e.g. 2026-01-01T10:00:00+03:00)")
        return value


class DeliveryPublic(BaseModel):
    id: int
    channel: str
    contact_id: int | None
    address: str
    purpose: str
    content: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    provider_id: str | None
    send_after: datetime
    sent_at: datetime | None
    created_at: datetime
    event_id: int | None
    idempotency_key: str

    @classmethod
    def of(cls, row: Delivery) -> DeliveryPublic:
        return cls.model_validate(row, from_attributes=True)


@router.post(
    "/deliveries",
    status_code=201,
    response_model=DeliveryPublic,
    summary="Send a message to a contact on a channel (queued in the outbox)",
    responses={200: {"description": "The same idempotency key was used before; the first delivery"}},
)
def create_delivery(
    body: DeliveryCreate,
    session: SessionDep,
    response: Response,
    principal: Annotated[Principal, Depends(require("deliveries:write"))],
) -> DeliveryPublic:
    # Keys are namespaced per caller, so a client can neither collide with another client's
    # deliveries nor pre-empt the keys campaigns and surveys use.
    key = f"api:{principal.actor}:{body.idempotency_key or uuid.uuid4().hex}"
    content = body.content.model_dump(exclude_none=True)
    earlier = session.scalars(select(Delivery).where(Delivery.idempotency_key == key)).first()
    if earlier is not None:
        _same_or_conflict(session, earlier, body, content)
        response.status_code = 200
        return DeliveryPublic.of(earlier)
    try:
        delivery = outbox.enqueue(
            session,
            channel=body.channel,
            address=body.address,
            content=content,
            idempotency_key=key,
            contact_id=body.contact_id,
            send_after=body.send_after,
            actor_user_id=principal.user_id,
        )
    except ContactNotFound as exc:
        raise Problem(422, str(exc), slug="unknown-contact") from None
    except LookupError as exc:
        raise Problem(422, str(exc), slug="unknown-channel") from None
    except ValueError as exc:
        raise Problem(422, str(exc), slug="invalid-content") from None
    _same_or_conflict(session, delivery, body, content)  # a concurrent request with this key may have won
    audit.record(session, actor=principal, action="delivery.create", entity="delivery", entity_id=delivery.id,
                 contact_id=delivery.contact_id, changes={"channel": body.channel, "address": delivery.address})
    session.commit()
    return DeliveryPublic.of(delivery)


def _same_or_conflict(session: Session, earlier: Delivery, body: DeliveryCreate, content: dict[str, Any]) -> None:
    try:
        contact_id = get_contact(session, body.contact_id).id  # merged contacts compare as their survivor
    except ContactNotFound:
        contact_id = None
    same = (
        earlier.channel == body.channel
        and earlier.contact_id == contact_id
        and earlier.address == body.address.strip()
        and earlier.content == content
        and (body.send_after is None or earlier.send_after == body.send_after)
    )
    if not same:
        raise Problem(409, "This idempotency_key was already used for a different delivery; use a new key.",
                      slug="idempotency-key-reused", delivery_id=earlier.id)


@router.get(
    "/deliveries/{delivery_id}",
    response_model=DeliveryPublic,
    summary="One delivery: its status, attempts and last error",
    dependencies=[Depends(require("timeline:read"))],
)
def get_delivery(delivery_id: int, session: SessionDep) -> DeliveryPublic:
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise Problem(404, f"delivery {delivery_id} does not exist")
    return DeliveryPublic.of(row)


@router.post(
    "/deliveries/{delivery_id}/cancel",
    response_model=DeliveryPublic,
    summary="Cancel a delivery that has not been sent yet",
)
def cancel_delivery(
    delivery_id: int,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("deliveries:write"))],
) -> DeliveryPublic:
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise Problem(404, f"delivery {delivery_id} does not exist")
    status = row.status
    if not outbox.cancel(session, delivery_id=delivery_id):
        session.rollback()
        raise Problem(409, f"delivery {delivery_id} is {status}; only queued deliveries can be cancelled",
                      slug="not-cancellable", delivery_status=status)
    audit.record(session, actor=principal, action="delivery.cancel", entity="delivery", entity_id=delivery_id,
                 contact_id=row.contact_id)
    session.commit()
    session.refresh(row)
    return DeliveryPublic.of(row)
