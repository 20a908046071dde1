"""Meeting types, hosts' weekly hours and exceptions, meetings and their reminders.

No double booking is a database guarantee, not a check: on PostgreSQL an exclusion constraint over
`tstzrange(blocked_from, blocked_until)` per host (needs the `btree_gist` extension for `host_id WITH
=`); on SQLite BEFORE INSERT/UPDATE triggers raise on an overlap, and they run under the BEGIN
IMMEDIATE write lock every writer takes, so two bookings can never both see a free slot. The blocked
range is the meeting plus its buffers, so buffers are kept free as well.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, UTCDateTime, _fk, _id, _json, _time


class LocationKind(StrEnum):
    PHONE = "phone"
    VIDEO = "video"
    ADDRESS = "address"


class MeetingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


class ExceptionKind(StrEnum):
    OFF = "off"  # a holiday or time away: no slots then (the whole day when no hours are given)
    EXTRA = "extra"  # hours on top of the weekly ones


class ReminderStatus(StrEnum):
    PLANNED = "planned"
    QUEUED = "queued"  # handed to the outbox
    SKIPPED = "skipped"  # consent withdrawn, no address, or the meeting is no longer booked
    CANCELLED = "cancelled"  # the meeting moved or was cancelled


class MeetingType(SQLModel, table=True):
    """What a customer can book: an agent's or a team's kind of meeting."""

    __tablename__ = "meeting_type"

    id: int | None = _id()
    slug: str = Field(sa_column=sa.Column(sa.String(80), nullable=False, unique=True))
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    owner_user_id: int | None = _fk("user_account.id")
    # A team type: its name and members; a booking goes to the first member free at that time.
    team_name: str | None = Field(default=None, max_length=200)
    host_ids: list[int] = _json(list)
    duration_minutes: int = 30
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 240
    horizon_days: int = 30
    slot_step_minutes: int = 30
    location_kind: str = Field(default=LocationKind.VIDEO, max_length=20)
    location: str = Field(default="", max_length=500)
    # Reminder offsets in minutes before the start, and the channels they go through.
    reminder_offsets: list[int] = _json(lambda: [1440, 60])
    reminder_channels: list[str] = _json(lambda: ["email", "sms"])
    active: bool = True
    created_at: datetime = _time()
    updated_at: datetime = _time()


class HostSchedule(SQLModel, table=True):
    """The IANA zone a host's weekly hours and exceptions are written in."""

    __tablename__ = "meeting_host_schedule"

    user_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("user_account.id"), primary_key=True))
    time_zone: str = Field(max_length=64)
    updated_at: datetime = _time()


class AvailabilityRule(SQLModel, table=True):
    """One span of weekly hours (host's local wall-clock time); weekday 0 is Monday."""

    __tablename__ = "meeting_availability"
    __table_args__ = (
        sa.Index("ix_meeting_availability_user", "user_id", "weekday"),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_meeting_availability_weekday"),
        sa.CheckConstraint("start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute",
                           name="ck_meeting_availability_span"),
    )

    id: int | None = _id()
    user_id: int = _fk("user_account.id", nullable=False, index=False)
    weekday: int
    start_minute: int
    end_minute: int


class AvailabilityException(SQLModel, table=True):
    """A holiday, time off, or extra hours on one day (host's local time)."""

    __tablename__ = "meeting_availability_exception"
    __table_args__ = (sa.Index("ix_meeting_exception_user_day", "user_id", "day"),)

    id: int | None = _id()
    user_id: int = _fk("user_account.id", nullable=False, index=False)
    day: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    kind: str = Field(default=ExceptionKind.OFF, max_length=10)
    # None and None: the whole day.
    start_minute: int | None = None
    end_minute: int | None = None
    note: str = Field(default="", max_length=200)


