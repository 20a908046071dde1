"""campaigns: A/B test settings, recipients' variants, campaign_variant: now in campaigns/migrations/campaigns_0001_campaigns.py

This revision created A/B test settings, recipients' variants, campaign_variant until 2026-12-07;
the tables belong to their plug-in's branch now (campaigns/migrations/campaigns_0001_campaigns.py),
which creates them on a new database and keeps them on one this revision built
(hub.migration_steps). The revision stays, empty, so databases that passed it stay on the chain.

Revision ID: 0006
Revises: 0005 (the lead re-chains it at merge if another 0006 lands first)
Create Date: 2026-12-06 23:55:00
"""
from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
