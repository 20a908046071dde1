"""Per-variant figures of an A/B test: recipients, sent, opened, clicked, replied, ordered, rates.

A test recipient counts for its variant only until the decision (or now, before it): what happens
after the winner went to the rest does not change the verdict. The rest is shown on its own line,
with no cut-off. Engagement counts people: a contact who opened twice opened once. Replies and
orders count from the moment the recipient's first message was queued (campaign_message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, distinct, exists, func, or_, select
from sqlalchemy.orm import Session

from campaigns.ab.stats import Arm, Verdict, verdict
from campaigns.models import Campaign, CampaignMessage, CampaignRecipient, CampaignRun
from campaigns.results import SENT
from campaigns.runs import thread_key
from hub import clock
from hub.events import ORDER_COMPLETED
from hub.models import Delivery, Direction, TimelineEvent

R = CampaignRecipient.__table__
M = CampaignMessage.__table__
E = TimelineEvent.__table__
COUNTS = ("recipients", "sent", "opened", "clicked", "replied", "ordered")
# Which count each winner metric reads.
METRIC_COUNT = {"open": "opened", "click": "clicked", "reply": "replied", "order": "ordered"}


@dataclass
class VariantFigures:
    label: str  # "A"…"D", or "rest"
    recipients: int = 0
    sent: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    ordered: int = 0

    def rate(self, name: str) -> float | None:
        return getattr(self, name) / self.sent if self.sent else None

    def as_dict(self) -> dict[str, Any]:
        figures = {k: getattr(self, k) for k in COUNTS}
        return {"variant": self.label, **figures,
                **{f"{k}_rate": self.rate(k) for k in ("opened", "clicked", "replied", "ordered")}}


@dataclass
class ABResults:
    metric: str
    variants: list[VariantFigures]
    rest: VariantFigures
    verdict: Verdict  # as the figures say now (the recorded outcome is on the campaign)
    cutoff: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {"metric": self.metric, "variants": [f.as_dict() for f in self.variants], "rest": self.rest.as_dict(),
                "now": {"outcome": v.outcome, "leader": v.leader, "p_value": v.p_value, "chi2": v.chi2,
                        "short": v.short, "short_reason": v.short_reason},
                "cutoff": self.cutoff.isoformat(), **self.extra}


def _cells(session: Session, campaign_id: int, cutoff: datetime) -> dict[tuple[str, str | None], dict[str, int]]:
    """Counts per (role, variant) in a handful of grouped queries."""
    runs = select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id).scalar_subquery()
    key = (R.c.ab_role, R.c.variant)
    base = and_(R.c.run_id.in_(runs), R.c.ab_role.is_not(None))
    first = and_(M.c.run_id == R.c.run_id, M.c.contact_id == R.c.contact_id, M.c.step == 1)
    # Test recipients count until the cut-off; the rest, whatever happened since.
    in_time = or_(R.c.ab_role == "rest", E.c.occurred_at <= cutoff)
    out: dict[tuple[str, str | None], dict[str, int]] = {}

    def add(name: str, query: Any) -> None:
        for role, label, count in session.execute(query.group_by(*key)).all():
            out.setdefault((role, label), {})[name] = count

    add("recipients", select(*key, func.count()).where(base))
    add("sent", select(*key, func.count()).select_from(R.join(M, first).join(Delivery.__table__, Delivery.id == M.c.delivery_id))
        .where(base, Delivery.status.in_([s.value for s in SENT])))
    for name, kind in (("opened", "campaign.opened"), ("clicked", "campaign.clicked")):
        did = exists().where(E.c.contact_id == R.c.contact_id, E.c.thread_key == thread_key(campaign_id),
                             E.c.kind == kind, in_time)
        add(name, select(*key, func.count(distinct(R.c.contact_id))).where(base, did))
    for name, kind in (("replied", "message"), ("ordered", ORDER_COMPLETED)):
        did = exists().where(E.c.contact_id == R.c.contact_id, E.c.kind == kind, E.c.direction == Direction.IN.value,
                             E.c.occurred_at > M.c.created_at, in_time)
        add(name, select(*key, func.count(distinct(R.c.contact_id))).select_from(R.join(M, first)).where(base, did))
    return out


def ab_results(session: Session, *, campaign: Campaign, now: datetime | None = None, alpha: float = 0.05,
                 min_sent: int = 30) -> ABResults | None:
    """The test's figures per variant and the verdict they give; None for a campaign without a test."""
    if campaign.ab_share_percent is None:
        return None
    from campaigns.ab.variants import variants_of

    cutoff = campaign.ab_decided_at or now or clock.now()
    cells = _cells(session, campaign.id, cutoff)  # type: ignore[arg-type]
    labels = [v.label for v in variants_of(session, campaign.id)]  # type: ignore[arg-type]
    variants = [VariantFigures(label, **cells.get(("test", label), {})) for label in labels]
    rest = VariantFigures("rest")
    for (role, _label), counts in cells.items():
        if role == "rest":
            for name, value in counts.items():
                setattr(rest, name, getattr(rest, name) + value)
    count = METRIC_COUNT[campaign.ab_metric or "open"]
    arms = [Arm(f.label, f.sent, getattr(f, count)) for f in variants]
    return ABResults(metric=campaign.ab_metric or "open", variants=variants, rest=rest, cutoff=cutoff,
                       verdict=verdict(arms, alpha=alpha, min_sent=min_sent))


__all__ = ["ABResults", "VariantFigures", "ab_results"]
