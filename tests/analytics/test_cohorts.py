"""The cohort table and the monthly movements (new, repeat, churned, reactivated) against a hand-computed
fixture, on both stores."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from analytics import processes
from analytics.compute import Options, recompute_scores
from analytics.models import CohortCell, MonthFigure
from tests.analytics.factories import customer, order

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
JAN, FEB, MAR, APR, MAY, JUN = (2026 * 12 + m for m in range(0, 6))
OCT25, NOV25 = 2025 * 12 + 9, 2025 * 12 + 10


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 10, 0, tzinfo=timezone.utc)


def seed(hub) -> None:
    """churn_days = 60.
    P: Jan 10, Feb 10, Apr 10       → cohort Jan (+0, +1, +3); gaps 31, 59; churns Jun 9 (Apr 10 + 60)
    Q: Jan 20, Mar 5                → cohort Jan (+0, +2); churns May 4
    S: Feb 1, Feb 20, Mar 1         → cohort Feb (+0 with two orders, +1); churns Apr 30
    R: 2025-10-01, Feb 15           → cohort Oct 2025 (+0, +4); churns Nov 30, reactivated Feb (gap 137),
                                      churns again Apr 16"""
    plan = {"P": [at(2026, 1, 10), at(2026, 2, 10), at(2026, 4, 10)], "Q": [at(2026, 1, 20), at(2026, 3, 5)],
            "S": [at(2026, 2, 1), at(2026, 2, 20), at(2026, 3, 1)], "R": [at(2025, 10, 1), at(2026, 2, 15)]}
    for name, dates in plan.items():
        cid = customer(hub, name)
        for i, when in enumerate(dates):
            order(hub, cid, when, "100.00", f"{name}{i}")


def test_the_cohort_table_matches_the_hand_computed_fixture(hub):
    seed(hub)
    with hub.session() as s, s.begin():
        recompute_scores(s, options=Options(churn_days=60), now=NOW)
    with hub.session(read_only=True) as s:
        cells = {(c.cohort, c.offset): (c.customers, c.orders, c.revenue) for c in s.query(CohortCell)}
        rows = {r.cohort: r for r in processes.cohorts(s, now=NOW, months=6)}
        months = {f.month: f for f in s.query(MonthFigure)}
        moves = {f.month: f for f in processes.month_figures(s, now=NOW, months=6)}
    assert cells == {(JAN, 0): (2, 2, Decimal("200.00")), (JAN, 1): (1, 1, Decimal("100.00")),
                     (JAN, 2): (1, 1, Decimal("100.00")), (JAN, 3): (1, 1, Decimal("100.00")),
                     (FEB, 0): (1, 2, Decimal("200.00")), (FEB, 1): (1, 1, Decimal("100.00")),
                     (OCT25, 0): (1, 1, Decimal("100.00")), (OCT25, 4): (1, 1, Decimal("100.00"))}
    assert rows[JAN].size == 2 and rows[JAN].customers == [2, 1, 1, 1, 0, 0]
    assert rows[JAN].share(1) == 0.5
    assert rows[FEB].customers == [1, 1, 0, 0, 0, None]  # June has not ended for Feb + 5 … it has not come
    assert rows[JUN].customers == [0, None, None, None, None, None]
    got = {m: (f.customers, f.new_customers, f.repeat_customers, f.reactivated, f.churned, f.orders)
           for m, f in months.items()}
    assert got == {OCT25: (1, 1, 0, 0, 0, 1), NOV25: (0, 0, 0, 0, 1, 0), JAN: (2, 2, 0, 0, 0, 2),
                   FEB: (3, 1, 2, 1, 0, 4), MAR: (2, 0, 2, 0, 0, 2), APR: (1, 0, 1, 0, 2, 1),
                   MAY: (0, 0, 0, 0, 1, 0), JUN: (0, 0, 0, 0, 1, 0)}
    assert [moves[m].churned for m in (JAN, FEB, MAR, APR, MAY, JUN)] == [0, 0, 0, 2, 1, 1]
