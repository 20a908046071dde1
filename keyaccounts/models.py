"""The tables of key-account management: temperature snapshots and cooling episodes."""

from __future__ import annotations

from datetime import datetime
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