class Meeting(SQLModel, table=True):
    __tablename__ = "meeting"
    __table_args__ = (
        sa.Index("ix_meeting_host_time", "host_id", "blocked_from", "blocked_until"),
        sa.Index("ix_meeting_contact", "contact_id", "starts_at"),
        sa.Index("ix_meeting_status_start", "status", "starts_at"),
    )

    id: int | None = _id()
    uid: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    meeting_type_id: int = _fk("meeting_type.id", nullable=False, index=False)
    host_id: int = _fk("user_account.id", nullable=False, index=False)
    contact_id: int = _fk("contact.id", nullable=False, index=False)
    starts_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # The meeting with its buffers: what the no-overlap constraint compares.
    blocked_from: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    blocked_until: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    status: str = Field(default=MeetingStatus.BOOKED, max_length=20)
    # RFC 5545: the UID never changes; SEQUENCE rises with every change the attendee must see.
    sequence: int = 0
    name: str = Field(default="", max_length=300)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    notes: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    locale: str = Field(default="ru", max_length=10)
    visitor_time_zone: str = Field(default="UTC", max_length=64)
    location: str = Field(default="", max_length=500)
    booked_by_user_id: int | None = _fk("user_account.id", index=False)
    created_at: datetime = _time()
    updated_at: datetime = _time()
    cancelled_at: datetime | None = _time(nullable=True, default_now=False)


class MeetingReminder(SQLModel, table=True):
    """One reminder of one version (sequence) of a meeting; the queue tick turns it into a delivery."""

    __tablename__ = "meeting_reminder"
    __table_args__ = (
        sa.UniqueConstraint("meeting_id", "channel", "offset_minutes", "sequence", name="uq_meeting_reminder"),
        sa.Index("ix_meeting_reminder_due", "status", "due_at"),
    )

    id: int | None = _id()
    meeting_id: int = _fk("meeting.id", nullable=False, index=False)
    channel: str = Field(max_length=40)
    offset_minutes: int
    sequence: int
    due_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    status: str = Field(default=ReminderStatus.PLANNED, max_length=20)
    delivery_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True))
    note: str = Field(default="", max_length=200)
    created_at: datetime = _time()


# --- the no-overlap guarantee ----------------------------------------------------------------

_MEETING = Meeting.__table__
ACTIVE = "status <> 'cancelled'"

PG_EXTENSION = "CREATE EXTENSION IF NOT EXISTS btree_gist"
PG_EXCLUSION = (
    "ALTER TABLE meeting ADD CONSTRAINT ex_meeting_host_no_overlap EXCLUDE USING gist "
    "(host_id WITH =, tstzrange(blocked_from, blocked_until, '[)') WITH &&) "
    f"WHERE ({ACTIVE})"
)
_SQLITE_OVERLAP = (
    "SELECT RAISE(ABORT, 'ex_meeting_host_no_overlap') WHERE EXISTS (SELECT 1 FROM meeting m "
    "WHERE m.host_id = NEW.host_id AND m.status <> 'cancelled' {extra}"
    "AND m.blocked_from < NEW.blocked_until AND m.blocked_until > NEW.blocked_from)"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS tr_meeting_no_overlap_insert BEFORE INSERT ON meeting "
    "WHEN NEW.status <> 'cancelled' BEGIN " + _SQLITE_OVERLAP.format(extra="") + "; END",
    "CREATE TRIGGER IF NOT EXISTS tr_meeting_no_overlap_update BEFORE UPDATE ON meeting "
    "WHEN NEW.status <> 'cancelled' BEGIN " + _SQLITE_OVERLAP.format(extra="AND m.id <> NEW.id ") + "; END",
)
CONSTRAINT_NAME = "ex_meeting_host_no_overlap"

sa.event.listen(_MEETING, "before_create", sa.DDL(PG_EXTENSION).execute_if(dialect="postgresql"))
sa.event.listen(_MEETING, "after_create", sa.DDL(PG_EXCLUSION).execute_if(dialect="postgresql"))
for _ddl in SQLITE_TRIGGERS:
    sa.event.listen(_MEETING, "after_create", sa.DDL(_ddl).execute_if(dialect="sqlite"))


def is_overlap(error: BaseException) -> bool:
    """Whether an IntegrityError is the no-overlap guarantee refusing a second booking."""
    orig: Any = getattr(error, "orig", error)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return sqlstate == "23P01" or CONSTRAINT_NAME in str(orig)
