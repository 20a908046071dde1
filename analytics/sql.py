"""Dialect-neutral SQL pieces every figure is built from: calendar months and days from timestamps
(UTC), and the order "moves" (each order once, refunds negative) that RFM, value and cohorts read.

A month is an integer: year × 12 + month − 1 (2026-12 is 24323), so month arithmetic is subtraction
on both stores. SQLite keeps naive UTC text, PostgreSQL timestamptz; both are read as UTC."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, func, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from hub.json_sql import json_number, json_text
from hub.events import COMMERCE_CHANNEL, ORDER_COMPLETED, ORDER_REFUNDED
from hub.models import Contact, TimelineEvent

UNIX_JULIAN = 2440587.5


class month_index(FunctionElement):  # type: ignore[type-arg]  # noqa: N801 - reads like a SQL function
    """The UTC calendar month of a timestamp as year × 12 + month − 1."""

    type = sa.Integer()
    inherit_cache = True


@compiles(month_index, "sqlite")
def _month_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    ts = compiler.process(list(element.clauses)[0], **kw)
    return f"(CAST(strftime('%Y', {ts}) AS INTEGER) * 12 + CAST(strftime('%m', {ts}) AS INTEGER) - 1)"


@compiles(month_index, "postgresql")
def _month_pg(element: Any, compiler: Any, **kw: Any) -> str:
    ts = compiler.process(list(element.clauses)[0], **kw)
    return (f"(CAST(EXTRACT(YEAR FROM ({ts}) AT TIME ZONE 'UTC') AS INTEGER) * 12 "
            f"+ CAST(EXTRACT(MONTH FROM ({ts}) AT TIME ZONE 'UTC') AS INTEGER) - 1)")


class epoch_days(FunctionElement):  # type: ignore[type-arg]  # noqa: N801
    """Days (fractional) since 1970-01-01 UTC."""

    type = sa.Float()
    inherit_cache = True


@compiles(epoch_days, "sqlite")
def _days_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(julianday({compiler.process(list(element.clauses)[0], **kw)}) - {UNIX_JULIAN})"


@compiles(epoch_days, "postgresql")
def _days_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(EXTRACT(EPOCH FROM {compiler.process(list(element.clauses)[0], **kw)}) / 86400.0)"


class month_of_days(FunctionElement):  # type: ignore[type-arg]  # noqa: N801
    """The UTC calendar month (year × 12 + month − 1) of a moment given in epoch days."""

    type = sa.Integer()
    inherit_cache = True


@compiles(month_of_days, "sqlite")
def _month_days_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    d = f"(({compiler.process(list(element.clauses)[0], **kw)}) + {UNIX_JULIAN})"
    return f"(CAST(strftime('%Y', {d}) AS INTEGER) * 12 + CAST(strftime('%m', {d}) AS INTEGER) - 1)"


@compiles(month_of_days, "postgresql")
def _month_days_pg(element: Any, compiler: Any, **kw: Any) -> str:
    ts = f"(to_timestamp(({compiler.process(list(element.clauses)[0], **kw)}) * 86400.0) AT TIME ZONE 'UTC')"
    return f"(CAST(EXTRACT(YEAR FROM {ts}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {ts}) AS INTEGER) - 1)"


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
