"""The four processes measured: acquisition (new contacts by source and their first orders),
retention (cohorts, churned, reactivated), growth (repeat purchases, revenue per customer) and
satisfaction (NPS and CSAT by channel, RFM cell and segment, over time). Each function is one or two
grouped queries; docs/analytics.md gives their SQL."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from analytics.models import CohortCell, MonthFigure, RfmScore
from analytics.sql import epoch_days, in_range, month_index
from hub.json_sql import json_text
from hub.events import COMMERCE_CHANNEL, ORDER_COMPLETED
from hub.models import Contact, TimelineEvent

NO_SOURCE = "none"  # created by hand or by an import: no event before the contact


# --- acquisition --------------------------------------------------------------------------------

@dataclass
class SourceRow:
    key: tuple[str, ...]
    contacts: int = 0
    converted: int = 0
    days_to_order: float | None = None  # mean, among the converted

    @property
    def rate(self) -> float:
        return self.converted / self.contacts if self.contacts else 0.0


@dataclass
class Acquisition:
    by_source: list[SourceRow]  # key: (channel, detail)
    by_utm: list[SourceRow]  # key: (utm_source, utm_medium, utm_campaign)
    by_month: dict[int, dict[str, int]]  # month -> channel -> new contacts
    total: SourceRow = field(default_factory=lambda: SourceRow(("",)))


def acquisition(session: Session, *, since: datetime, until: datetime) -> Acquisition:
    """New live contacts created in [since, until), by the source of their first event, and how many
    of them went on to a first order (ever, up to now)."""
    created = and_(Contact.merged_into.is_(None), in_range(Contact.created_at, since, until))
    te = TimelineEvent
    first = (select(te.contact_id, te.channel, te.kind,
                    sa.case((te.channel == "forms", json_text(te.data, "form_name")),
                            (te.channel == COMMERCE_CHANNEL, json_text(te.data, "source")), else_=te.kind).label("detail"),
                    json_text(te.data, "utm", "source").label("utm_source"),
                    json_text(te.data, "utm", "medium").label("utm_medium"),
                    json_text(te.data, "utm", "campaign").label("utm_campaign"),
                    func.row_number().over(partition_by=te.contact_id, order_by=(te.occurred_at, te.id)).label("nth"))
             .join(Contact, Contact.id == te.contact_id).where(created).subquery("first"))
    orders = (select(te.contact_id, func.min(te.occurred_at).label("first_order_at"))
              .join(Contact, Contact.id == te.contact_id)
              .where(created, te.channel == COMMERCE_CHANNEL, te.kind == ORDER_COMPLETED)
              .group_by(te.contact_id).subquery("orders"))
    channel = func.coalesce(first.c.channel, NO_SOURCE)
    detail = func.coalesce(first.c.detail, "")
    utm = [func.coalesce(first.c.utm_source, ""), func.coalesce(first.c.utm_medium, ""),
           func.coalesce(first.c.utm_campaign, "")]
    month = month_index(Contact.created_at)
    wait = epoch_days(orders.c.first_order_at) - epoch_days(Contact.created_at)
    rows = session.execute(
        select(month, channel, detail, *utm, func.count(), func.count(orders.c.first_order_at), func.sum(wait))
        .select_from(Contact)
        .outerjoin(first, and_(first.c.contact_id == Contact.id, first.c.nth == 1))
        .outerjoin(orders, orders.c.contact_id == Contact.id)
        .where(created).group_by(month, channel, detail, *utm)).all()
    sources: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    utms: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    by_month: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    total = [0, 0, 0.0]
    for m, ch, det, us, um, uc, n, conv, waited in rows:
        for bucket in (sources[(ch, det or "")], utms[(us, um, uc)], total):
            bucket[0] += n
            bucket[1] += conv
            bucket[2] += float(waited or 0)
        by_month[int(m)][ch] += n

    def rows_of(groups: dict[tuple[str, ...], list[float]]) -> list[SourceRow]:
        out = [SourceRow(k, int(v[0]), int(v[1]), v[2] / v[1] if v[1] else None) for k, v in groups.items()]
        return sorted(out, key=lambda r: (-r.contacts, r.key))

    return Acquisition(rows_of(sources), [r for r in rows_of(utms) if any(r.key)],
                       {m: dict(v) for m, v in sorted(by_month.items())},
                       SourceRow(("",), int(total[0]), int(total[1]), total[2] / total[1] if total[1] else None))


# --- retention ----------------------------------------------------------------------------------

@dataclass
class CohortRow:
    cohort: int
    size: int
    customers: list[int | None]  # by month offset; None: that month has not come yet

    def share(self, offset: int) -> float | None:
        value = self.customers[offset] if offset < len(self.customers) else None
        return None if value is None or not self.size else value / self.size


def cohorts(session: Session, *, now: datetime, months: int = 12) -> list[CohortRow]:
    """The last `months` first-order cohorts, each with its customers ordering 0…months−1 months later."""
    current = _month_of(now)
    start = current - months + 1
    cells = {(c, o): n for c, o, n in session.execute(
        select(CohortCell.cohort, CohortCell.offset, CohortCell.customers).where(CohortCell.cohort >= start,
                                                                                CohortCell.offset < months))}
    out = []
    for cohort in range(start, current + 1):
        size = cells.get((cohort, 0), 0)
        out.append(CohortRow(cohort, size, [cells.get((cohort, o), 0) if cohort + o <= current else None
                                            for o in range(months)]))
    return out


def _month_of(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1


def month_figures(session: Session, *, now: datetime, months: int = 12) -> list[MonthFigure]:
    """The last `months` calendar months of the customer base (zeros where nothing happened)."""
    current = _month_of(now)
    found = {f.month: f for f in session.scalars(select(MonthFigure).where(MonthFigure.month > current - months,
                                                                           MonthFigure.month <= current))}
    return [found.get(m) or MonthFigure(month=m) for m in range(current - months + 1, current + 1)]


# --- growth -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Growth:
    customers: int
    repeat_customers: int  # two orders or more, ever
    revenue: Decimal

    @property
    def repeat_rate(self) -> float:
        return self.repeat_customers / self.customers if self.customers else 0.0

    @property
    def revenue_per_customer(self) -> Decimal:
        return (self.revenue / self.customers).quantize(Decimal("0.01")) if self.customers else Decimal(0)


def growth(session: Session) -> Growth:
    """The whole base, from the precomputed scores: customers, repeat customers, revenue."""
    n, repeat, revenue = session.execute(
        select(func.count(), func.count(sa.case((RfmScore.orders >= 2, 1), else_=None)),
               func.coalesce(func.sum(RfmScore.revenue), 0)).where(RfmScore.owner_kind == "contact")).one()
    return Growth(int(n), int(repeat), Decimal(revenue))


# --- satisfaction -------------------------------------------------------------------------------

@dataclass
class Scores:
    key: tuple[Any, ...]
    answers: int = 0
    nps_answers: int = 0
    promoters: int = 0
    detractors: int = 0
    csat_answers: int = 0
    satisfied: int = 0

    @property
    def nps(self) -> float | None:
        return round(100 * (self.promoters - self.detractors) / self.nps_answers, 1) if self.nps_answers else None

    @property
    def csat(self) -> float | None:
        return round(100 * self.satisfied / self.csat_answers, 1) if self.csat_answers else None


@dataclass
class Satisfaction:
    by_month: list[Scores]  # key: (month,)
    by_channel: list[Scores]  # key: (channel,)
    by_cell: list[Scores]  # key: (cell,)
    by_month_channel: dict[tuple[int, str], Scores]
    total: Scores


def satisfaction(session: Session, *, since: datetime, until: datetime, contact_ids: Any = None) -> Satisfaction:
    """NPS (promoters 9–10 minus detractors 0–6, in points) and CSAT (share answering 4–5) of the
    completed survey answers submitted in [since, until), by month, by the invitation's channel and by
    the contact's RFM cell; `contact_ids` (a SELECT of ids, a segment's) narrows them."""
    from campaigns.surveys.models import SurveyInvitation, SurveyResponse

    r = SurveyResponse
    month = month_index(r.submitted_at)
    channel = func.coalesce(SurveyInvitation.channel, "")
    cell = func.coalesce(RfmScore.cell, "")
    query = (select(month, channel, cell, func.count(), func.count(r.nps),
                    func.count(sa.case((r.nps >= 9, 1), else_=None)), func.count(sa.case((r.nps <= 6, 1), else_=None)),
                    func.count(r.csat), func.count(sa.case((r.csat >= 4, 1), else_=None)))
             .join(SurveyInvitation, SurveyInvitation.id == r.invitation_id)
             .outerjoin(RfmScore, and_(RfmScore.owner_kind == "contact", RfmScore.owner_id == r.contact_id))
             .where(r.completed.is_(True), in_range(r.submitted_at, since, until))
             .group_by(month, channel, cell))
    if contact_ids is not None:
        query = query.where(r.contact_id.in_(contact_ids))
    groups: dict[str, dict[tuple[Any, ...], Scores]] = {"m": {}, "c": {}, "r": {}, "mc": {}}
    total = Scores(("",))
    for m, ch, rc, n, nn, pro, det, cn, sat in session.execute(query):
        for name, key in (("m", (int(m),)), ("c", (ch,)), ("r", (rc,)), ("mc", (int(m), ch)), ("t", None)):
            s = total if key is None else groups[name].setdefault(key, Scores(key))
            s.answers += n
            s.nps_answers += nn
            s.promoters += pro
            s.detractors += det
            s.csat_answers += cn
            s.satisfied += sat
    return Satisfaction(sorted(groups["m"].values(), key=lambda s: s.key),
                        sorted(groups["c"].values(), key=lambda s: (-s.answers, s.key)),
                        sorted(groups["r"].values(), key=lambda s: (-s.answers, s.key)),
                        {k: v for k, v in groups["mc"].items()}, total)  # type: ignore[misc]
