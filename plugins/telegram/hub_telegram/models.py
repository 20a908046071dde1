"""The package's one table: where long polling stopped, so a restart neither loses nor repeats updates."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class TelegramPollState(SQLModel, table=True):
    """The next update id to ask getUpdates for, per bot (the number before the token's colon)."""

    __tablename__ = "telegram_poll_state"

    bot_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    next_offset: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
