"""keyaccounts: temperature snapshots and cooling episodes, now in this branch

Core revision 0004 created these two tables until 2026-12-07; they belong here now. On a database
0004 built they are found and kept (hub.migration_steps).

Revision ID: ka_0003
Revises: ka_0002
Create Date: 2026-12-07 07:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel
import hub.models
from sqlalchemy.dialects import postgresql

from hub.migration_steps import drop_tables, has_table

revision = 'ka_0003'
down_revision = 'ka_0002'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    if not has_table('account_temperature'):
        op.create_table('account_temperature',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('account_id', BigId, nullable=False),
        sa.Column('computed_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('signals', JSON, nullable=False),
        sa.Column('explanation', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('account_temperature', schema=None) as batch_op:
            batch_op.create_index('ix_account_temperature_time', ['account_id', 'computed_at'], unique=False)
    if not has_table('account_cooling'):
        op.create_table('account_cooling',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('account_id', BigId, nullable=False),
        sa.Column('open_account_id', BigId, nullable=True),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('detail', JSON, nullable=False),
        sa.Column('started_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('task_id', BigId, nullable=True),
        sa.Column('event_id', BigId, nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('open_account_id')
        )
        with op.batch_alter_table('account_cooling', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_account_cooling_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    drop_tables('account_cooling', 'account_temperature')
