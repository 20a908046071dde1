"""keyaccounts: the figures job's ranking kept per owner (account_figure)

Revision ID: ka_0002
Revises: ka_0001
Create Date: 2026-12-07 03:30:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import hub.models

revision = 'ka_0002'
down_revision = 'ka_0001'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('account_figure',
    sa.Column('owner_kind', sa.String(length=10), nullable=False),
    sa.Column('owner_id', BigId, autoincrement=False, nullable=False),
    sa.Column('period_days', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('band', sa.String(length=20), nullable=False),
    sa.Column('profit', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('margin', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('cost_to_serve', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('revenue', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('minutes', sa.Numeric(precision=14, scale=1), nullable=False),
    sa.Column('computed_at', hub.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('owner_kind', 'owner_id')
    )


def downgrade() -> None:
    op.drop_table('account_figure')
