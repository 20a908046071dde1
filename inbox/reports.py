"""Inbox reports per agent, team or channel over a period: conversations opened and resolved,
first-response and resolution times (median, p90), SLA attainment, the survey score where a survey
followed, and the backlog day by day. Every figure is a plain query over inbox_conversation (and
the survey answers on the timeline), documented in docs/inbox.md."""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.models import TimelineEvent, User
from hub.web.timeline_view import score_kinds
from inbox.models import Conversation, Team

GROUPS = ("agent", "team", "channel")
# A survey answered within this long after the conversation was resolved counts as its score.
SURVEY_WINDOW = timedelta(days=14)


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (p90: share=0.9); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


@dataclass
class Row:
    key: str
    label: str
    opened: int = 0
    resolved: int = 0
    first_response: list[float] = field(default_factory=list)  # minutes
    resolution: list[float] = field(default_factory=list)
    with_target: int = 0
    met: int = 0
    survey: list[float] = field(default_factory=list)  # share of the scale, 0–100

    @property
    def first_median(self) -> float | None:
        return statistics.median(self.first_response) if self.first_response else None

    @property
    def first_p90(self) -> float | None:
        return percentile(self.first_response, 0.9)

    @property
    def resolution_median(self) -> float | None:
        return statistics.median(self.resolution) if self.resolution else None

    @property
    def resolution_p90(self) -> float | None:
        return percentile(self.resolution, 0.9)

    @property
    def attainment(self) -> float | None:
        return self.met / self.with_target if self.with_target else None

    @property
    def survey_score(self) -> float | None:
        return statistics.fmean(self.survey) if self.survey else None


@dataclass
class Report:
    group: str
    since: datetime
    until: datetime
    rows: list[Row]
    backlog: list[tuple[date, int]]


def _minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60


def _labels(session: Session, group: str) -> dict[str, str]:
    if group == "agent":
        return {str(i): n for i, n in session.execute(select(User.id, User.display_name)).all()}
    if group == "team":
        return {str(i): n for i, n in session.execute(select(Team.id, Team.name)).all()}
    return {}


def _survey_scores(session: Session, convs: list[Conversation]) -> dict[int, float]:
    """Conversation id -> the first survey answer's score (share of its scale) within the window after it was resolved."""
    resolved = [c for c in convs if c.resolved_at is not None]
    if not resolved:
        return {}
    contact_ids = {c.contact_id for c in resolved}
    events = session.execute(select(TimelineEvent.contact_id, TimelineEvent.occurred_at, TimelineEvent.data).where(
        TimelineEvent.contact_id.in_(contact_ids), TimelineEvent.kind.in_(score_kinds()))
        .order_by(TimelineEvent.occurred_at)).all()
    by_contact: dict[int, list[tuple[datetime, dict]]] = defaultdict(list)
    for contact_id, at, data in events:
        by_contact[contact_id].append((at, data or {}))
    out = {}
    for conv in resolved:
        for at, data in by_contact.get(conv.contact_id, []):
            if conv.resolved_at <= at <= conv.resolved_at + SURVEY_WINDOW:  # type: ignore[operator]
                for key, scale in (("nps", 10), ("csat", 5), ("score", data.get("scale"))):
                    value = data.get(key)
                    if isinstance(value, (int, float)) and isinstance(scale, int) and scale > 0:
                        out[conv.id] = 100 * value / scale  # type: ignore[index]
                        break
                break
    return out


def build(session: Session, *, group: str, since: datetime, until: datetime, zone: ZoneInfo) -> Report:
    """The report for conversations opened or resolved from since to until (both included)."""
    if group not in GROUPS:
        raise ValueError(f"group: one of {', '.join(GROUPS)}")
    convs = list(session.scalars(select(Conversation).where(or_(
        Conversation.opened_at.between(since, until), Conversation.resolved_at.between(since, until)))))
    labels = _labels(session, group)
    scores = _survey_scores(session, convs)
    rows: dict[str, Row] = {}
    for conv in convs:
        raw = conv.assignee_id if group == "agent" else conv.team_id if group == "team" else conv.channel
        key = "" if raw is None else str(raw)
        row = rows.setdefault(key, Row(key, labels.get(key, key)))
        if since <= conv.opened_at <= until:
            row.opened += 1
            if conv.first_response_at is not None:
                row.first_response.append(_minutes(conv.opened_at, conv.first_response_at))
            if conv.policy is not None and (conv.resolved_at is not None or conv.breached):
                row.with_target += 1
                row.met += not conv.breached
        if conv.resolved_at is not None and since <= conv.resolved_at <= until:
            row.resolved += 1
            row.resolution.append(_minutes(conv.opened_at, conv.resolved_at))
            if conv.id in scores:
                row.survey.append(scores[conv.id])
    return Report(group, since, until, sorted(rows.values(), key=lambda r: (r.key == "", r.label)),
                  backlog(session, since=since, until=until, zone=zone))


def backlog(session: Session, *, since: datetime, until: datetime, zone: ZoneInfo) -> list[tuple[date, int]]:
    """Unresolved conversations at the end of each local day of the period."""
    spans = session.execute(select(Conversation.opened_at, Conversation.resolved_at).where(
        Conversation.opened_at < until, or_(Conversation.resolved_at.is_(None), Conversation.resolved_at >= since))).all()
    out = []
    day = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    while day <= last:
        end = datetime.combine(day + timedelta(days=1), time(0), zone)
        out.append((day, sum(1 for opened, resolved in spans if opened < end and (resolved is None or resolved >= end))))
        day += timedelta(days=1)
    return out


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def to_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([report.group, "opened", "resolved", "first_response_median_min", "first_response_p90_min",
                     "resolution_median_min", "resolution_p90_min", "sla_attainment", "survey_score"])
    for row in report.rows:
        label = row.label or "-"
        if label[:1] in ("=", "+", "-", "@") and label != "-":  # a spreadsheet would run it as a formula
            label = "'" + label
        writer.writerow([label, row.opened, row.resolved, _num(row.first_median), _num(row.first_p90),
                         _num(row.resolution_median), _num(row.resolution_p90),
                         "" if row.attainment is None else f"{row.attainment:.3f}", _num(row.survey_score)])
    writer.writerow([])
    writer.writerow(["day", "backlog"])
    for day, count in report.backlog:
        writer.writerow([day.isoformat(), count])
    return buffer.getvalue()


def backlog_svg(points: list[tuple[date, int]], *, title: str, width: int = 640, height: int = 180) -> Markup:
    """The backlog day by day as inline SVG (server-rendered, like the other charts)."""
    if not points:
        return Markup("")
    pad_l, pad_r, pad_t, pad_b = 40, 12, 10, 24
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    top = max(max(v for _d, v in points), 1)
    n = len(points)

    def x(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return pad_t + plot_h - plot_h * v / top

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'id="backlog-chart" aria-label="{escape(title)}">']
    for value in sorted({0, top // 2, top}):
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{pad_l - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">{value}</text>')
    coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_d, v) in enumerate(points))
    parts.append(f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{coords}"/>')
    for i, (day, v) in enumerate(points):
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="#2563eb"><title>{day.isoformat()}: {v}</title></circle>')
    for i in sorted({0, n - 1}):
        anchor = "start" if i == 0 and n > 1 else "end" if n > 1 else "middle"
        parts.append(f'<text x="{x(i):.1f}" y="{height - 6}" text-anchor="{anchor}" font-size="11" fill="#6b7280">'
                     f'{points[i][0].isoformat()}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
