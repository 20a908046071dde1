"""analytics: precomputed RFM scores, cohorts, monthly movements, channel volumes and recompute runs

Revision ID: a001
Revises: (none: the analytics branch)
Create Date: 2026-12-07 00:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models

revision = "a001"
down_revision = None
branch_labels = ("analytics",)
# None rather than "0005": the tables hold no foreign key to the core's, and with depends_on set Alembic
# keeps only this branch's head in alembic_version (0005 is implied), so hub.migrate's comparison of
# head sets ("0005,a001" against "a001") would call every upgraded database behind.
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "analytics_rfm_score",
        sa.Column("owner_kind", sa.String(length=10), nullable=False),
        sa.Column("owner_id", BigId, autoincrement=False, nullable=False),
        sa.Column("first_order_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_order_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(16, 2), nullable=False),
        sa.Column("r", sa.Integer(), nullable=False),
        sa.Column("f", sa.Integer(), nullable=False),
        sa.Column("m", sa.Integer(), nullable=False),
        sa.Column("cell", sa.String(length=30), nullable=False),
        sa.Column("expected_orders", sa.Float(), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("predicted_value", sa.Numeric(16, 2), nullable=True),
        sa.Column("computed_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner_kind", "owner_id"),
    )
    op.create_index("ix_analytics_rfm_score_cell", "analytics_rfm_score", ["owner_kind", "cell"])
    op.create_table(
        "analytics_cohort",
        sa.Column("cohort", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month_offset", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(16, 2), nullable=False),
        sa.PrimaryKeyConstraint("cohort", "month_offset"),
    )
    op.create_table(
        "analytics_month",
        sa.Column("month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("new_customers", sa.Integer(), nullable=False),
        sa.Column("repeat_customers", sa.Integer(), nullable=False),
        sa.Column("reactivated", sa.Integer(), nullable=False),
        sa.Column("churned", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(16, 2), nullable=False),
        sa.PrimaryKeyConstraint("month"),
    )
    op.create_table(
        "analytics_channel_month",
        sa.Column("month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("user_id", BigId, autoincrement=False, nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "channel", "direction", "user_id"),
    )
    op.create_table(
        "analytics_response_month",
        sa.Column("month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("month", "channel"),
    )
    op.create_table(
        "analytics_run",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("started_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("details", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_analytics_run_started_at", "analytics_run", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_analytics_run_started_at", table_name="analytics_run")
    op.drop_table("analytics_run")
    op.drop_table("analytics_response_month")
    op.drop_table("analytics_channel_month")
    op.drop_table("analytics_month")
    op.drop_table("analytics_cohort")
    op.drop_index("ix_analytics_rfm_score_cell", table_name="analytics_rfm_score")
    op.drop_table("analytics_rfm_score")
