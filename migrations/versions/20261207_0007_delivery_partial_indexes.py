"""delivery: partial indexes, each holding only the rows its queries look for

The outbox writes three versions of every row (queued, sending, sent). With the due index on
(status, send_after), the provider index on (channel, provider_id) and the frequency-cap index on
(contact_id, purpose, sent_at), every version got an entry in each of them; now a row has an entry
in the due index while queued, in the claimed index while sending, and in the provider and
frequency-cap indexes once sent. The reaper's and a stopping worker's scans of rows in flight get
an index of their own (they filtered on the due index's status before).

Revision ID: 0007_delivery_indexes
Revises: 0006_accounts
Create Date: 2026-12-07 06:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_delivery_indexes"
down_revision = "0006_accounts"
branch_labels = None
depends_on = None


def _where(condition: str) -> dict[str, object]:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    op.drop_index("ix_delivery_due", table_name="delivery")
    op.drop_index("ix_delivery_provider", table_name="delivery")
    op.drop_index("ix_delivery_contact_sent", table_name="delivery")
    op.create_index("ix_delivery_due", "delivery", ["channel", "send_after", "id"], **_where("status = 'queued'"))
    op.create_index("ix_delivery_claimed", "delivery", ["claimed_until"], **_where("status = 'sending'"))
    op.create_index("ix_delivery_provider", "delivery", ["channel", "provider_id"],
                    **_where("provider_id IS NOT NULL"))
    op.create_index("ix_delivery_contact_sent", "delivery", ["contact_id", "purpose", "sent_at"],
                    **_where("sent_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_delivery_contact_sent", table_name="delivery")
    op.drop_index("ix_delivery_provider", table_name="delivery")
    op.drop_index("ix_delivery_claimed", table_name="delivery")
    op.drop_index("ix_delivery_due", table_name="delivery")
    op.create_index("ix_delivery_contact_sent", "delivery", ["contact_id", "purpose", "sent_at"])
    op.create_index("ix_delivery_provider", "delivery", ["channel", "provider_id"])
    op.create_index("ix_delivery_due", "delivery", ["status", "send_after"])
