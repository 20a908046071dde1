"""The tick's A/B parts: pick the winner when the wait is over, or say why not; send the winner to the rest.

- `decide_due`: a test whose `ab_decide_at` came gets its verdict (campaigns/ab/stats.py). With a
  significant difference the winner is set at once ("test"). With too few recipients or events, or
  no significant difference, nothing is picked: the campaign's page says so and the marketer
  chooses (`choose`, "marketer"). Nobody chose within `ab_default_after_hours`: variant A, the
  control, goes ("default") — the rest must not wait for ever, and A is what the marketer would
  have sent without a test.
- `send_winner`: the rest's held recipients get the winner's first step in batches, one
  transaction each, under the campaign row's lock like a materialisation batch (so a pause cannot
  slip in), through the outbox with the campaign's sending rules, as any first step. Each batch
  moves its recipients out of "held" in the transaction that queues their messages: a crash
  repeats nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.ab.results import ab_results
from campaigns.ab.variants import variants_of
from campaigns.models import (
    ACTIVE,
    Campaign,
    CampaignMessage,
    CampaignRecipient,
    CampaignRun,
    CampaignStatus,
    RecipientStatus,
    RunStatus,
    of_runs,
)
from hub import clock
from hub.auth import SYSTEM, Principal
from hub.models import Contact, Delivery
from hub.web.i18n import N_

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("campaigns.ab")
OVER = (CampaignStatus.CANCELLED, CampaignStatus.DRAFT)


def decision_time(session: Session, *, campaign: Campaign, run_id: int, now: datetime) -> datetime:
    """When the winner is picked: the wait after the last test message may go (a variant's send time)."""
    from campaigns.service import HOLD_UNTIL

    # Messages a pause holds are not counted: resuming restarts the wait (campaigns.service.resume).
    latest = session.scalar(select(func.max(Delivery.send_after)).where(of_runs([run_id]),
                                                                        Delivery.send_after < HOLD_UNTIL))
    if latest is not None and latest.tzinfo is None:
        from datetime import timezone

        latest = latest.replace(tzinfo=timezone.utc)
    start = max(now, latest) if latest is not None else now
    return start + timedelta(minutes=campaign.ab_wait_minutes or 0)


def thresholds(hub: Any) -> tuple[float, int, float]:
    """(alpha, min_sent, default_after_hours) from [extensions.campaigns]."""
    from campaigns.extension import CampaignsSettings

    section = (hub.settings.extensions or {}).get("campaigns") or {}
    settings = section if isinstance(section, CampaignsSettings) else CampaignsSettings.model_validate(dict(section))
    return settings.ab_alpha, settings.ab_min_sent, settings.ab_default_after_hours


def decide_due(hub: Hub, *, now: datetime | None = None) -> list[int]:
    """Give every test whose wait is over its verdict (and its winner, if significant); their campaigns' ids."""
    now = now or clock.now()
    alpha, min_sent, default_after = thresholds(hub)
    decided: list[int] = []
    with hub.session() as session, session.begin():
        # A paused test waits: its messages are held, so its figures would judge nothing.
        due = session.scalars(select(Campaign).where(
            Campaign.ab_decide_at.is_not(None), Campaign.ab_decide_at <= now, Campaign.ab_decided_at.is_(None),
            Campaign.status.not_in([*OVER, CampaignStatus.PAUSED])).with_for_update(skip_locked=True)).all()
        for campaign in due:
            found = ab_results(session, campaign=campaign, now=now, alpha=alpha, min_sent=min_sent)
            assert found is not None
            v = found.verdict
            campaign.ab_outcome, campaign.ab_p_value, campaign.ab_decided_at = v.outcome, v.p_value, now
            if campaign.ab_winner is None and v.winner is not None:
                campaign.ab_winner, campaign.ab_winner_by = v.winner, "test"
            _audit(session, SYSTEM, campaign, "campaign.ab_decided",
                   {"outcome": v.outcome, "winner": v.winner, "p_value": v.p_value})
            decided.append(campaign.id)  # type: ignore[arg-type]
        # No verdict and no choice by the deadline: the control goes.
        late = session.scalars(select(Campaign).where(
            Campaign.ab_decided_at.is_not(None), Campaign.ab_decided_at <= now - timedelta(hours=default_after),
            Campaign.ab_winner.is_(None), Campaign.status.not_in(OVER)).with_for_update(skip_locked=True)).all()
        for campaign in late:
            campaign.ab_winner, campaign.ab_winner_by = "A", "default"
            _audit(session, SYSTEM, campaign, "campaign.ab_winner", {"winner": "A", "by": "default"})
    for campaign_id in decided:
        log.info("A/B test of campaign %s decided", campaign_id)
    return decided


def default_at(campaign: Campaign, hub: Any) -> datetime | None:
    """When variant A goes by default if nobody chooses (None: not waiting for a choice)."""
    if campaign.ab_decided_at is None or campaign.ab_winner is not None:
        return None
    return campaign.ab_decided_at + timedelta(hours=thresholds(hub)[2])


def choose(session: Session, *, campaign: Campaign, label: str, actor: Principal) -> Campaign:
    """The marketer picks the variant the rest gets (before or after the verdict, until one is set)."""
    from campaigns.service import CampaignError

    if campaign.ab_share_percent is None:
        raise CampaignError(N_("This campaign has no A/B test."), status=409)
    labels = [v.label for v in variants_of(session, campaign.id)]  # type: ignore[arg-type]
    if label not in labels:
        raise CampaignError(N_("There is no variant “%(label)s”; this test has %(labels)s."), field="variant",
                            label=label, labels=", ".join(labels))
    if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
        raise CampaignError(N_("This campaign is %(state)s; its rest cannot get a variant."), status=409,
                            state=campaign.status)
    has_run = session.scalar(select(CampaignRun.id).where(CampaignRun.campaign_id == campaign.id).limit(1))
    if has_run is None:
        raise CampaignError(N_("The test has not started yet; a winner is chosen once its messages went out."),
                            status=409)
    if campaign.ab_winner is not None:
        raise CampaignError(N_("Variant %(label)s already goes to the rest of the audience."), status=409,
                            label=campaign.ab_winner)
    session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    campaign.ab_winner, campaign.ab_winner_by = label, "marketer"
    campaign.updated_at = clock.now()
    _audit(session, actor, campaign, "campaign.ab_winner", {"winner": label, "by": "marketer"})
    return campaign


def _audit(session: Session, actor: Principal, campaign: Campaign, action: str, changes: dict[str, Any]) -> None:
    from hub import audit

    audit.record(session, actor=actor, action=action, entity="campaign", entity_id=campaign.id, changes=changes)


def send_winner(hub: Hub, *, now: datetime | None = None, batch_size: int = 500) -> int:
    """Queue the winner's first step for held recipients of active campaigns; how many were queued."""
    moved = 0
    while True:
        with hub.session() as session, session.begin():
            campaign_id = session.scalar(
                select(CampaignRun.campaign_id)
                .join(Campaign, Campaign.id == CampaignRun.campaign_id)
                .join(CampaignRecipient, CampaignRecipient.run_id == CampaignRun.id)
                .where(Campaign.ab_winner.is_not(None), Campaign.status.in_(ACTIVE),
                       CampaignRun.status.in_([RunStatus.MATERIALISING, RunStatus.SENDING]),
                       CampaignRecipient.status == RecipientStatus.HELD).limit(1))
            if campaign_id is None:
                return moved
            # Locks the campaign row, as a materialisation batch does: a pause waits for this batch or stops it.
            campaign = session.scalars(select(Campaign).where(Campaign.id == campaign_id).with_for_update()).one()
            if campaign.status not in ACTIVE:
                continue
            moved += _send_batch(session, hub, campaign=campaign, batch_size=batch_size, now=now or clock.now())


def _send_batch(session: Session, hub: Hub, *, campaign: Campaign, batch_size: int, now: datetime) -> int:
    from campaigns.runs import send_steps, steps_of

    held = session.scalars(
        select(CampaignRecipient).join(CampaignRun, CampaignRun.id == CampaignRecipient.run_id)
        .where(CampaignRun.campaign_id == campaign.id, CampaignRecipient.status == RecipientStatus.HELD,
               CampaignRun.status.in_([RunStatus.MATERIALISING, RunStatus.SENDING]))
        .order_by(CampaignRecipient.id).limit(batch_size).with_for_update()).all()
    steps = steps_of(session, campaign.id)  # type: ignore[arg-type]
    variant = next(v for v in variants_of(session, campaign.id) if v.label == campaign.ab_winner)  # type: ignore[arg-type]
    following = steps[1] if len(steps) > 1 else None
    contacts = {c.id: c for c in session.scalars(select(Contact).where(
        Contact.id.in_([r.contact_id for r in held]))).all()}
    by_run: dict[int, list[CampaignRecipient]] = {}
    for recipient in held:
        recipient.variant, recipient.updated_at = variant.label, now
        contact = contacts.get(recipient.contact_id)
        if contact is None or recipient.address is None:
            recipient.status = RecipientStatus.NO_ADDRESS
            continue
        by_run.setdefault(recipient.run_id, []).append(recipient)
    messages = []
    for run_id, group in by_run.items():
        sent_list = send_steps(session, hub, campaign=campaign, run_id=run_id, step=steps[0], variant=variant,
                               targets=[(contacts[r.contact_id], r.address) for r in group])  # type: ignore[misc]
        for recipient, sent in zip(group, sent_list):
            if isinstance(sent, str):
                recipient.status, recipient.error, recipient.step = RecipientStatus.FAILED, sent[:500], 0
                continue
            messages.append(sent)
            recipient.step = 1
            recipient.status = RecipientStatus.ACTIVE if following is not None else RecipientStatus.DONE
            recipient.next_step_at = now + timedelta(minutes=following.delay_minutes) if following else None
    if messages:
        session.execute(CampaignMessage.__table__.insert(), messages)
    return len(held)


__all__ = ["choose", "decide_due", "decision_time", "default_at", "send_winner"]
