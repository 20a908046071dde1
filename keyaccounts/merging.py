"""What an account merge (hub.accounts_merge) moves of key-account management: the duplicate's
temperature snapshots join the survivor's trend, its cooling episodes its history (an episode still
open on both is one episode: the duplicate's ends, the survivor's stays open), its own thresholds
where the survivor has none; the survivor is marked due so its temperature is taken again on the
merged contacts."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub import clock
from keyaccounts.due import mark_due
from keyaccounts.models import AccountThreshold, CoolingEpisode, TemperatureDue, TemperatureSnapshot


def merge_rows(session: Session, *, survivor_id: int, duplicate_id: int) -> None:
    """Move the duplicate's rows to the survivor (in the merge's transaction)."""
    session.execute(update(TemperatureSnapshot).where(TemperatureSnapshot.account_id == duplicate_id)
                    .values(account_id=survivor_id))
    open_here = session.scalars(select(CoolingEpisode.id).where(CoolingEpisode.open_account_id == survivor_id)).first()
    if open_here is not None:
        session.execute(update(CoolingEpisode).where(CoolingEpisode.open_account_id == duplicate_id)
                        .values(open_account_id=None, ended_at=clock.now()))
    else:
        session.execute(update(CoolingEpisode).where(CoolingEpisode.open_account_id == duplicate_id)
                        .values(open_account_id=survivor_id))
    session.execute(update(CoolingEpisode).where(CoolingEpisode.account_id == duplicate_id)
                    .values(account_id=survivor_id))
    if session.get(AccountThreshold, survivor_id) is None:
        session.execute(update(AccountThreshold).where(AccountThreshold.account_id == duplicate_id)
                        .values(account_id=survivor_id))
    else:
        session.execute(delete(AccountThreshold).where(AccountThreshold.account_id == duplicate_id))
    session.execute(delete(TemperatureDue).where(TemperatureDue.account_id == duplicate_id))
    mark_due(session, account_id=survivor_id)
