"""Surveys, the invitations that carry their signed links, and the one response per invitation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, _fk, _id, _json, _time


class SurveyStatus(StrEnum):
    DRAFT = "draft"  # being written: no trigger fires, no manual send
    ACTIVE = "active"  # triggers schedule invitations; links can be answered
    CLOSED = "closed"  # no new invitations, answers are final


class InvitationStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for send_at
    SENT = "sent"  # handed to the outbox
    ANSWERED = "answered"  # a complete response exists
    SKIPPED = "skipped"  # never sent: no reachable channel, the N-day rule, survey closed
    CANCELLED = "cancelled"


class QuestionKind(StrEnum):
    NPS = "nps"  # 0–10, "how likely are you to recommend"
    CSAT = "csat"  # 1–5 satisfaction
    RATING = "rating"  # 1–N stars (N in `scale`)
    SINGLE = "single"  # one of the options
    MULTIPLE = "multiple"  # any of the options
    TEXT = "text"  # free text


class Survey(SQLModel, table=True):
    """A questionnaire with its trigger, channels, reminder, expiry and the N-day rule."""

    id: int | None = _id()
    name: str = Field(max_length=200)
    status: str = Field(default=SurveyStatus.DRAFT, max_length=20, index=True)
    # {"ru": "...", "en": "..."}: page heading, intro and thank-you text.
    title: dict[str, Any] = _json(dict)
    intro: dict[str, Any] = _json(dict)
    thanks: dict[str, Any] = _json(dict)
    # [{"key", "kind", "required", "text": {ru, en}, "options": [{"key", "text": {ru, en}}],
    #   "scale": 5, "show_if": {"question": key, "max": 6}}]: see service.Question.
    questions: list[dict[str, Any]] = _json(list)
    # Trigger: the timeline event kind that schedules an invitation (None: manual sends only).
    trigger_kind: str | None = Field(default=None, max_length=60, index=True)
    delay_minutes: int = 0
    channels: list[str] = _json(lambda: ["email", "sms"])  # in order of preference
    reminder_days: int | None = None  # one reminder this many days after sending, if unanswered
    expiry_days: int = 14  # the link answers for this many days after sending
    cooldown_days: int = 30  # no contact is surveyed more than once in this many days
    detractor_nps_max: int = 6  # NPS at or below: a detractor
    detractor_csat_max: int = 2  # CSAT at or below: a detractor
    follow_up_user_id: int | None = _fk("user_account.id", index=False)  # the queue when the contact has no owner
    closes_at: datetime | None = _time(nullable=True, default_now=False)
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class SurveyInvitation(SQLModel, table=True):
    """One contact asked to answer one survey for one cause; its row is the due-row of the scheduler."""

    __tablename__ = "survey_invitation"
    __table_args__ = (
        sa.UniqueConstraint("survey_id", "contact_id", "cause", name="uq_survey_invitation_cause"),
        sa.Index("ix_survey_invitation_due", "status", "send_at"),
        sa.Index("ix_survey_invitation_remind", "status", "remind_at"),
        sa.Index("ix_survey_invitation_contact", "contact_id", "sent_at"),
    )

    id: int | None = _id()
    survey_id: int = _fk("survey.id", nullable=False)
    contact_id: int = _fk("contact.id", nullable=False, index=False)
    # Why it exists: "event:<timeline event id>", "manual:<batch id>"; unique with survey and contact.
    cause: str = Field(max_length=200)
    # Random secret signed into the link: a token only opens its own invitation, and a new one can
    # be issued by changing it.
    nonce: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    status: str = Field(default=InvitationStatus.SCHEDULED, max_length=20)
    send_at: datetime = _time()
    sent_at: datetime | None = _time(nullable=True, default_now=False)
    remind_at: datetime | None = _time(nullable=True, default_now=False)
    reminded_at: datetime | None = _time(nullable=True, default_now=False)
    expires_at: datetime | None = _time(nullable=True, default_now=False)
    channel: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=320)
    skip_reason: str | None = Field(default=None, max_length=300)
    source_event_id: int | None = _fk("timeline_event.id", index=False)
    # What the cause carried (order id, amount, currency, item count…): the results' breakdown.
    context: dict[str, Any] = _json(dict)
    created_at: datetime = _time()


class SurveyResponse(SQLModel, table=True):
    """The answers to one invitation: at most one row, saved partially, editable until the survey closes."""

    __tablename__ = "survey_response"

    id: int | None = _id()
    invitation_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("survey_invitation.id"), nullable=False,
                                                   unique=True))
    survey_id: int = _fk("survey.id", nullable=False)
    contact_id: int = _fk("contact.id", nullable=False)
    answers: dict[str, Any] = _json(dict)
    completed: bool = False
    nps: int | None = None
    csat: int | None = None
    locale: str | None = Field(default=None, max_length=10)
    edits: int = 0
    event_id: int | None = _fk("timeline_event.id", index=False)  # the survey.answered event
    follow_up_task_id: int | None = _fk("task.id", index=False)  # opened once, for a detractor
    submitted_at: datetime | None = _time(nullable=True, default_now=False, index=True)
    created_at: datetime = _time()
    updated_at: datetime = _time()
