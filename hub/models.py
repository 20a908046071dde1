"""The hub's tables. Names follow DESIGN.md: an event is a timeline row, a delivery one outbound message."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from hub import clock


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both stores (SQLite keeps no zone, so it stores naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use hub.clock.now() or an aware value")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def _id() -> Any:
    return Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))


def _fk(target: str, *, nullable: bool = True, index: bool = True, ondelete: str | None = None) -> Any:
    return Field(
        default=None,
        sa_column=sa.Column(BigId, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index),
    )


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on PostgreSQL and SQLite alike."""
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def _time(*, nullable: bool = False, default_now: bool = True, index: bool = False) -> Any:
    if default_now:
        return Field(
            default_factory=clock.now,
            sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index),
        )
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=sa.Column(JSONType, nullable=False))


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    EXTERNAL = "external"
    # A Telegram user id (the hub-telegram plug-in): digits, the same number as the user's private chat.
    TELEGRAM = "telegram"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class Purpose(StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    BOUNCED = "bounced"
    DEAD = "dead"
    CANCELLED = "cancelled"


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    MARKETER = "marketer"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class ActorKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = _id()
    email: str = Field(sa_column=sa.Column(sa.String(320), nullable=False, unique=True))
    display_name: str = Field(default="", max_length=200)
    role: str = Field(default=Role.AGENT, max_length=20)
    password_hash: str = Field(default="", max_length=200)
    locale: str | None = Field(default=None, max_length=10)
    time_zone: str | None = Field(default=None, max_length=64)
    is_active: bool = True
    # Raised on a password change: sessions carrying an older value are ended.
    session_version: int = 1
    created_at: datetime = _time()


class AccountKind(StrEnum):
    COMPANY = "company"
    HOUSEHOLD = "household"


class Account(SQLModel, table=True):
    """A company or household grouping contacts; a contact without one is its own account in figures.

    What a key-account manager knows lives here (expected profit, term, fallback plan, how to deal
    with them); whether it is a key account is `is_key`, its history the audit log's `account.key`."""

    id: int | None = _id()
    name: str = Field(max_length=300)
    # Case-folded name for search (as Contact.search_name: SQLite's lower() folds ASCII only).
    search_name: str = Field(default="", max_length=300, index=True)
    kind: str = Field(default=AccountKind.COMPANY, max_length=20)
    # Domain, INN, KPP, address…: free keys, the same rules as a contact's attributes.
    attributes: dict[str, Any] = _json(dict)
    owner_id: int | None = _fk("user_account.id")
    deputy_id: int | None = _fk("user_account.id")
    is_key: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False, default=False, index=True))
    expected_profit: Decimal | None = Field(default=None, sa_column=sa.Column(sa.Numeric(14, 2), nullable=True))
    cooperation_until: date | None = Field(default=None, sa_column=sa.Column(sa.Date, nullable=True))
    fallback_plan: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    interaction_notes: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    # Precomputed by the scheduler (keyaccounts) so segments can select by them; NULL until measured:
    # the latest temperature (key accounts), the profit over the configured period and its band
    # ("top", "profitable", "break_even", "loss"; docs/accounts.md), and when those were computed.
    temperature: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, nullable=True))
    profit: Decimal | None = Field(default=None, sa_column=sa.Column(sa.Numeric(16, 2), nullable=True))
    profit_band: str | None = Field(default=None, sa_column=sa.Column(sa.String(20), nullable=True,
                                                                       index=True))
    figures_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    created_at: datetime = _time()
    updated_at: datetime = _time()


class Contact(SQLModel, table=True):
    id: int | None = _id()
    display_name: str = Field(default="", max_length=300)
    # Case-folded display name: SQLite's lower() folds ASCII only, so Cyrillic search needs this.
    search_name: str = Field(default="", max_length=300, index=True)
    locale: str | None = Field(default=None, max_length=10)
    time_zone: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Any] = _json(dict)
    tags: list[str] = _json(list)
    owner_id: int | None = _fk("user_account.id")
    lifecycle_stage: str = Field(default="lead", max_length=40)
    merged_into: int | None = _fk("contact.id")
    account_id: int | None = _fk("account.id", ondelete="SET NULL")
    created_at: datetime = _time()
    updated_at: datetime = _time()


class Identity(SQLModel, table=True):
    """One way to reach or recognise a contact: a normalized email, an E.164 phone, an external id."""

    __table_args__ = (sa.UniqueConstraint("kind", "value", name="uq_identity_kind_value"),)

    id: int | None = _id()
    contact_id: int = _fk("contact.id", nullable=False)
    kind: str = Field(max_length=20)
    value: str = Field(max_length=320)
    label: str | None = Field(default=None, max_length=100)
    is_primary: bool = False
    created_at: datetime = _time()


class ConsentRecord(SQLModel, table=True):
    """One consent decision; the newest per (contact, channel, purpose) is in force, history is kept."""

    __tablename__ = "consent_record"
    __table_args__ = (sa.Index("ix_consent_current", "contact_id", "channel", "purpose", "occurred_at"),)

    id: int | None = _id()
    contact_id: int = _fk("contact.id", nullable=False, index=False)
    channel: str = Field(max_length=40)
    purpose: str = Field(default=Purpose.MARKETING, max_length=20)
    status: str = Field(max_length=20)
    source: str = Field(default="", max_length=200)
    wording: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    recorded_by: str | None = Field(default=None, max_length=100)
    occurred_at: datetime = _time()


