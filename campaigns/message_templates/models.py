"""The message template table: one channel's message (its parts: subject, HTML, text for email; text for SMS
and Telegram), per language."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub import clock
from hub.models import BigId, JSONType, UTCDateTime


class MessageTemplate(SQLModel, table=True):
    """`variants` is {locale: {part: source}} with the channel's parts (hub.channel.Channel.parts), checked by
    `rendering.validate_variants` before it is stored; `default_locale` names one of its keys."""

    __tablename__ = "message_template"
    __table_args__ = (sa.Index("ix_message_template_channel", "channel", "name"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    channel: str = Field(max_length=20)
    variants: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    default_locale: str = Field(default="ru", max_length=10)
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False))
