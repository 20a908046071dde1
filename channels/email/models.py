"""The email channel's own tables: mailbox sync state, the suppression list, bounces, stored files."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import _fk, _id, _json, _time


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"
    MANUAL = "manual"


class RawReason(StrEnum):
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    ATTACHMENT_TOO_LARGE = "attachment_too_large"
    # Recording it failed again and again (IMAP passes it over): its bytes are kept all the same.
    UNRECORDED = "unrecorded"


class EmailMailboxState(SQLModel, table=True):
    """Where polling of one IMAP mailbox stands; advanced in the transaction that ingests a message."""

    __tablename__ = "email_mailbox_state"

    id: int | None = _id()
    mailbox: str = Field(sa_column=sa.Column(sa.String(300), nullable=False, unique=True))
    uidvalidity: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    last_uid: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    # A message that keeps failing to ingest is retried a few times, then kept raw and passed over.
    failed_uid: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    failed_attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    updated_at: datetime = _time()


class EmailSuppression(SQLModel, table=True):
    """An address that gets no marketing mail; shared with campaigns."""

    __tablename__ = "email_suppression"

    id: int | None = _id()
    address: str = Field(sa_column=sa.Column(sa.String(320), nullable=False, unique=True))
    reason: str = Field(max_length=20)
    source: str = Field(default="", max_length=200)
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = _time()


class EmailBounce(SQLModel, table=True):
    """One recipient's failure in one delivery status notification (a replayed DSN counts once)."""

    __tablename__ = "email_bounce"
    __table_args__ = (
        sa.UniqueConstraint("address", "report_id", name="uq_email_bounce_report"),
        sa.Index("ix_email_bounce_address_time", "address", "occurred_at"),
    )

    id: int | None = _id()
    address: str = Field(max_length=320)
    # The DSN's own Message-ID (or raw hash): the same report read twice is one bounce.
    report_id: str = Field(max_length=300)
    hard: bool = False
    action: str = Field(default="", max_length=20)
    status: str = Field(default="", max_length=20)
    diagnostic: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    original_message_id: str | None = Field(default=None, max_length=300)
    # Set when the address is taken off the list: older soft bounces stop counting.
    cleared: bool = False
    occurred_at: datetime = _time()


class EmailAttachment(SQLModel, table=True):
    """A file that came with an inbound message or was uploaded for an outbound one.

    The bytes live on disk under a name made from their SHA-256, never the sender's file name."""

    __tablename__ = "email_attachment"

    id: int | None = _id()
    event_id: int | None = _fk("timeline_event.id", ondelete="CASCADE")
    direction: str = Field(default="in", max_length=10)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sha256: str = Field(max_length=64, index=True)
    content_id: str | None = Field(default=None, max_length=300)
    inline: bool = False
    uploaded_by: int | None = _fk("user_account.id", index=False)
    created_at: datetime = _time()


class EmailRawMessage(SQLModel, table=True):
    """A message kept byte for byte because it was too large or malformed to trust the parse alone."""

    __tablename__ = "email_raw_message"

    id: int | None = _id()
    sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    size: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    reason: str = Field(max_length=40)
    message_id: str | None = Field(default=None, max_length=300)
    origin: dict[str, Any] = _json(dict)
    event_id: int | None = _fk("timeline_event.id", ondelete="SET NULL")
    created_at: datetime = _time()


__all__ = [
    "EmailAttachment",
    "EmailBounce",
    "EmailMailboxState",
    "EmailRawMessage",
    "EmailSuppression",
    "RawReason",
    "SuppressionReason",
]
