"""meetings: meeting types, hosts' availability, meetings and their reminders

The meetings channel's tables, in its own branch (hub.migration_steps: a database the core's chain
built before keeps its tables). The no-overlap guarantee (an exclusion constraint on PostgreSQL,
triggers on SQLite) is made with the meeting table.

Revision ID: meetings_0001
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

revision = 'meetings_0001'
down_revision = None
branch_labels = ('meetings',)
depends_on = '0001'


def upgrade() -> None:
    if not has_table('meeting_availability'):  # created by core revision 0002 on databases older than this branch
        op.create_table('meeting_availability',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('start_minute', sa.Integer(), nullable=False),
        sa.Column('end_minute', sa.Integer(), nullable=False),
        sa.CheckConstraint('start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute', name='ck_meeting_availability_span'),
        sa.CheckConstraint('weekday BETWEEN 0 AND 6', name='ck_meeting_availability_weekday'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('meeting_availability', schema=None) as batch_op:
            batch_op.create_index('ix_meeting_availability_user', ['user_id', 'weekday'], unique=False)

    if not has_table('meeting_availability_exception'):  # created by core revision 0002 on databases older than this branch
        op.create_table('meeting_availability_exception',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('start_minute', sa.Integer(), nullable=True),
        sa.Column('end_minute', sa.Integer(), nullable=True),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('meeting_availability_exception', schema=None) as batch_op:
            batch_op.create_index('ix_meeting_exception_user_day', ['user_id', 'day'], unique=False)

    if not has_table('meeting_host_schedule'):  # created by core revision 0002 on databases older than this branch
        op.create_table('meeting_host_schedule',
        sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('time_zone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('user_id')
        )

    if not has_table('meeting_type'):  # created by core revision 0002 on databases older than this branch
        op.create_table('meeting_type',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('slug', sa.String(length=80), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('owner_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('team_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column('host_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('duration_minutes', sa.Integer(), nullable=False),
        sa.Column('buffer_before_minutes', sa.Integer(), nullable=False),
        sa.Column('buffer_after_minutes', sa.Integer(), nullable=False),
        sa.Column('min_notice_minutes', sa.Integer(), nullable=False),
        sa.Column('horizon_days', sa.Integer(), nullable=False),
        sa.Column('slot_step_minutes', sa.Integer(), nullable=False),
        sa.Column('location_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('location', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('reminder_offsets', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('reminder_channels', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['owner_user_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('slug')
        )
        with op.batch_alter_table('meeting_type', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_meeting_type_owner_user_id'), ['owner_user_id'], unique=False)

    if not has_table('meeting'):  # created by core revision 0002 on databases older than this branch
        op.create_table('meeting',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('uid', sa.String(length=200), nullable=False),
        sa.Column('meeting_type_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('host_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('starts_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ends_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('blocked_from', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('blocked_until', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column('notes', sa.Text(), server_default='', nullable=False),
        sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('visitor_time_zone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('location', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('booked_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('cancelled_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['booked_by_user_id'], ['user_account.id'], ),
        sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
        sa.ForeignKeyConstraint(['host_id'], ['user_account.id'], ),
        sa.ForeignKeyConstraint(['meeting_type_id'], ['meeting_type.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uid')
        )
        with op.batch_alter_table('meeting', schema=None) as batch_op:
            batch_op.create_index('ix_meeting_contact', ['contact_id', 'starts_at'], unique=False)
            batch_op.create_index('ix_meeting_host_time', ['host_id', 'blocked_from', 'blocked_until'], unique=False)
            batch_op.create_index('ix_meeting_status_start', ['status', 'starts_at'], unique=False)

        # No two active meetings of one host overlap, whatever the code does (50 concurrent bookings of one slot).
        if op.get_bind().dialect.name == "postgresql":
            op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            op.execute("ALTER TABLE meeting ADD CONSTRAINT ex_meeting_host_no_overlap EXCLUDE USING gist "
                       "(host_id WITH =, tstzrange(blocked_from, blocked_until, '[)') WITH &&) "
                       "WHERE (status <> 'cancelled')")
        else:
            overlap = ("SELECT RAISE(ABORT, 'ex_meeting_host_no_overlap') WHERE EXISTS (SELECT 1 FROM meeting m "
                       "WHERE m.host_id = NEW.host_id AND m.status <> 'cancelled' {extra}"
                       "AND m.blocked_from < NEW.blocked_until AND m.blocked_until > NEW.blocked_from)")
            op.execute("CREATE TRIGGER IF NOT EXISTS tr_meeting_no_overlap_insert BEFORE INSERT ON meeting "
                       "WHEN NEW.status <> 'cancelled' BEGIN " + overlap.format(extra="") + "; END")
            op.execute("CREATE TRIGGER IF NOT EXISTS tr_meeting_no_overlap_update BEFORE UPDATE ON meeting "
                       "WHEN NEW.status <> 'cancelled' BEGIN " + overlap.format(extra="AND m.id <> NEW.id ") + "; END")

    if not has_table('meeting_reminder'):  # created by core revision 0002 on databases older than this branch
        op.create_table('meeting_reminder',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('meeting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('offset_minutes', sa.Integer(), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('due_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('delivery_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('meeting_id', 'channel', 'offset_minutes', 'sequence', name='uq_meeting_reminder')
        )
        with op.batch_alter_table('meeting_reminder', schema=None) as batch_op:
            batch_op.create_index('ix_meeting_reminder_due', ['status', 'due_at'], unique=False)


def downgrade() -> None:
    drop_tables('meeting_reminder', 'meeting', 'meeting_type', 'meeting_host_schedule', 'meeting_availability_exception', 'meeting_availability')
