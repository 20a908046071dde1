"""What a campaign achieved: targeted, sent, delivered, bounced, opened, clicked, replied,
unsubscribed, failed — in total, per drip step, and over time (a server-rendered SVG chart).

Sending figures come from the outbox rows the campaign's messages point to (campaign_message →
delivery); engagement from the timeline events the tracking and unsubscribe routes post with
`thread_key = "campaign:<id>"`; a reply is an inbound message from a recipient after the campaign
reached them. Engagement counts people, not events: two opens by one contact are one "opened".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import distinct, exists, func, select
from sqlalchemy.orm import Session

from campaigns.models import CampaignMessage, CampaignRecipient, CampaignRun
from campaigns.runs import thread_key
from hub.models import Delivery, DeliveryStatus, Direction, TimelineEvent

S = DeliveryStatus
SENT = (S.SENT, S.DELIVERED, S.READ, S.BOUNCED, S.UNDELIVERED)  # handed to the provider
DELIVERED = (S.DELIVERED, S.READ)
FAILED = (S.FAILED, S.DEAD)  # never reached the provider, or it refused at once
ENGAGEMENT = {"opened": "campaign.opened", "clicked": "campaign.clicked", "unsubscribed": "campaign.unsubscribed"}
METRICS = ("targeted", "sent", "delivered", "bounced", "opened", "clicked", "replied", "unsubscribed", "failed")


@dataclass
class Figures:
    targeted: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    failed: int = 0
    queued: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in (*METRICS, "queued", "skipped")}


@dataclass
class Results:
    campaign_id: int
    total: Figures
    steps: dict[int, Figures] = field(default_factory=dict)
    series: list[dict[str, Any]] = field(default_factory=list)  # [{"at": datetime, "sent": n, "opened": n, …}]

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            **self.total.as_dict(),
            "steps": [{"step": n, **f.as_dict()} for n, f in sorted(self.steps.items())],
            "series": [{**point, "at": point["at"].isoformat()} for point in self.series],
        }


def _status_counts(session: Session, campaign_id: int) -> dict[int, dict[str, int]]:
    rows = session.execute(
        select(CampaignMessage.step, Delivery.status, func.count())
        .join(Delivery, Delivery.id == CampaignMessage.delivery_id)
        .where(CampaignMessage.campaign_id == campaign_id)
        .group_by(CampaignMessage.step, Delivery.status)
    ).all()
    out: dict[int, dict[str, int]] = {}
    for step, status, count in rows:
        out.setdefault(step, {})[status] = count
    return out


def _engaged(session: Session, campaign_id: int, kind: str) -> int:
    return session.scalar(
        select(func.count(distinct(TimelineEvent.contact_id))).where(
            TimelineEvent.thread_key == thread_key(campaign_id), TimelineEvent.kind == kind)
    ) or 0


def _replied(session: Session, campaign_id: int) -> int:
    reply = exists().where(
        TimelineEvent.contact_id == CampaignRecipient.contact_id, TimelineEvent.direction == Direction.IN,
        TimelineEvent.kind == "message", TimelineEvent.occurred_at > CampaignRecipient.created_at)
    return session.scalar(
        select(func.count(distinct(CampaignRecipient.contact_id)))
        .join(CampaignRun, CampaignRun.id == CampaignRecipient.run_id)
        .where(CampaignRun.campaign_id == campaign_id, CampaignRecipient.step > 0, reply)
    ) or 0


def campaign_results(session: Session, *, campaign_id: int, bucket: str | None = None) -> Results:
    """Every figure of one campaign, per step and over time."""
    targeted = session.scalar(
        select(func.count()).select_from(CampaignRecipient)
        .join(CampaignRun, CampaignRun.id == CampaignRecipient.run_id)
        .where(CampaignRun.campaign_id == campaign_id)
    ) or 0
    total = Figures(targeted=targeted)
    steps: dict[int, Figures] = {}
    for step, counts in _status_counts(session, campaign_id).items():
        figures = Figures(
            targeted=sum(counts.values()),
            sent=sum(counts.get(s, 0) for s in SENT),
            delivered=sum(counts.get(s, 0) for s in DELIVERED),
            bounced=counts.get(S.BOUNCED, 0),
            failed=sum(counts.get(s, 0) for s in FAILED) + counts.get(S.UNDELIVERED, 0),
            queued=counts.get(S.QUEUED, 0) + counts.get(S.SENDING, 0),
            skipped=counts.get(S.CANCELLED, 0),
        )
        steps[step] = figures
        for name in ("sent", "delivered", "bounced", "failed", "queued", "skipped"):
            setattr(total, name, getattr(total, name) + getattr(figures, name))
    total.opened = _engaged(session, campaign_id, ENGAGEMENT["opened"])
    total.clicked = _engaged(session, campaign_id, ENGAGEMENT["clicked"])
    total.unsubscribed = _engaged(session, campaign_id, ENGAGEMENT["unsubscribed"])
    total.replied = _replied(session, campaign_id)
    _step_engagement(session, campaign_id, steps)
    return Results(campaign_id=campaign_id, total=total, steps=steps, series=series(session, campaign_id, bucket=bucket))


def _step_engagement(session: Session, campaign_id: int, steps: dict[int, Figures]) -> None:
    """Opens and clicks per step: the tracking event names its delivery, campaign_message its step."""
    if len(steps) < 2:
        for figures in steps.values():
            figures.opened = _engaged(session, campaign_id, ENGAGEMENT["opened"])
            figures.clicked = _engaged(session, campaign_id, ENGAGEMENT["clicked"])
        return
    events = session.execute(
        select(TimelineEvent.kind, TimelineEvent.contact_id, TimelineEvent.data).where(
            TimelineEvent.thread_key == thread_key(campaign_id),
            TimelineEvent.kind.in_([ENGAGEMENT["opened"], ENGAGEMENT["clicked"]]))
    ).all()
    delivery_ids = sorted({d for _k, _c, data in events if isinstance(d := (data or {}).get("delivery_id"), int)})
    step_of: dict[int, int] = {}
    for start in range(0, len(delivery_ids), 1000):
        step_of.update(session.execute(
            select(CampaignMessage.delivery_id, CampaignMessage.step)
            .where(CampaignMessage.delivery_id.in_(delivery_ids[start:start + 1000]))).all())
    seen: set[tuple[str, int, int]] = set()
    for kind, contact_id, data in events:
        data = data or {}
        step = data.get("step") if isinstance(data.get("step"), int) else step_of.get(data.get("delivery_id"))  # type: ignore[arg-type]
        if step not in steps or (kind, contact_id, step) in seen:
            continue
        seen.add((kind, contact_id, step))  # type: ignore[arg-type]
        name = "opened" if kind == ENGAGEMENT["opened"] else "clicked"
        setattr(steps[step], name, getattr(steps[step], name) + 1)  # type: ignore[index]


def _bucket_expr(session: Session, column: Any, bucket: str) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc(bucket, column)
    return func.strftime("%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00", column)


def _as_time(value: Any) -> datetime:
    from datetime import timezone

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def series(session: Session, campaign_id: int, *, bucket: str | None = None) -> list[dict[str, Any]]:
    """Sent messages and engagement per hour (or per day, for campaigns spanning more than 3 days)."""
    first, last = session.execute(
        select(func.min(Delivery.sent_at), func.max(Delivery.sent_at))
        .join(CampaignMessage, CampaignMessage.delivery_id == Delivery.id)
        .where(CampaignMessage.campaign_id == campaign_id)
    ).one()
    if first is None:
        return []
    if bucket is None:
        bucket = "day" if _as_time(last) - _as_time(first) > timedelta(days=3) else "hour"
    points: dict[datetime, dict[str, int]] = {}
    sent_at = _bucket_expr(session, Delivery.sent_at, bucket)
    for at, count in session.execute(
        select(sent_at, func.count())
        .join(CampaignMessage, CampaignMessage.delivery_id == Delivery.id)
        .where(CampaignMessage.campaign_id == campaign_id, Delivery.sent_at.is_not(None))
        .group_by(sent_at)
    ).all():
        points.setdefault(_as_time(at), {})["sent"] = count
    occurred = _bucket_expr(session, TimelineEvent.occurred_at, bucket)
    for at, kind, count in session.execute(
        select(occurred, TimelineEvent.kind, func.count(distinct(TimelineEvent.contact_id)))
        .where(TimelineEvent.thread_key == thread_key(campaign_id), TimelineEvent.kind.in_(list(ENGAGEMENT.values())))
        .group_by(occurred, TimelineEvent.kind)
    ).all():
        name = next(k for k, v in ENGAGEMENT.items() if v == kind)
        points.setdefault(_as_time(at), {})[name] = count
    return [{"at": at, **{k: counts.get(k, 0) for k in ("sent", *ENGAGEMENT)}} for at, counts in sorted(points.items())]


COLOURS = {"sent": "#2563eb", "opened": "#16a34a", "clicked": "#d97706", "unsubscribed": "#dc2626"}


def chart_svg(points: list[dict[str, Any]], *, labels: dict[str, str], fmt_time: Any = None,
              width: int = 640, height: int = 220) -> Markup:
    """A line chart of the series as inline SVG (no JavaScript), or an empty Markup when there is nothing."""
    if not points:
        return Markup("")
    pad_l, pad_r, pad_t, pad_b = 44, 12, 12, 40
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    top = max(1, *(p[k] for p in points for k in COLOURS))
    n = len(points)

    def x(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return pad_t + plot_h - plot_h * v / top

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'aria-label="{escape(labels.get("title", ""))}">']
    for frac in (0, 0.5, 1):
        value = round(top * frac)
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#e5e7eb"/><text x="{pad_l - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
                     f'font-size="11" fill="#6b7280">{value}</text>')
    for name, colour in COLOURS.items():
        coords = " ".join(f"{x(i):.1f},{y(p[name]):.1f}" for i, p in enumerate(points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}">'
                     f'<title>{escape(labels.get(name, name))}</title></polyline>')
        for i, p in enumerate(points):
            if p[name]:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(p[name]):.1f}" r="2.5" fill="{colour}"/>')
    for i in sorted({0, n - 1}):
        when = points[i]["at"]
        text = fmt_time(when) if fmt_time else when.strftime("%Y-%m-%d %H:%M")
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        parts.append(f'<text x="{x(i):.1f}" y="{height - pad_b + 16}" text-anchor="{anchor}" font-size="11" '
                     f'fill="#6b7280">{escape(text)}</text>')
    legend_x = pad_l
    for name, colour in COLOURS.items():
        label = escape(labels.get(name, name))
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{legend_x + 14}" y="{height - 5}" font-size="11" fill="#374151">{label}</text>')
        legend_x += 24 + 7 * len(str(label))
    parts.append("</svg>")
    return Markup("".join(parts))


__all__ = ["Figures", "Results", "campaign_results", "chart_svg", "series"]
