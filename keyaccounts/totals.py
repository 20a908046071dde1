"""Every account's profit in a few aggregate queries, for the ranking, the managers' page and the
figures job (`profit.all_profits`): the same rules as `profit.compute`, summed by the database, so
memory does not grow with the number of events (one row per account and line comes back, never one
per event). One account's panel sums its figures here too (`contact_ids`) and lists only its newest rows
(`profit.account_panel`).

- One pass over the period's timeline events with conditional aggregates per owner: calls and their
  talk time, completed meetings and their length, agent-written emails, SMS and notes.
- One pass over its order events: each order's latest report (row_number() over the order), summed
  by owner with its margin (the shop's, else ROUND(amount × rate, 2) per order); refunds subtracted.
- Tasks and marketing deliveries of the period, counted per owner (and channel).

Owners are accounts, or contacts without one. Cost lines are the totals times the rates, rounded
once per line as `compute` does. Orders skipped for their currency or a missing amount are counted
on the panel, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from hub.events import COMMERCE_CHANNEL, ORDER_COMPLETED, ORDER_REFUNDED
from hub.json_sql import json_number, json_text
from hub.models import Contact, Delivery, Purpose, Task, TimelineEvent
from hub.sql_portable import at_least_zero, seconds_between
from keyaccounts.batch import rows_of
from keyaccounts.profit import CENT, LINES, Line, Owner, Profit, Rates, _scoped


def _owner_columns() -> tuple[Any, Any]:
    return Contact.account_id.label("account_id"), case((Contact.account_id.is_(None), Contact.id)).label("lone_id")


def load_totals(session: Session, *, since: datetime, until: datetime, rates: Rates,
                contact_ids: Sequence[int] | None = None) -> dict[Owner, Profit]:
    """Every owner's profit over the period (or only these contacts' owners'), from aggregate queries
    (no refs, no order list)."""
    profits: dict[Owner, Profit] = {}

    def profit_of(account_id: int | None, lone_id: int | None) -> Profit:
        owner: Owner = ("account", account_id) if account_id is not None else ("contact", lone_id)  # type: ignore[assignment]
        if owner not in profits:
            profits[owner] = Profit(owner)
        return profits[owner]

    account_id, lone_id = _owner_columns()
    e = TimelineEvent
    in_period = and_(e.occurred_at >= since, e.occurred_at < until)
    is_call = and_(e.channel == "phone", e.kind == "call")
    is_meeting = and_(e.channel == "meetings", e.kind == "meeting.completed")
    authored = e.actor_user_id.is_not(None)
    talk = func.coalesce(func.nullif(json_number(e.data, "talk_seconds"), 0), json_number(e.data, "duration_seconds"), 0)
    length = seconds_between(json_text(e.data, "starts_at"), json_text(e.data, "ends_at"))
    kinds = {"calls": is_call, "meetings": is_meeting,
             "emails": and_(authored, e.channel == "email", e.direction == "out"),
             "sms": and_(authored, e.channel == "sms", e.direction == "out"),
             "notes": and_(authored, e.channel == "note", e.direction == "internal")}
    columns = [func.count(case((cond, 1))).label(name) for name, cond in kinds.items()]
    columns += [func.sum(case((is_call, at_least_zero(talk)), else_=0)).label("call_seconds"),
                func.sum(case((is_meeting, at_least_zero(length)), else_=0)).label("meeting_seconds")]
    events = (select(account_id, lone_id, *columns).select_from(e).join(Contact, Contact.id == e.contact_id)
              .where(in_period, or_(*kinds.values())).group_by(account_id, lone_id))
    for row in rows_of(session.execute(_scoped(session, events, e.contact_id, contact_ids))):
        profit = profit_of(row.account_id, row.lone_id)
        for name in kinds:
            profit.lines[name].count = int(getattr(row, name) or 0)
        profit.lines["calls"].minutes = Decimal(str(row.call_seconds or 0)) / 60
        profit.lines["meetings"].minutes = Decimal(str(row.meeting_seconds or 0)) / 60
        for name in ("emails", "sms", "notes"):
            profit.lines[name].minutes = profit.lines[name].count * rates.minutes_per(name)

    tasks = (select(account_id, lone_id, func.count().label("n")).select_from(Task).join(Contact, Contact.id == Task.contact_id)
             .where(Task.created_at >= since, Task.created_at < until).group_by(account_id, lone_id))
    for row in rows_of(session.execute(_scoped(session, tasks, Task.contact_id, contact_ids))):
        line = profit_of(row.account_id, row.lone_id).lines["tasks"]
        line.count = int(row.n)
        line.minutes = line.count * rates.minutes_per("tasks")

    sends = (select(account_id, lone_id, Delivery.channel, func.count().label("n"))
             .select_from(Delivery).join(Contact, Contact.id == Delivery.contact_id)
             .where(Delivery.purpose == Purpose.MARKETING, Delivery.sent_at >= since, Delivery.sent_at < until)
             .group_by(account_id, lone_id, Delivery.channel))
    for row in rows_of(session.execute(_scoped(session, sends, Delivery.contact_id, contact_ids))):
        line = profit_of(row.account_id, row.lone_id).lines["marketing"]
        line.count += int(row.n)
        line.cost += int(row.n) * rates.marketing_send_cost.get(row.channel or "", Decimal(0))

    _orders(session, in_period=in_period, rates=rates, profit_of=profit_of, contact_ids=contact_ids)
    per_minute = rates.agent_hour_cost / 60
    for profit in profits.values():
        for name in LINES:
            line: Line = profit.lines[name]
            if name != "marketing":
                line.cost = line.minutes * per_minute
            line.cost = line.cost.quantize(CENT, rounding=ROUND_HALF_UP)
            line.minutes = line.minutes.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return profits


def _orders(session: Session, *, in_period: Any, rates: Rates, profit_of: Any,
            contact_ids: Sequence[int] | None) -> None:
    e = TimelineEvent
    account_id, lone_id = _owner_columns()
    # Each report's JSON is read once, in the windowed subquery (which the planner cannot flatten),
    # and the margin rule applied to those columns outside it.
    reports = (select(account_id, lone_id, e.kind, json_number(e.data, "order", "amount").label("amount"),
                      json_number(e.data, "order", "margin").label("shop_margin"),
                      json_text(e.data, "order", "currency").label("currency"),
                      func.row_number().over(
                          partition_by=(Contact.account_id, case((Contact.account_id.is_(None), Contact.id)),
                                        e.kind, json_text(e.data, "source"), json_text(e.data, "order", "order_id")),
                          order_by=(e.occurred_at.desc(), e.id.desc())).label("nth"))
               .select_from(e).join(Contact, Contact.id == e.contact_id)
               .where(in_period, e.channel == COMMERCE_CHANNEL, e.kind.in_([ORDER_COMPLETED, ORDER_REFUNDED])))
    r = _scoped(session, reports, e.contact_id, contact_ids).subquery()
    counted = and_(r.c.amount.is_not(None), r.c.currency == rates.currency)
    amount = case((counted, r.c.amount))
    margin = case((counted, func.coalesce(r.c.shop_margin,
                                          func.round(r.c.amount * literal(rates.default_margin_rate, sa.Numeric()), 2))))
    sign = case((r.c.kind == ORDER_REFUNDED, -1), else_=1)
    totals = (select(r.c.account_id, r.c.lone_id,
                     func.sum(sign * amount).label("revenue"), func.sum(sign * margin).label("margin"),
                     func.count(amount).label("counted"), func.count().label("reports"))
              .where(or_(r.c.nth == 1, r.c.kind == ORDER_REFUNDED))
              .group_by(r.c.account_id, r.c.lone_id))
    for row in rows_of(session.execute(totals)):
        if row.revenue is None and row.margin is None and contact_ids is None:
            continue  # only orders in another currency, or without an amount: not an owner to rank
        profit = profit_of(row.account_id, row.lone_id)
        profit.order_count, profit.skipped_count = int(row.counted), int(row.reports) - int(row.counted)
        profit.revenue = Decimal(str(row.revenue or 0)).quantize(CENT, rounding=ROUND_HALF_UP)
        profit.margin = Decimal(str(row.margin or 0)).quantize(CENT, rounding=ROUND_HALF_UP)
