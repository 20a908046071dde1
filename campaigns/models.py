"""Campaigns, their drip steps, their runs and each run's recipients (the progress record).

A run is unique per (campaign, run_key): the run_key is the scheduled wall-clock time in the
campaign's zone for scheduled runs ("2026-03-29T02:30") and "event:<id>" for triggered ones, so a
cron time that a DST change repeats, or a dispatch tick that runs twice, makes one run, not two.
A recipient is unique per (run, contact): inserting it and enqueueing its delivery happen in one
transaction, so "a recipient row exists" means "their message is in the outbox".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, UTCDateTime, _fk, _id, _time


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# A campaign in one of these states sends; a paused one keeps its place, the rest are over.
ACTIVE = (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING)


class ScheduleKind(StrEnum):
    NOW = "now"
    AT = "at"
    CRON = "cron"
    TRIGGER = "trigger"


class RunStatus(StrEnum):
    PENDING = "pending"  # due at scheduled_for, nobody materialised it yet
    MATERIALISING = "materialising"  # recipients are being added in batches (resumable)
    SENDING = "sending"  # every recipient is in; drip steps may still be due
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class RecipientStatus(StrEnum):
    ACTIVE = "active"  # a later drip step is still due
    DONE = "done"  # every step went to the outbox
    REPLIED = "replied"  # a later step was skipped because the contact replied
    NO_ADDRESS = "no_address"  # the contact has no address on the campaign's channel
    FAILED = "failed"  # their message could not be rendered
    HELD = "held"  # the rest of an A/B test's audience: waits for the winner (campaigns/ab/)


class Campaign(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_campaign_due", "status", "next_run_at"),
        sa.Index("ix_campaign_trigger", "status", "trigger_kind"),
    )

    id: int | None = _id()
    name: str = Field(max_length=200)
    channel: str = Field(max_length=40)
    # No foreign key: segments and templates are another package's tables, looked up by id.
    segment_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True, index=True))
    sender: str = Field(default="", max_length=320)
    schedule_kind: str = Field(default=ScheduleKind.NOW, max_length=20)
    send_at: datetime | None = _time(nullable=True, default_now=False)
    cron: str | None = Field(default=None, max_length=120)
    time_zone: str = Field(default="UTC", max_length=64)
    trigger_kind: str | None = Field(default=None, max_length=60)
    trigger_delay_minutes: int = 0
    quiet_hours_start: str | None = Field(default=None, max_length=5)  # "21:00", recipient's local time
    quiet_hours_end: str | None = Field(default=None, max_length=5)
    frequency_cap_max: int | None = None
    frequency_cap_days: int | None = None
    # An A/B test of the first step (campaigns/ab/): the share of the audience that gets the variants
    # at random (None: no test), the metric that picks the winner and how long after the test messages
    # went out it is picked. The seed makes the split reproducible; the outcome is recorded once.
    ab_share_percent: int | None = None
    ab_metric: str | None = Field(default=None, max_length=10)
    ab_wait_minutes: int | None = None
    ab_seed: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True))
    ab_decide_at: datetime | None = _time(nullable=True, default_now=False)
    ab_outcome: str | None = Field(default=None, max_length=20)  # the verdict: winner / no_difference / too_few
    ab_p_value: float | None = None
    ab_winner: str | None = Field(default=None, max_length=1)
    ab_winner_by: str | None = Field(default=None, max_length=10)  # test / marketer / default
    ab_decided_at: datetime | None = _time(nullable=True, default_now=False)
    status: str = Field(default=CampaignStatus.DRAFT, max_length=20)
    next_run_at: datetime | None = _time(nullable=True, default_now=False)
    last_run_at: datetime | None = _time(nullable=True, default_now=False)
    created_by: int | None = _fk("user_account.id", index=False)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class CampaignStep(SQLModel, table=True):
    """One message of a campaign: step 1 goes at the run, step n `delay_minutes` after step n-1."""

    __tablename__ = "campaign_step"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "position", name="uq_campaign_step_position"),)

    id: int | None = _id()
    campaign_id: int = _fk("campaign.id", nullable=False, index=False, ondelete="CASCADE")
    position: int = 1
    template_id: int = Field(sa_column=sa.Column(BigId, nullable=False))
    delay_minutes: int = 0
    skip_if_replied: bool = True


class CampaignRun(SQLModel, table=True):
    __tablename__ = "campaign_run"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "run_key", name="uq_campaign_run_key"),
        sa.Index("ix_campaign_run_due", "status", "scheduled_for"),
    )

    id: int | None = _id()
    campaign_id: int = _fk("campaign.id", nullable=False, index=False, ondelete="CASCADE")
    run_key: str = Field(max_length=80)
    scheduled_for: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # A triggered run targets the contact of its event instead of the segment.
    contact_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True))
    trigger_event_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True))
    status: str = Field(default=RunStatus.PENDING, max_length=20)
    # The moment the segment is evaluated at: fixed at the first batch, so a resumed run sees the same audience.
    started_at: datetime | None = _time(nullable=True, default_now=False)
    materialised_at: datetime | None = _time(nullable=True, default_now=False)
    finished_at: datetime | None = _time(nullable=True, default_now=False)
    targeted: int = 0  # recipients added so far (the progress bar's total once materialised)
    batches: int = 0  # committed batches: the checkpoint counter
    created_at: datetime = _time()


class CampaignRecipient(SQLModel, table=True):
    """One contact of one run: the progress record a crash and a restart rely on."""

    __tablename__ = "campaign_recipient"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "contact_id", name="uq_campaign_recipient"),
        sa.Index("ix_campaign_recipient_due", "next_step_at"),
    )

    id: int | None = _id()
    run_id: int = _fk("campaign_run.id", nullable=False, index=False, ondelete="CASCADE")
    contact_id: int = Field(sa_column=sa.Column(BigId, nullable=False, index=True))
    address: str | None = Field(default=None, max_length=320)
    step: int = 0  # the last step whose delivery is in the outbox
    status: str = Field(default=RecipientStatus.ACTIVE, max_length=20)
    next_step_at: datetime | None = _time(nullable=True, default_now=False)
    error: str | None = Field(default=None, max_length=500)
    # A/B test: "test" (got `variant` at random) or "rest" (held, then gets the winner, written
    # into `variant` when it is queued). Written with the row, before anything is sent.
    ab_role: str | None = Field(default=None, max_length=4)
    variant: str | None = Field(default=None, max_length=1)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class CampaignVariant(SQLModel, table=True):
    """One variant of an A/B-tested campaign's first step: its own template, subject or send time
    (each blank: as the step has it). Labelled A, B, C, D in order; A is the default."""

    __tablename__ = "campaign_variant"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "label", name="uq_campaign_variant_label"),)

    id: int | None = _id()
    campaign_id: int = _fk("campaign.id", nullable=False, index=False, ondelete="CASCADE")
    label: str = Field(max_length=1)
    template_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True))
    subject: str | None = Field(default=None, max_length=300)
    send_time: str | None = Field(default=None, max_length=5)  # "HH:MM" in the campaign's zone


def run_deliveries(run_ids: Any) -> Any:
    """A SELECT of the delivery ids of the runs `run_ids` (a list or a subquery): the outbox does not
    know campaigns, campaign_message links each delivery to its run."""
    return sa.select(CampaignMessage.delivery_id).where(CampaignMessage.run_id.in_(run_ids))


def of_runs(run_ids: Any) -> Any:
    """The condition on delivery rows: one of the runs `run_ids` carried it."""
    from hub.models import Delivery

    return Delivery.__table__.c.id.in_(run_deliveries(run_ids))


class CampaignMessage(SQLModel, table=True):
    """Which delivery carried which step to which recipient: per-step results come from here."""

    __tablename__ = "campaign_message"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "step", "contact_id", name="uq_campaign_message"),
        sa.Index("ix_campaign_message_campaign", "campaign_id", "step"),
    )

    id: int | None = _id()
    campaign_id: int = Field(sa_column=sa.Column(BigId, nullable=False))
    run_id: int = Field(sa_column=sa.Column(BigId, nullable=False))
    step: int = 1
    contact_id: int = Field(sa_column=sa.Column(BigId, nullable=False))
    delivery_id: int = Field(sa_column=sa.Column(BigId, nullable=False, index=True))
    created_at: datetime = _time()
