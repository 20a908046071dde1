"""The SQL pieces every analytics figure is built from: the order "moves" (each order once, refunds
negative) that RFM, value and cohorts read, per owner. The portable time functions (calendar months
and days from timestamps, UTC) are the core's, in hub.sql_portable, shared with keyaccounts; they are
imported here for the analytics modules that read them from this one.

A month is an integer: year × 12 + month − 1 (2026-12 is 24323)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, func, select, union_all
from sqlalchemy.orm import aliased

from hub.events import COMMERCE_CHANNEL, ORDER_COMPLETED, ORDER_REFUNDED
from hub.json_sql import json_number, json_text
from hub.models import Contact, TimelineEvent
from hub.sql_portable import epoch_days, month_index, month_of_days

__all__ = ["epoch_days", "in_range", "month_index", "month_label", "month_of_days", "order_moves", "per_owner"]


def month_label(month: int) -> str:
    """2026-12 for 24323."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def order_moves(currency: str, *, by: str = "contact", since: Any = None, until: Any = None) -> Any:
    """(owner_id, occurred_at, amount, is_order) for every live contact's orders in `currency`:
    each order once (its latest report, as hub.events.order_totals counts it), refunds as negative
    amounts with is_order 0. `by="account"` groups by the contacts' account (members without one are
    left out); `since`/`until` keep only rows in [since, until) (a hold-out's two periods)."""
    event = aliased(TimelineEvent)
    owner = Contact.account_id if by == "account" else Contact.id
    base = [event.channel == COMMERCE_CHANNEL, json_text(event.data, "order", "currency") == currency,
            Contact.merged_into.is_(None)]
    if by == "account":
        base.append(Contact.account_id.is_not(None))
    if since is not None:
        base.append(event.occurred_at >= since)
    if until is not None:
        base.append(event.occurred_at < until)
    amount = json_number(event.data, "order", "amount")
    reports = (select(owner.label("owner_id"), event.occurred_at.label("occurred_at"), amount.label("amount"),
                      func.row_number().over(
                          partition_by=(event.contact_id, json_text(event.data, "source"),
                                        json_text(event.data, "order", "order_id")),
                          order_by=(event.occurred_at.desc(), event.id.desc())).label("nth"))
               .join(Contact, Contact.id == event.contact_id)
               .where(event.kind == ORDER_COMPLETED, *base).subquery("reports"))
    completed = select(reports.c.owner_id, reports.c.occurred_at, reports.c.amount,
                       sa.literal(1).label("is_order")).where(reports.c.nth == 1)
    refunds = (select(owner.label("owner_id"), event.occurred_at.label("occurred_at"), (-amount).label("amount"),
                      sa.literal(0).label("is_order"))
               .join(Contact, Contact.id == event.contact_id).where(event.kind == ORDER_REFUNDED, *base))
    return union_all(completed, refunds).subquery("moves")


def per_owner(moves: Any) -> Any:
    """(owner_id, first_order_at, last_order_at, orders, revenue) of every owner with an order."""
    order_at = sa.case((moves.c.is_order == 1, moves.c.occurred_at), else_=None)
    return (select(moves.c.owner_id, func.min(order_at).label("first_order_at"),
                   func.max(order_at).label("last_order_at"), func.sum(moves.c.is_order).label("orders"),
                   func.coalesce(func.sum(moves.c.amount), 0).label("revenue"))
            .group_by(moves.c.owner_id).having(func.sum(moves.c.is_order) > 0))


def in_range(column: Any, since: Any, until: Any) -> Any:
    return and_(column >= since, column < until)
