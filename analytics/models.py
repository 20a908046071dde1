"""The precomputed figures the dashboards read: RFM scores per owner, the cohort table, monthly
customer movements, channel volumes, and a record of each recompute (with the value model's fit)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, UTCDateTime, _id, _json, _time

Money = sa.Numeric(16, 2)


class RfmScore(SQLModel, table=True):
    """One customer's scores: a contact, or an account (its members' orders together).

    Quintile scores are 1–5 (5 best); `cell` is the RFM grid cell (analytics.rfm.CELLS). The
    predicted columns are filled by the value model after the scores (NULL until it has run)."""

    __tablename__ = "analytics_rfm_score"
    __table_args__ = (sa.Index("ix_analytics_rfm_score_cell", "owner_kind", "cell"),)

    owner_kind: str = Field(sa_column=sa.Column(sa.String(10), primary_key=True))  # "contact" | "account"
    owner_id: int = Field(sa_column=sa.Column(BigId, primary_key=True, autoincrement=False))
    first_order_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_order_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    orders: int
    revenue: Decimal = Field(sa_column=sa.Column(Money, nullable=False))
    r: int
    f: int
    m: int
    cell: str = Field(max_length=30)
    expected_orders: float | None = Field(default=None, sa_column=sa.Column(sa.Float, nullable=True))
    p_alive: float | None = Field(default=None, sa_column=sa.Column(sa.Float, nullable=True))
    predicted_value: Decimal | None = Field(default=None, sa_column=sa.Column(Money, nullable=True))
    computed_at: datetime = _time()


class CohortCell(SQLModel, table=True):
    """Customers of one first-order month (`cohort`, months since 0000-01 UTC) still ordering
    `offset` months later, with their orders and revenue in that month."""

    __tablename__ = "analytics_cohort"

    cohort: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    offset: int = Field(sa_column=sa.Column("month_offset", sa.Integer, primary_key=True, autoincrement=False))
    customers: int
    orders: int
    revenue: Decimal = Field(sa_column=sa.Column(Money, nullable=False))


class MonthFigure(SQLModel, table=True):
    """One calendar month (UTC) of the customer base: who bought, who was new, who came back, who lapsed."""

    __tablename__ = "analytics_month"

    month: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    customers: int = 0  # ordered this month
    new_customers: int = 0  # first order ever this month
    repeat_customers: int = 0  # ordered this month and had ordered before
    reactivated: int = 0  # ordered after a gap longer than churn_days
    churned: int = 0  # their last order's churn_days ran out this month with no new order
    orders: int = 0
    revenue: Decimal = Field(default=Decimal(0), sa_column=sa.Column(Money, nullable=False))


class ChannelMonth(SQLModel, table=True):
    """Timeline events per month, channel and direction, and per acting user (0: nobody)."""

    __tablename__ = "analytics_channel_month"

    month: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    channel: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    direction: str = Field(sa_column=sa.Column(sa.String(10), primary_key=True))
    user_id: int = Field(sa_column=sa.Column(BigId, primary_key=True, autoincrement=False))
    events: int


class ResponseMonth(SQLModel, table=True):
    """Replies per month and channel: inbound email or SMS answered by an agent's next message on that
    channel, and the seconds it took (summed; the page divides)."""

    __tablename__ = "analytics_response_month"

    month: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    channel: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    replies: int
    seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class ComputeRun(SQLModel, table=True):
    """One recompute by the scheduler (or `hub`'s demo): when, how long, and what it found."""

    __tablename__ = "analytics_run"

    id: int | None = _id()
    kind: str = Field(max_length=20)  # "scores" | "value"
    started_at: datetime = _time(index=True)
    seconds: float = 0.0
    rows: int = 0
    details: dict[str, Any] = _json(dict)
