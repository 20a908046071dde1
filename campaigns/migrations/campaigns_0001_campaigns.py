"""campaigns: segments, message templates, campaigns, their runs, recipients, messages and variants

The campaigns extension's tables, in its own branch (hub.migration_steps: a database the core's
chain built before keeps its tables and gains what it lacks).

Revision ID: campaigns_0001
Revises:
Create Date: 2026-12-07 07:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel
import hub.models
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

from hub.migration_steps import add_missing_columns, drop_tables, has_table

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

revision = 'campaigns_0001'
down_revision = None
branch_labels = ('campaigns',)
depends_on = '0001'


def upgrade() -> None:
    if not has_table('segment'):  # created by core revision 0002 on databases older than this branch
        op.create_table('segment',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name')
        )

    if not has_table('message_template'):  # created by core revision 0002 on databases older than this branch
        op.create_table('message_template',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('variants', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('default_locale', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name')
        )
        with op.batch_alter_table('message_template', schema=None) as batch_op:
            batch_op.create_index('ix_message_template_channel', ['channel', 'name'], unique=False)

    if not has_table('campaign'):  # created by core revision 0002 on databases older than this branch
        op.create_table('campaign',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('segment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('schedule_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('send_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('cron', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column('time_zone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('trigger_kind', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column('trigger_delay_minutes', sa.Integer(), nullable=False),
        sa.Column('quiet_hours_start', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
        sa.Column('quiet_hours_end', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
        sa.Column('frequency_cap_max', sa.Integer(), nullable=True),
        sa.Column('frequency_cap_days', sa.Integer(), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('next_run_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_run_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('campaign', schema=None) as batch_op:
            batch_op.create_index('ix_campaign_due', ['status', 'next_run_at'], unique=False)
            batch_op.create_index(batch_op.f('ix_campaign_segment_id'), ['segment_id'], unique=False)
            batch_op.create_index('ix_campaign_trigger', ['status', 'trigger_kind'], unique=False)

    if not has_table('campaign_step'):  # created by core revision 0002 on databases older than this branch
        op.create_table('campaign_step',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('template_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('delay_minutes', sa.Integer(), nullable=False),
        sa.Column('skip_if_replied', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'position', name='uq_campaign_step_position')
        )

    if not has_table('campaign_run'):  # created by core revision 0002 on databases older than this branch
        op.create_table('campaign_run',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('run_key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('scheduled_for', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('trigger_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('started_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('materialised_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('finished_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('targeted', sa.Integer(), nullable=False),
        sa.Column('batches', sa.Integer(), nullable=False),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'run_key', name='uq_campaign_run_key')
        )
        with op.batch_alter_table('campaign_run', schema=None) as batch_op:
            batch_op.create_index('ix_campaign_run_due', ['status', 'scheduled_for'], unique=False)

    if not has_table('campaign_recipient'):  # created by core revision 0002 on databases older than this branch
        op.create_table('campaign_recipient',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('next_step_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['campaign_run.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id', 'contact_id', name='uq_campaign_recipient')
        )
        with op.batch_alter_table('campaign_recipient', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_campaign_recipient_contact_id'), ['contact_id'], unique=False)
            batch_op.create_index('ix_campaign_recipient_due', ['next_step_at'], unique=False)

    if not has_table('campaign_message'):  # created by core revision 0002 on databases older than this branch
        op.create_table('campaign_message',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('delivery_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id', 'step', 'contact_id', name='uq_campaign_message')
        )
        with op.batch_alter_table('campaign_message', schema=None) as batch_op:
            batch_op.create_index('ix_campaign_message_campaign', ['campaign_id', 'step'], unique=False)
            batch_op.create_index(batch_op.f('ix_campaign_message_delivery_id'), ['delivery_id'], unique=False)

    # A/B tests (core revision 0006 before this branch)
    if not has_table('campaign_variant'):
        op.create_table('campaign_variant',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('campaign_id', BIG_ID, nullable=False),
        sa.Column('label', sa.String(length=1), nullable=False),
        sa.Column('template_id', BIG_ID, nullable=True),
        sa.Column('subject', sa.String(length=300), nullable=True),
        sa.Column('send_time', sa.String(length=5), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'label', name='uq_campaign_variant_label'),
        )
    add_missing_columns('campaign',
        sa.Column('ab_share_percent', sa.Integer(), nullable=True),
        sa.Column('ab_metric', sa.String(length=10), nullable=True),
        sa.Column('ab_wait_minutes', sa.Integer(), nullable=True),
        sa.Column('ab_seed', BIG_ID, nullable=True),
        sa.Column('ab_decide_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('ab_outcome', sa.String(length=20), nullable=True),
        sa.Column('ab_p_value', sa.Float(), nullable=True),
        sa.Column('ab_winner', sa.String(length=1), nullable=True),
        sa.Column('ab_winner_by', sa.String(length=10), nullable=True),
        sa.Column('ab_decided_at', hub.models.UTCDateTime(timezone=True), nullable=True),
    )
    add_missing_columns('campaign_recipient',
        sa.Column('ab_role', sa.String(length=4), nullable=True),
        sa.Column('variant', sa.String(length=1), nullable=True),
    )


def downgrade() -> None:
    drop_tables('campaign_variant', 'campaign_message', 'campaign_recipient', 'campaign_run', 'campaign_step', 'campaign', 'message_template', 'segment')
