"""webhooks: endpoints, messages, deliveries and their attempts

Revision ID: w001
Revises:
Create Date: 2026-12-07 00:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel
import hub.models
from sqlalchemy.dialects import postgresql

revision = 'w001'
down_revision = None
branch_labels = ('webhooks',)
depends_on = '0005'

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
Time = hub.models.UTCDateTime(timezone=True)
Str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table('webhook_endpoint',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('url', Str(length=2000), nullable=False),
    sa.Column('description', Str(length=500), nullable=False),
    sa.Column('event_types', JSON, nullable=False),
    sa.Column('status', Str(length=20), nullable=False),
    sa.Column('ordered', sa.Boolean(), nullable=False),
    sa.Column('secret', Str(length=200), nullable=False),
    sa.Column('previous_secret', Str(length=200), nullable=True),
    sa.Column('previous_secret_until', Time, nullable=True),
    sa.Column('failing_since', Time, nullable=True),
    sa.Column('disabled_reason', Str(length=500), nullable=True),
    sa.Column('created_by', BigId, nullable=True),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('updated_at', Time, nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('webhook_message',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('message_id', Str(length=64), nullable=False),
    sa.Column('type', Str(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('subject', Str(length=200), nullable=False),
    sa.Column('contact_id', BigId, nullable=True),
    sa.Column('payload', JSON, nullable=False),
    sa.Column('created_at', Time, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('webhook_message', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_message_time', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_message_contact_id'), ['contact_id'], unique=False)
    op.create_table('webhook_delivery',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('endpoint_id', BigId, nullable=False),
    sa.Column('message_id', BigId, nullable=False),
    sa.Column('subject', Str(length=200), nullable=False),
    sa.Column('status', Str(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', Time, nullable=False),
    sa.Column('give_up_at', Time, nullable=False),
    sa.Column('claimed_by', Str(length=200), nullable=True),
    sa.Column('claimed_until', Time, nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', Str(length=500), nullable=True),
    sa.Column('last_latency_ms', sa.Integer(), nullable=True),
    sa.Column('delivered_at', Time, nullable=True),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('updated_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['webhook_message.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint_id', 'message_id', name='uq_webhook_delivery_endpoint_message')
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_webhook_delivery_endpoint', ['endpoint_id', 'id'], unique=False)
        batch_op.create_index('ix_webhook_delivery_subject', ['endpoint_id', 'subject', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_delivery_message_id'), ['message_id'], unique=False)
    op.create_table('webhook_attempt',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('delivery_id', BigId, nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', Time, nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('response', sa.Text(), nullable=True),
    sa.Column('error', Str(length=500), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_delivery.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_attempt_delivery', ['delivery_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_table('webhook_attempt')
    op.drop_table('webhook_delivery')
    op.drop_table('webhook_message')
    op.drop_table('webhook_endpoint')
