"""sending rules: the do-not-contact list, shared rate buckets, Delivery.rules

The hashed do-not-contact list, shared rate buckets, and Delivery.rules. Until 2026-12-07 this
revision also created the tables of the forms and meetings channels and of the campaigns and surveys
extensions; each now creates them in a branch of its own (channels/forms/migrations,
channels/meetings/migrations, campaigns/migrations, campaigns/surveys/migrations), which finds them
on databases this revision built before (hub.migration_steps).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:04:39.099623
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel
import hub.models
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_bucket',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )

    op.create_table('suppression_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('value_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'value_hash', name='uq_suppression_entry_kind_hash')
    )

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rules', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True))
        batch_op.create_index('ix_delivery_contact_sent', ['contact_id', 'purpose', 'sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_contact_sent')
        batch_op.drop_column('rules')

    op.drop_table('suppression_entry')
    op.drop_table('rate_bucket')
