"""surveys: surveys, invitations and responses

The surveys extension's tables, in its own branch (hub.migration_steps: a database the core's chain
built before keeps its tables).

Revision ID: surveys_0001
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

revision = 'surveys_0001'
down_revision = None
branch_labels = ('surveys',)
depends_on = '0001'


def upgrade() -> None:
    if not has_table('survey'):  # created by core revision 0002 on databases older than this branch
        op.create_table('survey',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('title', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('intro', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('thanks', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('questions', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('trigger_kind', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column('delay_minutes', sa.Integer(), nullable=False),
        sa.Column('channels', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('reminder_days', sa.Integer(), nullable=True),
        sa.Column('expiry_days', sa.Integer(), nullable=False),
        sa.Column('cooldown_days', sa.Integer(), nullable=False),
        sa.Column('detractor_nps_max', sa.Integer(), nullable=False),
        sa.Column('detractor_csat_max', sa.Integer(), nullable=False),
        sa.Column('follow_up_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('closes_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['follow_up_user_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('survey', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_survey_status'), ['status'], unique=False)
            batch_op.create_index(batch_op.f('ix_survey_trigger_kind'), ['trigger_kind'], unique=False)

    if not has_table('survey_invitation'):  # created by core revision 0002 on databases older than this branch
        op.create_table('survey_invitation',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('survey_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('send_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sent_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('remind_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('reminded_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('expires_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column('skip_reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column('source_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
        sa.ForeignKeyConstraint(['source_event_id'], ['timeline_event.id'], ),
        sa.ForeignKeyConstraint(['survey_id'], ['survey.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('nonce'),
        sa.UniqueConstraint('survey_id', 'contact_id', 'cause', name='uq_survey_invitation_cause')
        )
        with op.batch_alter_table('survey_invitation', schema=None) as batch_op:
            batch_op.create_index('ix_survey_invitation_contact', ['contact_id', 'sent_at'], unique=False)
            batch_op.create_index('ix_survey_invitation_due', ['status', 'send_at'], unique=False)
            batch_op.create_index('ix_survey_invitation_remind', ['status', 'remind_at'], unique=False)
            batch_op.create_index(batch_op.f('ix_survey_invitation_survey_id'), ['survey_id'], unique=False)

    if not has_table('survey_response'):  # created by core revision 0002 on databases older than this branch
        op.create_table('survey_response',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('invitation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('survey_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
        sa.Column('completed', sa.Boolean(), nullable=False),
        sa.Column('nps', sa.Integer(), nullable=True),
        sa.Column('csat', sa.Integer(), nullable=True),
        sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column('edits', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('follow_up_task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('submitted_at', hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
        sa.ForeignKeyConstraint(['event_id'], ['timeline_event.id'], ),
        sa.ForeignKeyConstraint(['follow_up_task_id'], ['task.id'], ),
        sa.ForeignKeyConstraint(['invitation_id'], ['survey_invitation.id'], ),
        sa.ForeignKeyConstraint(['survey_id'], ['survey.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('invitation_id')
        )
        with op.batch_alter_table('survey_response', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_survey_response_contact_id'), ['contact_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_survey_response_submitted_at'), ['submitted_at'], unique=False)
            batch_op.create_index(batch_op.f('ix_survey_response_survey_id'), ['survey_id'], unique=False)


def downgrade() -> None:
    drop_tables('survey_response', 'survey_invitation', 'survey')
