"""key accounts: temperature snapshots and cooling episodes: now in keyaccounts/migrations/ka_0003_temperature_and_cooling.py

This revision created temperature snapshots and cooling episodes until 2026-12-07; the tables belong
to their plug-in's branch now (keyaccounts/migrations/ka_0003_temperature_and_cooling.py), which
creates them on a new database and keeps them on one this revision built (hub.migration_steps). The
revision stays, empty, so databases that passed it stay on the chain.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 21:30:00
"""
from __future__ import annotations

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
