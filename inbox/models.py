"""The inbox's tables: teams and their agents, conversations, the events that make them, SLA
escalations (one row per escalation, so each happens once) and canned responses."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, UTCDateTime, _id, _json, _time

# Sorts after every real due time: conversations whose policy sets no target go last in the inbox,
# and the sort column stays NOT NULL, so one index serves "due first" on both stores.
NO_DUE = datetime(9999, 12, 31, tzinfo=timezone.utc)


class Status(StrEnum):
    OPEN = "open"
    WAITING = "waiting"  # on the customer
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class Presence(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


def _user_fk(*, nullable: bool = True, index: bool = True, ondelete: str | None = "SET NULL") -> Any:
    return Field(default=None, sa_column=sa.Column(BigId, sa.ForeignKey("user_account.id", ondelete=ondelete),
                                                   nullable=nullable, index=index))


class Team(SQLModel, table=True):
    """A group of agents answering some channels, with its business hours in its own time zone."""

    __tablename__ = "inbox_team"

    id: int | None = _id()
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    time_zone: str = Field(default="Europe/Moscow", max_length=64)
    # {"mon": [["09:00", "18:00"]], …}: the weekly hours; days left out are closed.
    hours: dict[str, Any] = _json(dict)
    holidays: list[str] = _json(list)  # ISO dates the team is closed
    channels: list[str] = _json(list)  # channels routed to it; the first team (lowest id) takes the rest
    lead_id: int | None = _user_fk()
    created_at: datetime = _time()


class TeamMember(SQLModel, table=True):
    __tablename__ = "inbox_team_member"
    __table_args__ = (sa.UniqueConstraint("team_id", "user_id", name="uq_inbox_team_member"),)

    id: int | None = _id()
    team_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("inbox_team.id", ondelete="CASCADE"), nullable=False))
    user_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("user_account.id", ondelete="CASCADE"),
                                             nullable=False, index=True))


class AgentState(SQLModel, table=True):
    """An agent's availability and load. `open_count` (unresolved conversations assigned) moves only
    by conditional UPDATEs, so the cap holds whichever process assigns (inbox.assignment)."""

    __tablename__ = "inbox_agent"

    user_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("user_account.id", ondelete="CASCADE"),
                                             primary_key=True, autoincrement=False))
    presence: str = Field(default=Presence.OFFLINE, max_length=10)
    open_count: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, default=0))
    cap: int | None = None  # None: the extension's default cap
    last_assigned_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    updated_at: datetime = _time()


class Conversation(SQLModel, table=True):
    """What an agent answers: one contact on one channel, from the first inbound message to resolved.

    `open_key` is the channel until the conversation is resolved and NULL after: the unique
    (contact_id, open_key) keeps one unresolved conversation per contact and channel on both stores
    (NULLs never clash), so two messages arriving at once join the same one, and a merge of two
    contacts (hub.merge moves rows unless a unique key would clash) never makes two."""

    __tablename__ = "inbox_conversation"
    __table_args__ = (
        # The inbox's lists: by status and assignee (mine, unassigned) or team, due first.
        sa.Index("ix_inbox_conv_assignee", "status", "assignee_id", "due_at", "id"),
        sa.Index("ix_inbox_conv_team", "status", "team_id", "due_at", "id"),
        sa.Index("ix_inbox_conv_due", "status", "due_at", "id"),
        # What the escalation tick must look at next.
        sa.Index("ix_inbox_conv_check", "check_at"),
        sa.Index("ix_inbox_conv_snoozed", "status", "snoozed_until"),
        sa.Index("ix_inbox_conv_contact", "contact_id", "opened_at"),
        sa.UniqueConstraint("contact_id", "open_key", name="uq_inbox_conv_open"),
    )

    id: int | None = _id()
    contact_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("contact.id", ondelete="CASCADE"), nullable=False))
    channel: str = Field(max_length=40)
    open_key: str | None = Field(default=None, sa_column=sa.Column(sa.String(40), nullable=True))
    status: str = Field(default=Status.OPEN, max_length=10)
    priority: str = Field(default=Priority.NORMAL, max_length=10)
    assignee_id: int | None = _user_fk(index=False)
    team_id: int | None = Field(default=None, sa_column=sa.Column(BigId, sa.ForeignKey("inbox_team.id", ondelete="SET NULL"),
                                                                  nullable=True))
    key_account: bool = False
    subject: str | None = Field(default=None, max_length=300)
    opened_at: datetime = _time()
    last_inbound_at: datetime | None = _time(nullable=True, default_now=False)
    last_outbound_at: datetime | None = _time(nullable=True, default_now=False)
    first_response_at: datetime | None = _time(nullable=True, default_now=False)
    resolved_at: datetime | None = _time(nullable=True, default_now=False)
    snoozed_until: datetime | None = _time(nullable=True, default_now=False)
    # Service-level targets of the current cycle (None: met, or no target).
    first_response_due_at: datetime | None = _time(nullable=True, default_now=False)
    next_response_due_at: datetime | None = _time(nullable=True, default_now=False)
    resolution_due_at: datetime | None = _time(nullable=True, default_now=False)
    due_at: datetime = Field(default=NO_DUE, sa_column=sa.Column(UTCDateTime(), nullable=False))
    check_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    policy: str | None = Field(default=None, max_length=100)
    breached: bool = False  # any target of this conversation was missed (reports: SLA attainment)
    reopened: int = 0
    # Optimistic concurrency: every change bumps it; API clients may send If-Match.
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, default=1))
    updated_at: datetime = _time()


class ConversationEvent(SQLModel, table=True):
    """A timeline event that is part of a conversation (an event belongs to one at most)."""

    __tablename__ = "inbox_conversation_event"

    id: int | None = _id()
    conversation_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("inbox_conversation.id", ondelete="CASCADE"),
                                                     nullable=False, index=True))
    event_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("timeline_event.id", ondelete="CASCADE"),
                                              nullable=False, unique=True))
    direction: str = Field(max_length=10)
    occurred_at: datetime = _time()


class Escalation(SQLModel, table=True):
    """One near-breach or breach of one target of one conversation: unique, so it happens once even
    when two ticks race or the process restarts between noticing and acting."""

    __tablename__ = "inbox_escalation"
    __table_args__ = (sa.UniqueConstraint("conversation_id", "target", "level", "due_at", name="uq_inbox_escalation"),)

    id: int | None = _id()
    conversation_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("inbox_conversation.id", ondelete="CASCADE"),
                                                     nullable=False, index=True))
    target: str = Field(max_length=20)  # first_response, next_response, resolution
    level: str = Field(max_length=10)  # warning, breach
    due_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    actions: dict[str, Any] = _json(dict)
    occurred_at: datetime = _time()


class CannedResponse(SQLModel, table=True):
    """A saved reply: shared (owner NULL) or one agent's own; its body may use {{ contact.name }} etc."""

    __tablename__ = "inbox_canned"
    __table_args__ = (sa.Index("ix_inbox_canned_owner", "owner_id", "shortcut"),)

    id: int | None = _id()
    owner_id: int | None = _user_fk(index=False, ondelete="CASCADE")
    shortcut: str = Field(max_length=40)
    title: str = Field(max_length=200)
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    locale: str = Field(default="ru", max_length=10)
    created_at: datetime = _time()
    updated_at: datetime = _time()
