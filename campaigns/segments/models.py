"""The segment table: a named, saved filter over contacts (its definition is compiled on every use)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, JSONType, UTCDateTime
from hub import clock


class Segment(SQLModel, table=True):
    """A saved segment; `definition` is a `SegmentDefinition` as JSON (validated before it is stored)."""

    __tablename__ = "segment"

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    # Unique so that a marketer picking a segment by name in a campaign never sees two alike.
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False))
