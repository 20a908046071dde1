"""The scheduler's recompute: RFM scores, the cohort table, monthly customer movements and channel
volumes, each aggregated by the database into the small tables the dashboards read; then the
value model (analytics.value). Idempotent: each run replaces the previous figures in one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from analytics import rfm
from analytics.models import ChannelMonth, CohortCell, ComputeRun, MonthFigure, ResponseMonth
from analytics.sql import epoch_days, month_index, month_of_days, order_moves
from hub import clock
from hub.channel_hooks import conversation_channels
from hub.models import TimelineEvent

if TYPE_CHECKING:
    from hub.runtime import Hub


@dataclass(frozen=True)
class Options:
    """What a recompute assumes; from `[extensions.analytics]` (analytics.extension)."""

    currency: str = "RUB"
    churn_days: int = 180
    activity_months: int = 24
    horizon_days: int = 365
    holdout_days: int = 180


def _order_months(currency: str) -> Any:
    """(owner_id, month, cohort, is_order, amount): each move with its month and its owner's first-order
    month, the cohort found by a window over the same pass (a join of the moves to their own first
    months made PostgreSQL rescan them per row when its estimates were off)."""
    moves = order_moves(currency)
    month = month_index(moves.c.occurred_at)
    first = func.min(sa.case((moves.c.is_order == 1, month), else_=None)).over(partition_by=moves.c.owner_id)
    return select(moves.c.owner_id, month.label("month"), first.label("cohort"), moves.c.is_order,
                  moves.c.amount).subquery("om")


def _cohorts(session: Session, currency: str) -> int:
    om = _order_months(currency)
    offset = om.c.month - om.c.cohort
    buyer = sa.case((om.c.is_order == 1, om.c.owner_id), else_=None)
    source = (select(om.c.cohort, offset.label("month_offset"), func.count(sa.distinct(buyer)),
                     func.sum(om.c.is_order), func.coalesce(func.sum(om.c.amount), 0))
              .where(om.c.cohort.is_not(None)).group_by(om.c.cohort, offset))
    session.execute(delete(CohortCell))
    session.execute(insert(CohortCell).from_select(["cohort", "month_offset", "customers", "orders", "revenue"], source))
    return int(session.scalar(select(func.count()).select_from(CohortCell)) or 0)


def _months(session: Session, currency: str, churn_days: int, now: datetime) -> int:
    om = _order_months(currency)
    buyer = sa.case((om.c.is_order == 1, om.c.owner_id), else_=None)
    figures: dict[int, dict[str, Any]] = {}

    def put(rows: Any, *names: str) -> None:
        for month, *values in rows:
            row = figures.setdefault(int(month), {})
            row.update(zip(names, values, strict=True))

    put(session.execute(select(om.c.month, func.count(sa.distinct(buyer)), func.sum(om.c.is_order),
                               func.coalesce(func.sum(om.c.amount), 0)).group_by(om.c.month)),
        "customers", "orders", "revenue")
    put(session.execute(select(om.c.cohort, func.count(sa.distinct(om.c.owner_id))).where(om.c.is_order == 1)
                        .group_by(om.c.cohort)), "new_customers")
    put(session.execute(select(om.c.month, func.count(sa.distinct(om.c.owner_id)))
                        .where(om.c.is_order == 1, om.c.month > om.c.cohort).group_by(om.c.month)),
        "repeat_customers")
    moves = order_moves(currency)
    day = epoch_days(moves.c.occurred_at)
    orders = (select(moves.c.owner_id, day.label("day"),
                     func.lag(day).over(partition_by=moves.c.owner_id, order_by=day).label("before"),
                     func.lead(day).over(partition_by=moves.c.owner_id, order_by=day).label("after"))
              .where(moves.c.is_order == 1).subquery("gaps"))
    back = month_of_days(orders.c.day)
    put(session.execute(select(back, func.count(sa.distinct(orders.c.owner_id)))
                        .where(orders.c.before.is_not(None), orders.c.day - orders.c.before > churn_days)
                        .group_by(back)), "reactivated")
    lapse = orders.c.day + churn_days
    now_day = (now - datetime(1970, 1, 1, tzinfo=now.tzinfo)).total_seconds() / 86400
    gone = month_of_days(lapse)
    put(session.execute(select(gone, func.count(sa.distinct(orders.c.owner_id)))
                        .where(sa.or_(orders.c.after.is_(None), orders.c.after - orders.c.day > churn_days),
                               lapse <= now_day).group_by(gone)), "churned")
    session.execute(delete(MonthFigure))
    for month, values in sorted(figures.items()):
        session.add(MonthFigure(month=month, **{k: (Decimal(v) if k == "revenue" else int(v or 0))
                                                for k, v in values.items()}))
    session.flush()
    return len(figures)


def _channels(session: Session, months: int, now: datetime) -> int:
    since = now - timedelta(days=31 * months)
    month = month_index(TimelineEvent.occurred_at)
    user = func.coalesce(TimelineEvent.actor_user_id, 0)
    source = (select(month, TimelineEvent.channel, TimelineEvent.direction, user, func.count())
              .where(TimelineEvent.occurred_at >= since, TimelineEvent.occurred_at <= now)
              .group_by(month, TimelineEvent.channel, TimelineEvent.direction, user))
    session.execute(delete(ChannelMonth))
    session.execute(insert(ChannelMonth).from_select(["month", "channel", "direction", "user_id", "events"], source))
    return int(session.scalar(select(func.count()).select_from(ChannelMonth)) or 0)


def _responses(session: Session, months: int, now: datetime) -> int:
    """Per month and channel: inbound messages whose next event on that contact and channel is an
    agent's outbound message, and the time to it (a burst of several inbound messages counts its
    last one: the reply answers them all). Channels: those a contact writes and is answered on."""
    te = TimelineEvent
    since = now - timedelta(days=31 * months)
    window = {"partition_by": (te.contact_id, te.channel), "order_by": (te.occurred_at, te.id)}
    day = epoch_days(te.occurred_at)
    seq = (select(te.channel, te.direction, day.label("day"), month_index(te.occurred_at).label("month"),
                  func.lead(te.direction).over(**window).label("next_direction"),
                  func.lead(te.actor_user_id).over(**window).label("next_actor"),
                  func.lead(day).over(**window).label("next_day"))
           .where(te.channel.in_(conversation_channels()), te.occurred_at >= since, te.occurred_at <= now).subquery("seq"))
    source = (select(seq.c.month, seq.c.channel, func.count(), func.sum((seq.c.next_day - seq.c.day) * 86400.0))
              .where(seq.c.direction == "in", seq.c.next_direction == "out", seq.c.next_actor.is_not(None))
              .group_by(seq.c.month, seq.c.channel))
    session.execute(delete(ResponseMonth))
    session.execute(insert(ResponseMonth).from_select(["month", "channel", "replies", "seconds"], source))
    return int(session.scalar(select(func.count()).select_from(ResponseMonth)) or 0)


def recompute_scores(session: Session, *, options: Options, now: datetime) -> ComputeRun:
    """Every precomputed table but the value model's columns, in the caller's transaction."""
    started = time.perf_counter()
    counts = rfm.recompute(session, currency=options.currency, now=now)
    cohorts = _cohorts(session, options.currency)
    months = _months(session, options.currency, options.churn_days, now)
    channels = _channels(session, options.activity_months, now)
    responses = _responses(session, options.activity_months, now)
    run = ComputeRun(kind="scores", started_at=now, seconds=round(time.perf_counter() - started, 3),
                     rows=sum(counts.values()),
                     details={"owners": counts, "cohort_cells": cohorts, "months": months, "channel_rows": channels,
                              "response_rows": responses,
                              "currency": options.currency, "churn_days": options.churn_days})
    session.add(run)
    session.flush()
    return run


def run(hub: Hub, *, options: Options) -> None:
    """The scheduler job `analytics.recompute`: the scores, then the value model, each committed."""
    from analytics import value

    now = clock.now()
    with hub.session() as session, session.begin():
        recompute_scores(session, options=options, now=now)
    with hub.session() as session, session.begin():
        value.refresh(session, options=options, now=now)


def latest_run(session: Session, kind: str) -> ComputeRun | None:
    return session.scalars(select(ComputeRun).where(ComputeRun.kind == kind)
                           .order_by(ComputeRun.started_at.desc(), ComputeRun.id.desc()).limit(1)).first()
