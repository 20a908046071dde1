"""A key account's own cooling thresholds (`account_threshold`): the score it must not fall below and
the drop that counts as sharp, where the settings' do not fit it (a customer whose temperature always
runs low, say). Each change is one `account.thresholds` audit entry; NULL means the setting."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.auth import Principal
from hub.models import Account
from keyaccounts.models import AccountThreshold

ACTION = "account.thresholds"


class ThresholdsIn(BaseModel):
    """An account's own thresholds; null (or absent) means the setting's."""

    model_config = ConfigDict(extra="forbid")

    cold_below: int | None = Field(default=None, ge=0, le=100, description="Alert when the score is below this")
    sharp_drop: int | None = Field(default=None, ge=1, le=100,
                                   description="Alert when the score fell this many points within the drop window")


def own_thresholds(session: Session, *, account_id: int) -> ThresholdsIn:
    row = session.get(AccountThreshold, account_id)
    return ThresholdsIn() if row is None else ThresholdsIn(cold_below=row.cold_below, sharp_drop=row.sharp_drop)


def set_thresholds(session: Session, *, account: Account, actor: Principal, values: ThresholdsIn) -> dict[str, Any]:
    """Set (or clear, with nulls) the account's own thresholds; the audited diff, {} when unchanged."""
    row = session.get(AccountThreshold, account.id, with_for_update=True)
    before = {"cold_below": row.cold_below if row else None, "sharp_drop": row.sharp_drop if row else None}
    after = values.model_dump()
    diff = audit.diff(before, after)
    if not diff:
        return {}
    if all(v is None for v in after.values()):
        if row is not None:
            session.delete(row)
    else:
        if row is None:
            row = AccountThreshold(account_id=account.id)  # type: ignore[arg-type]
            session.add(row)
        row.cold_below, row.sharp_drop, row.updated_at = after["cold_below"], after["sharp_drop"], clock.now()
    session.flush()
    audit.record(session, actor=actor, action=ACTION, entity="account", entity_id=account.id, changes=diff)
    return diff
