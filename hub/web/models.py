"""Tables of the agent workspace: login attempts (the rate limit) and each user's recent contacts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, UTCDateTime, _id, _time


class LoginAttempt(SQLModel, table=True):
    """One sign-in try; kept in the store so the limit holds across every API process."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        sa.Index("ix_login_attempt_email_time", "email", "occurred_at"),
        sa.Index("ix_login_attempt_address_time", "address", "occurred_at"),
    )

    id: int | None = _id()
    # The folded address that was typed, whether or not such a user exists.
    email: str = Field(max_length=320)
    address: str = Field(default="", max_length=64)
    succeeded: bool = False
    occurred_at: datetime = _time()


class RecentContact(SQLModel, table=True):
    """When a user last opened a contact, for the "recently opened" list."""

    __tablename__ = "recent_contact"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "contact_id", name="uq_recent_contact_user_contact"),
        sa.Index("ix_recent_contact_user_time", "user_id", "opened_at"),
    )

    id: int | None = _id()
    user_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    # No foreign key on purpose: a merge moves every row that points at a contact, and two rows of one
    # user would then collide; the list shows only contacts that still exist unmerged.
    contact_id: int = Field(sa_column=sa.Column(BigId, nullable=False))
    opened_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
