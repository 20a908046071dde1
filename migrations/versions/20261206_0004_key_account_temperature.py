"""key accounts: temperature snapshots and cooling episodes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 21:30:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel
import hub.models
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
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
    with op.batch_alter_table('account_cooling', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_cooling_account_id'))
    op.drop_table('account_cooling')
    with op.batch_alter_table('account_temperature', schema=None) as batch_op:
        batch_op.drop_index('ix_account_temperature_time')
    op.drop_table('account_temperature')
