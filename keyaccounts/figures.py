"""The precomputed figures on each account row (`account.profit`, `profit_band`, `figures_at`) that
segments and campaigns select by, and the ranking behind them (`account_figure`: every owner's profit,
margin, cost to serve and place, which the Key accounts page reads for the default period), kept
current by the job `keyaccounts.figures`.

The band is the account's place in the same ranking the Key accounts page draws (every account, and
every contact without one that had figures, by profit over `period_days`):

| band         | rule                                                           |
|--------------|----------------------------------------------------------------|
| `top`        | in the top `key_share` (20%) of the ranking, profit above zero |
| `profitable` | profit above zero, below the top                               |
| `break_even` | profit exactly zero (often: nothing happened in the period)    |
| `loss`       | profit below zero: it costs more to serve than it brings       |
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, text, update

from hub import clock
from hub.db import insert_ignore_many, is_postgres
from hub.models import Account
from keyaccounts.batch import long_lived_frozen, with_sort_memory
from keyaccounts.models import StoredFigure
from keyaccounts.profit import Profit, Rates, all_profits

BANDS = ("top", "profitable", "break_even", "loss")
# Ranking rows written per statement: the peak memory of the job stays that of its figures, not
# also of every row and its JSON at once (full bench scale, 20,001 owners: 109 MB above idle with
# one statement).
RANKING_BATCH = 2000


def band_of(rank: int, top_count: int, profit: Decimal) -> str:
    """The band of the account ranked `rank` (1 = most profitable) when the top holds `top_count`."""
    if profit < 0:
        return "loss"
    if profit == 0:
        return "break_even"
    return "top" if rank <= top_count else "profitable"


@long_lived_frozen()
def refresh_figures(hub: Any, *, rates: Rates, period_days: int, key_share: float) -> int:
    """Recompute every account's profit and band in one transaction; how many accounts were written.

    The ranking goes to `account_figure` (every owner's row, bulk-inserted: what the Key accounts page
    reads) and from there onto the account rows in one UPDATE … FROM, so nothing is written row by row."""
    now = clock.now()
    with hub.session() as session:
        if is_postgres(session):  # a concurrent run waits for this one instead of clashing on the keys
            session.execute(text("LOCK TABLE account_figure IN EXCLUSIVE MODE"))
        with_sort_memory(session)
        profits = all_profits(session, since=now - timedelta(days=period_days), until=now, rates=rates)
        ids = list(session.scalars(select(Account.id)))
        ranked = [(figure.profit, owner) for owner, figure in profits.items() if owner[0] == "contact"]
        ranked += [(profits[("account", i)].profit if ("account", i) in profits else Decimal(0), ("account", i))
                   for i in ids]
        ranked.sort(key=lambda item: (-item[0], item[1]))
        top_count = max(1, math.floor(len(ranked) * key_share)) if ranked else 0
        session.execute(delete(StoredFigure))
        # A statement per RANKING_BATCH rows on PostgreSQL (the rows as one JSON parameter), each
        # figure freed once its row is written, so the rows and their JSON are never all held at
        # once; the table was emptied above under its lock, so nothing conflicts.
        for start in range(0, len(ranked), RANKING_BATCH):
            rows = []
            for rank, (profit, owner) in enumerate(ranked[start:start + RANKING_BATCH], start=start + 1):
                figure = profits.pop(owner, None) or Profit(owner)
                rows.append({"owner_kind": owner[0], "owner_id": owner[1], "period_days": period_days,
                             "rank": rank, "band": band_of(rank, top_count, profit), "profit": profit,
                             "margin": figure.margin, "cost_to_serve": figure.cost_to_serve,
                             "revenue": figure.revenue, "minutes": figure.minutes, "computed_at": now})
            insert_ignore_many(session, StoredFigure, rows, ["owner_kind", "owner_id"], ["owner_id"])
        f = StoredFigure.__table__.c
        session.execute(update(Account).where(f.owner_kind == "account", f.owner_id == Account.id)
                        .values(profit=f.profit, profit_band=f.band, figures_at=now))
        session.commit()
    return len(ids)
