"""forms: forms, their submissions and the per-address hit log

The forms channel's tables, in its own branch (hub.migration_steps: a database the core's chain
built before keeps its tables and gains what it lacks).

Revision ID: forms_0001
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

revision = 'forms_0001'
down_revision = None
branch_labels = ('forms',)
depends_on = '0001'


def upgrade() -> None:
    if not has_table('form'):  # created by core revision 0002 on databases older than this branch
        op.create_table('form',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('submit_label', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('thank_you', sa.Text(), server_default='', nullable=False),
        sa.Column('redirect_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column('allowed_origins', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('task_assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('task_title', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['task_assignee_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key')
        )

    if not has_table('form_hit'):  # created by core revision 0002 on databases older than this branch
        op.create_table('form_hit',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('occurred_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('form_hit', schema=None) as batch_op:
            batch_op.create_index('ix_form_hit_address_time', ['address', 'occurred_at'], unique=False)
            batch_op.create_index(batch_op.f('ix_form_hit_occurred_at'), ['occurred_at'], unique=False)

    if not has_table('form_submission'):  # created by core revision 0002 on databases older than this branch
        op.create_table('form_submission',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('form_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('values', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('consents', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('source_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
        sa.ForeignKeyConstraint(['event_id'], ['timeline_event.id'], ),
        sa.ForeignKeyConstraint(['form_id'], ['form.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['task_id'], ['task.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('form_id', 'client_id', name='uq_form_submission_client')
        )
        with op.batch_alter_table('form_submission', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_form_submission_contact_id'), ['contact_id'], unique=False)
            batch_op.create_index('ix_form_submission_form_time', ['form_id', 'created_at', 'id'], unique=False)
    # form.locale (core revision 0005 before this branch)
    add_missing_columns('form', sa.Column('locale', sa.String(length=10), nullable=True))


def downgrade() -> None:
    drop_tables('form_submission', 'form_hit', 'form')
