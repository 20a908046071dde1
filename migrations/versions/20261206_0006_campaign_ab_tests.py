"""campaign A/B tests: a campaign's test settings and outcome, each recipient's variant, the variants

Revision ID: 0006
Revises: 0005 (the lead re-chains it at merge if another 0006 lands first)
Create Date: 2026-12-06 23:55:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaign_variant",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("label", sa.String(length=1), nullable=False),
        sa.Column("template_id", BIG_ID, nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("send_time", sa.String(length=5), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "label", name="uq_campaign_variant_label"),
    )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ab_share_percent", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ab_metric", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("ab_wait_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ab_seed", BIG_ID, nullable=True))
        batch_op.add_column(sa.Column("ab_decide_at", hub.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ab_outcome", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("ab_p_value", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("ab_winner", sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column("ab_winner_by", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("ab_decided_at", hub.models.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("campaign_recipient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ab_role", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("variant", sa.String(length=1), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_recipient", schema=None) as batch_op:
        batch_op.drop_column("variant")
        batch_op.drop_column("ab_role")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        for column in ("ab_decided_at", "ab_winner_by", "ab_winner", "ab_p_value", "ab_outcome", "ab_decide_at", "ab_seed",
                       "ab_wait_minutes", "ab_metric", "ab_share_percent"):
            batch_op.drop_column(column)
    op.drop_table("campaign_variant")
