"""account: the precomputed figures segments select by (temperature, profit and its band)

Revision ID: 0006_accounts
Revises: 0005
Create Date: 2026-12-07 00:15:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.models

revision = "0006_accounts"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("temperature", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("profit", sa.Numeric(16, 2), nullable=True))
        batch_op.add_column(sa.Column("profit_band", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("figures_at", hub.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_account_profit_band", ["profit_band"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index("ix_account_profit_band")
        batch_op.drop_column("figures_at")
        batch_op.drop_column("profit_band")
        batch_op.drop_column("profit")
        batch_op.drop_column("temperature")
