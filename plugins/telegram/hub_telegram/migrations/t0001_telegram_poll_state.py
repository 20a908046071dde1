"""telegram_poll_state: where long polling of the Bot API stopped

Revision ID: telegram_0001
Revises: (the first of the telegram branch; needs the core at 0005)
Create Date: 2026-12-07 00:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "telegram_0001"
down_revision = None
branch_labels = ("telegram",)
depends_on = "0005"


def upgrade() -> None:
    op.create_table(
        "telegram_poll_state",
        sa.Column("bot_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bot_id"),
    )


def downgrade() -> None:
    op.drop_table("telegram_poll_state")
