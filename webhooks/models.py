"""The tables of outbound webhooks: endpoints, the notices kept for them, deliveries and attempts.

A notice is stored once (`webhook_message`) however many endpoints want it; each endpoint gets
a `webhook_delivery` row, the unit that is claimed, retried and replayed, and each try of it a
`webhook_attempt` row (the delivery log). Deliveries are written in the transaction of their
cause by the notice listener (webhooks.fanout), so a rolled-back cause leaves none.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import object_session
from sqlmodel import Field, SQLModel

from hub.memo import memo_of
from hub.models import BigId, _id, _json, _time


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"      # by an admin: nothing new is queued, nothing is sent
    DISABLED = "disabled"  # by the hub after failing for days: the admin is told, and re-enables it


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"        # retried for `retry_for_hours` and gave up (replay sends it again)
    CANCELLED = "cancelled"  # its endpoint was deleted, or paused with it waiting


class WebhookEndpoint(SQLModel, table=True):
    """Where notices go: a URL, the notice types it wants, and the secret(s) that sign them."""

    __tablename__ = "webhook_endpoint"

    id: int | None = _id()
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    event_types: list[str] = _json(list)
    status: str = Field(default=EndpointStatus.ACTIVE.value, max_length=20)
    # Per subject in order: a subject's next notice waits while an earlier one is still being retried.
    ordered: bool = Field(default=False)
    # Standard Webhooks secrets ("whsec_" + base64). While `previous_secret_until` is ahead, both sign.
    secret: str = Field(max_length=200)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_until: datetime | None = _time(nullable=True, default_now=False)
    failing_since: datetime | None = _time(nullable=True, default_now=False)
    disabled_reason: str | None = Field(default=None, max_length=500)
    created_by: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True))
    created_at: datetime = _time()
    updated_at: datetime = _time()


class WebhookMessage(SQLModel, table=True):
    """One notice as sent: its Standard Webhooks id (`webhook-id`) and the exact JSON body."""

    __tablename__ = "webhook_message"
    __table_args__ = (sa.Index("ix_webhook_message_time", "created_at"),)

    id: int | None = _id()
    message_id: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    type: str = Field(max_length=100)
    version: int = Field(default=1)
    subject: str = Field(default="", max_length=200)
    # The person the notice is about, so an erasure blanks the payload (hub.privacy finds it by name).
    contact_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True, index=True))
    payload: dict[str, Any] = _json(dict)
    created_at: datetime = _time()


class WebhookDelivery(SQLModel, table=True):
    """One message to one endpoint: claimed like the outbox's deliveries, retried with backoff."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "message_id", name="uq_webhook_delivery_endpoint_message"),
        sa.Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_delivery_endpoint", "endpoint_id", "id"),
        sa.Index("ix_webhook_delivery_subject", "endpoint_id", "subject", "id"),
    )

    id: int | None = _id()
    endpoint_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE"),
                                                 nullable=False))
    message_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("webhook_message.id", ondelete="CASCADE"),
                                                nullable=False, index=True))
    subject: str = Field(default="", max_length=200)
    status: str = Field(default=DeliveryState.QUEUED.value, max_length=20)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _time()
    # Retries stop once this passes (reset by a replay): at least a day of trying.
    give_up_at: datetime = _time()
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = _time(nullable=True, default_now=False)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=500)
    last_latency_ms: int | None = Field(default=None)
    delivered_at: datetime | None = _time(nullable=True, default_now=False)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class WebhookAttempt(SQLModel, table=True):
    """One try of a delivery: what the endpoint answered, how fast, and its first bytes."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (sa.Index("ix_webhook_attempt_delivery", "delivery_id", "id"),)

    id: int | None = _id()
    delivery_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("webhook_delivery.id", ondelete="CASCADE"),
                                                 nullable=False))
    attempt: int
    at: datetime = _time()
    status_code: int | None = Field(default=None)
    latency_ms: int | None = Field(default=None)
    response: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    error: str | None = Field(default=None, max_length=500)


# Which endpoints want which notices is kept per process (hub.memo, read in webhooks.service).
ENDPOINTS_MEMO = "webhooks.endpoints"


@sa.event.listens_for(WebhookEndpoint, "after_insert")
@sa.event.listens_for(WebhookEndpoint, "after_update")
@sa.event.listens_for(WebhookEndpoint, "after_delete")
def _endpoint_written(_mapper: Any, _connection: Any, endpoint: WebhookEndpoint) -> None:
    # Any ORM write of an endpoint, wherever it is made (the service, a seed, a script), tells every
    # process: registered with the table, so no process can write one without it.
    session = object_session(endpoint)
    if session is not None:
        memo_of(session).changed(session, ENDPOINTS_MEMO)
