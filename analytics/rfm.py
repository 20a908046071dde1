"""RFM: recency, frequency and monetary quintiles per customer, and the classic grid of cells.

**Scores.** Over every order in the configured currency (each order once, refunds subtracted —
`analytics.sql.order_moves`), per owner (a contact, or an account with its members' orders):
recency = the last order's time, frequency = the number of orders, monetary = revenue. Each is
scored 1–5 by rank among all owners of the same kind, 5 the best (most recent, most orders, most
money): score = 1 + ⌊5 × (rank − 1) / n⌋ with `RANK()` over ascending values, so tied values share a
score and each score holds about a fifth of the owners. One `INSERT … SELECT` computes them in the
database (docs/analytics.md shows the query).

**Cells.** The grid crosses R with FM = ⌈(F + M) / 2⌉ (frequency and money together):

    R \\ FM  1                 2                    3                    4           5
    5       new               potential loyalists  potential loyalists  champions   champions
    4       promising         potential loyalists  potential loyalists  loyal       champions
    3       about to sleep    need attention       need attention       loyal       loyal
    2       hibernating       about to sleep       at risk              at risk     can't lose
    1       lost              hibernating          at risk              can't lose  can't lose
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from analytics.models import RfmScore
from analytics.sql import order_moves, per_owner
from hub.web.i18n import N_

OWNER_KINDS = ("contact", "account")
CELLS = ("champions", "loyal", "potential_loyalists", "new", "promising", "need_attention", "about_to_sleep",
         "at_risk", "cant_lose", "hibernating", "lost")
CELL_LABELS = {"champions": N_("Champions"), "loyal": N_("Loyal"), "potential_loyalists": N_("Potential loyalists"),
               "new": N_("New customers"), "promising": N_("Promising"), "need_attention": N_("Need attention"),
               "about_to_sleep": N_("About to sleep"), "at_risk": N_("At risk"), "cant_lose": N_("Can't lose them"),
               "hibernating": N_("Hibernating"), "lost": N_("Lost")}
CELL_ADVICE = {"champions": N_("Bought recently, buy often and spend the most. Reward them; ask for reviews."),
               "loyal": N_("Buy regularly and spend well. Offer more; invite to a loyalty programme."),
               "potential_loyalists": N_("Recent customers with average frequency. Recommend, build the habit."),
               "new": N_("Bought for the first time very recently. Welcome them; help them succeed."),
               "promising": N_("Recent, but have not spent much yet. Build awareness, offer a trial."),
               "need_attention": N_("Average recency, frequency and money. Reactivate with a limited offer."),
               "about_to_sleep": N_("Below average and fading. Share something valuable before you lose them."),
               "at_risk": N_("Used to buy often and spend well, but long ago. Personal emails, win them back."),
               "cant_lose": N_("Made the biggest and most frequent purchases, but long ago. Call them."),
               "hibernating": N_("Last bought long ago, rarely and cheaply. Offer relevant products."),
               "lost": N_("Lowest on every score. Revive with one campaign, otherwise leave them.")}
# GRID[r][fm] = cell, r and fm 1–5.
_ROWS = {5: ("new", "potential_loyalists", "potential_loyalists", "champions", "champions"),
         4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "champions"),
         3: ("about_to_sleep", "need_attention", "need_attention", "loyal", "loyal"),
         2: ("hibernating", "about_to_sleep", "at_risk", "at_risk", "cant_lose"),
         1: ("lost", "hibernating", "at_risk", "cant_lose", "cant_lose")}
GRID: dict[int, dict[int, str]] = {r: {fm: row[fm - 1] for fm in range(1, 6)} for r, row in _ROWS.items()}


def cell_of(r: int, f: int, m: int) -> str:
    """The grid cell of one set of scores (the SQL below computes the same)."""
    return GRID[r][fm_of(f, m)]


def fm_of(f: int, m: int) -> int:
    return (f + m + 1) // 2


def _quintile(value: Any) -> Any:
    rank = func.rank().over(order_by=value)
    return 1 + (5 * (rank - 1)) // func.count().over()


def scores_query(currency: str, *, by: str = "contact") -> Any:
    """SELECT owner_id, first/last order, orders, revenue, r, f, m, cell: every owner's scores."""
    owners = per_owner(order_moves(currency, by=by)).subquery("owners")
    scored = select(owners, _quintile(owners.c.last_order_at).label("r"), _quintile(owners.c.orders).label("f"),
                    _quintile(owners.c.revenue).label("m")).subquery("scored")
    fm = (scored.c.f + scored.c.m + 1) // 2
    code = scored.c.r * 10 + fm
    cell = sa.case(*((code == r * 10 + fm_, name) for r, row in GRID.items() for fm_, name in row.items()),
                   else_="lost")
    return select(scored.c.owner_id, scored.c.first_order_at, scored.c.last_order_at, scored.c.orders,
                  scored.c.revenue, scored.c.r, scored.c.f, scored.c.m, cell.label("cell"))


