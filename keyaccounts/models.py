"""The tables of key-account management: temperature snapshots and cooling episodes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, UTCDateTime, _id, _json, _time


class TemperatureSnapshot(SQLModel, table=True):
    """One computed temperature of a key account: the score, each signal's part, and why."""

    __tablename__ = "account_temperature"
    __table_args__ = (sa.Index("ix_account_temperature_time", "account_id", "computed_at"),)

    id: int | None = _id()
    account_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("account.id", ondelete="CASCADE"),
                                                nullable=False))
    computed_at: datetime = _time()
    score: int
    signals: dict[str, Any] = _json(dict)
    explanation: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, default=""))


class CoolingEpisode(SQLModel, table=True):
    """A key account going cold, from the alert that opened it to the recovery that ends it.

    `open_account_id` is the account's id while the episode is open and NULL after: its unique
    constraint lets each account have one open episode at most, on both stores (NULLs never clash),
    so a repeated or concurrent job run cannot open a second one."""

    __tablename__ = "account_cooling"

    id: int | None = _id()
    account_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("account.id", ondelete="CASCADE"),
                                                nullable=False, index=True))
    open_account_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True, unique=True))
    reason: str = Field(max_length=40)
    detail: dict[str, Any] = _json(dict)
    started_at: datetime = _time()
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    task_id: int | None = Field(default=None, sa_column=sa.Column(BigId, sa.ForeignKey("task.id", ondelete="SET NULL"),
                                                                  nullable=True))
    event_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True))



def _account_key() -> Any:
    return Field(sa_column=sa.Column(BigId, sa.ForeignKey("account.id", ondelete="CASCADE"), primary_key=True,
                                     autoincrement=False))


class TemperatureDue(SQLModel, table=True):
    """A key account whose temperature is out of date: an event arrived since its last snapshot.

    The trigger on new events writes this row in the event's own transaction (one row per account,
    however many events: insert-or-ignore on the key), and the job `keyaccounts.recompute_due`
    takes the temperature soon after and deletes the row, unless another event marked it again
    meanwhile (`version` moved on)."""

    __tablename__ = "account_temperature_due"

    account_id: int = _account_key()
    marked_at: datetime = _time()
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, default=1))


class AccountThreshold(SQLModel, table=True):
    """A key account's own cooling thresholds, where the settings' do not fit it (NULL: the setting's)."""

    __tablename__ = "account_threshold"

    account_id: int = _account_key()
    cold_below: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, nullable=True))
    sharp_drop: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, nullable=True))
    updated_at: datetime = _time()


class StoredFigure(SQLModel, table=True):
    """An owner's profit over the configured period as the figures job last computed it, with its
    place in the ranking: what the Key accounts page reads for the default period instead of summing
    every account's timeline per request. Owners are accounts and contacts without one (`owner_kind`
    "account" or "contact"); the job replaces every row in one transaction, so the rows are one
    ranking of one moment (`computed_at`)."""

    __tablename__ = "account_figure"

    owner_kind: str = Field(sa_column=sa.Column(sa.String(10), primary_key=True))
    owner_id: int = Field(sa_column=sa.Column(BigId, primary_key=True, autoincrement=False))
    period_days: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    rank: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    band: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    profit: Decimal = Field(sa_column=sa.Column(sa.Numeric(16, 2), nullable=False))
    margin: Decimal = Field(sa_column=sa.Column(sa.Numeric(16, 2), nullable=False))
    cost_to_serve: Decimal = Field(sa_column=sa.Column(sa.Numeric(16, 2), nullable=False))
    revenue: Decimal = Field(sa_column=sa.Column(sa.Numeric(16, 2), nullable=False))
    minutes: Decimal = Field(sa_column=sa.Column(sa.Numeric(14, 1), nullable=False))
    computed_at: datetime = _time()
