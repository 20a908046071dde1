"""delivery.campaign_run_id dropped: the outbox does not know campaigns

A campaign's deliveries are named by its own link table, campaign_message (run, step, contact →
delivery), which every campaign delivery has had since revision 0002; the campaigns plug-in counts,
holds and cancels its runs' deliveries through it (campaigns.models.run_deliveries). The core's
delivery row no longer carries a plug-in's column.

Revision ID: 0008_no_campaign_run
Revises: 0007_delivery_indexes
Create Date: 2026-12-07 07:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_no_campaign_run"
down_revision = "0007_delivery_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_campaign_run_id")
        batch_op.drop_column("campaign_run_id")


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch_op.create_index("ix_delivery_campaign_run_id", ["campaign_run_id"], unique=False)
    # Filled again from the link table the campaigns plug-in keeps, when it is installed.
    bind = op.get_bind()
    if sa.inspect(bind).has_table("campaign_message"):
        op.execute("UPDATE delivery SET campaign_run_id = (SELECT m.run_id FROM campaign_message m "
                   "WHERE m.delivery_id = delivery.id) "
                   "WHERE id IN (SELECT delivery_id FROM campaign_message)")