def recompute(session: Session, *, currency: str, now: Any) -> dict[str, int]:
    """Replace every owner's scores with fresh ones, computed in the database; counts by owner kind."""
    counts = {}
    for kind in OWNER_KINDS:
        session.execute(delete(RfmScore).where(RfmScore.owner_kind == kind))
        scores = scores_query(currency, by=kind).subquery("s")
        source = select(sa.literal(kind).label("owner_kind"), *scores.c, sa.literal(now, RfmScore.__table__.c.computed_at.type)
                        .label("computed_at"))
        columns = ["owner_kind", "owner_id", "first_order_at", "last_order_at", "orders", "revenue", "r", "f", "m",
                   "cell", "computed_at"]
        session.execute(insert(RfmScore).from_select(columns, source))
        counts[kind] = int(session.scalar(select(func.count()).where(RfmScore.owner_kind == kind)) or 0)
    return counts


@dataclass(frozen=True)
class CellFigure:
    cell: str
    customers: int
    revenue: Decimal
    share: float  # of all scored customers
    revenue_share: float
    predicted_value: Decimal | None


@dataclass(frozen=True)
class Grid:
    kind: str
    cells: list[CellFigure]  # in CELLS order
    squares: dict[tuple[int, int], int]  # (r, fm) -> customers
    total: int
    revenue: Decimal

    def cell(self, name: str) -> CellFigure:
        return next(c for c in self.cells if c.cell == name)


def grid(session: Session, *, kind: str = "contact") -> Grid:
    """Customers and revenue per cell, and per square of the R × FM grid, from the precomputed scores."""
    by_cell = {cell: (int(n), Decimal(rev or 0), pv) for cell, n, rev, pv in session.execute(
        select(RfmScore.cell, func.count(), func.sum(RfmScore.revenue), func.sum(RfmScore.predicted_value))
        .where(RfmScore.owner_kind == kind).group_by(RfmScore.cell))}
    fm = (RfmScore.f + RfmScore.m + 1) // 2
    squares = {(int(r), int(f)): int(n) for r, f, n in session.execute(
        select(RfmScore.r, fm, func.count()).where(RfmScore.owner_kind == kind).group_by(RfmScore.r, fm))}
    total = sum(n for n, _, _ in by_cell.values())
    revenue = sum((rev for _, rev, _ in by_cell.values()), Decimal(0))
    cells = [CellFigure(name, by_cell.get(name, (0,))[0], by_cell.get(name, (0, Decimal(0)))[1],
                        by_cell.get(name, (0,))[0] / total if total else 0.0,
                        float(by_cell.get(name, (0, Decimal(0)))[1] / revenue) if revenue else 0.0,
                        None if by_cell.get(name, (0, 0, None))[2] is None else Decimal(by_cell[name][2]))
             for name in CELLS]
    return Grid(kind, cells, squares, total, revenue)
