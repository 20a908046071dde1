"""forms: form.locale: now in channels/forms/migrations/forms_0001_forms.py

This revision created form.locale until 2026-12-07; the tables belong to their plug-in's branch now
(channels/forms/migrations/forms_0001_forms.py), which creates them on a new database and keeps them
on one this revision built (hub.migration_steps). The revision stays, empty, so databases that
passed it stay on the chain.

Revision ID: 0005
Revises: 0004 (written beside the accounts migrations, chained after them)
Create Date: 2026-12-06 21:40:00
"""
from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
