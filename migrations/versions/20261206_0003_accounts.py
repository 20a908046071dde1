"""accounts: companies and households grouping contacts

An account groups contacts (a company, a household) and holds what its key-account manager knows;
`contact.account_id` links a contact to one (SET NULL when the account goes: the contact stays).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 21:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel
import hub.models
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('account',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('search_name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('owner_id', BigId, nullable=True),
    sa.Column('deputy_id', BigId, nullable=True),
    sa.Column('is_key', sa.Boolean(), nullable=False),
    sa.Column('expected_profit', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('cooperation_until', sa.Date(), nullable=True),
    sa.Column('fallback_plan', sa.Text(), nullable=True),
    sa.Column('interaction_notes', sa.Text(), nullable=True),
    sa.Column('created_at', hub.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deputy_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_deputy_id'), ['deputy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_is_key'), ['is_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_search_name'), ['search_name'], unique=False)

    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', BigId, nullable=True))
        batch_op.create_index(batch_op.f('ix_contact_account_id'), ['account_id'], unique=False)
        batch_op.create_foreign_key('fk_contact_account_id_account', 'account', ['account_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_constraint('fk_contact_account_id_account', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_contact_account_id'))
        batch_op.drop_column('account_id')

    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_search_name'))
        batch_op.drop_index(batch_op.f('ix_account_owner_id'))
        batch_op.drop_index(batch_op.f('ix_account_is_key'))
        batch_op.drop_index(batch_op.f('ix_account_deputy_id'))
    op.drop_table('account')
