"""keyaccounts: temperatures due for a recompute, per-account cooling thresholds

Revision ID: ka_0001
Revises:
Create Date: 2026-12-07 00:10:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import hub.models

revision = 'ka_0001'
down_revision = None
branch_labels = ('keyaccounts',)
depends_on = '0005'

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('account_temperature_due',
    sa.Column('account_id', BigId, autoincrement=False, nullable=False),
    sa.Column('marked_at', hub.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('account_threshold',
    sa.Column('account_id', BigId, autoincrement=False, nullable=False),
    sa.Column('cold_below', sa.Integer(), nullable=True),
    sa.Column('sharp_drop', sa.Integer(), nullable=True),
    sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id')
    )


def downgrade() -> None:
    op.drop_table('account_threshold')
    op.drop_table('account_temperature_due')