class TimelineEvent(SQLModel, table=True):
    """One thing that happened with a contact, on any channel."""

    __tablename__ = "timeline_event"
    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id", name="uq_event_channel_external_id"),
        # Keyset pages of one contact's timeline, newest first (read backwards).
        sa.Index("ix_event_contact_time", "contact_id", "occurred_at", "id"),
    )

    id: int | None = _id()
    contact_id: int = _fk("contact.id", nullable=False, index=False)
    occurred_at: datetime = _time()
    channel: str = Field(max_length=40)
    direction: str = Field(max_length=10)
    kind: str = Field(max_length=60)
    subject: str | None = Field(default=None, max_length=1000)
    text: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    html: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    data: dict[str, Any] = _json(dict)
    external_id: str = Field(max_length=300)
    thread_key: str | None = Field(default=None, max_length=300, index=True)
    status: str | None = Field(default=None, max_length=20)
    actor_user_id: int | None = _fk("user_account.id", index=False)
    created_at: datetime = _time()


class Delivery(SQLModel, table=True):
    """The outbox: one outbound message to one address, written with its cause."""

    # Partial indexes: each holds only the rows its queries look for, so a row gets an entry in one
    # of them for the one state it is in, not in each of them for every version the queue writes
    # (queued → sending → sent is three row versions; docs/benchmarks.md, "Campaign").
    __table_args__ = (
        # The claim and has_due: due rows of a channel, oldest first.
        sa.Index("ix_delivery_due", "channel", "send_after", "id", **_where("status = 'queued'")),
        # The reaper and a stopping worker: rows on their way out.
        sa.Index("ix_delivery_claimed", "claimed_until", **_where("status = 'sending'")),
        # Provider callbacks find their delivery; a row has a provider id once it is sent.
        sa.Index("ix_delivery_provider", "channel", "provider_id", **_where("provider_id IS NOT NULL")),
        # The frequency cap counts a contact's recent marketing sends (hub.sending).
        sa.Index("ix_delivery_contact_sent", "contact_id", "purpose", "sent_at", **_where("sent_at IS NOT NULL")),
    )

    id: int | None = _id()
    channel: str = Field(max_length=40)
    contact_id: int | None = _fk("contact.id")
    address: str = Field(max_length=320)
    purpose: str = Field(default=Purpose.TRANSACTIONAL, max_length=20)
    content: dict[str, Any] = _json(dict)
    idempotency_key: str = Field(sa_column=sa.Column(sa.String(300), nullable=False, unique=True))
    send_after: datetime = _time()
    status: str = Field(default=DeliveryStatus.QUEUED, max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    provider_id: str | None = Field(default=None, max_length=300)
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = _time(nullable=True, default_now=False)
    event_id: int | None = _fk("timeline_event.id")
    # Sending rules of this delivery's cause (hub.sending.DeliveryRules: quiet hours, frequency cap).
    rules: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType, nullable=True))
    created_at: datetime = _time()
    updated_at: datetime = _time()
    sent_at: datetime | None = _time(nullable=True, default_now=False)


class PendingStatus(SQLModel, table=True):
    """A provider status callback that arrived before its delivery recorded the provider id."""

    __tablename__ = "pending_status"
    __table_args__ = (sa.UniqueConstraint("channel", "provider_id", "status", name="uq_pending_status"),)

    id: int | None = _id()
    channel: str = Field(max_length=40)
    provider_id: str = Field(max_length=300)
    status: str = Field(max_length=20)
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    occurred_at: datetime = _time()


class Task(SQLModel, table=True):
    id: int | None = _id()
    contact_id: int | None = _fk("contact.id")
    title: str = Field(max_length=500)
    notes: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    due_at: datetime | None = _time(nullable=True, default_now=False, index=True)
    assignee_id: int | None = _fk("user_account.id")
    status: str = Field(default=TaskStatus.OPEN, max_length=20)
    created_by: str | None = Field(default=None, max_length=100)
    source_event_id: int | None = _fk("timeline_event.id", index=False)
    created_at: datetime = _time()
    completed_at: datetime | None = _time(nullable=True, default_now=False)


class ApiKey(SQLModel, table=True):
    """An integration's key: only its SHA-256 is stored; the prefix identifies it in lists and logs."""

    __tablename__ = "api_key"

    id: int | None = _id()
    name: str = Field(max_length=200)
    prefix: str = Field(sa_column=sa.Column(sa.String(20), nullable=False, unique=True))
    key_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    scopes: list[str] = _json(list)
    created_by: int | None = _fk("user_account.id", index=False)
    created_at: datetime = _time()
    last_used_at: datetime | None = _time(nullable=True, default_now=False)
    revoked_at: datetime | None = _time(nullable=True, default_now=False)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = _id()
    occurred_at: datetime = _time(index=True)
    actor_kind: str = Field(max_length=20)
    actor_id: str | None = Field(default=None, max_length=100)
    action: str = Field(max_length=100)
    entity: str = Field(max_length=60)
    entity_id: str | None = Field(default=None, max_length=100)
    # No foreign key: the entry outlives an erased contact.
    contact_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True, index=True))
    changes: dict[str, Any] = _json(dict)


class MergeRecord(SQLModel, table=True):
    """A merge of two contacts with the snapshot that lets it be undone exactly."""

    __tablename__ = "merge_record"

    id: int | None = _id()
    survivor_id: int = _fk("contact.id", nullable=False)
    merged_id: int = _fk("contact.id", nullable=False)
    snapshot: dict[str, Any] = _json(dict)
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = _time()
    undone_at: datetime | None = _time(nullable=True, default_now=False)


class SchedulerLease(SQLModel, table=True):
    """Once-only ticks on SQLite hold a lease row (PostgreSQL uses advisory locks)."""

    __tablename__ = "scheduler_lease"

    name: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    holder: str = Field(max_length=200)
    expires_at: datetime = _time()
