"""The aggregate profit (every account at once, summed by the database) equals the row-by-row
computation for every owner, line by line, on both stores."""

from __future__ import annotations

from keyaccounts.profit import compute, load_inputs
from keyaccounts.totals import load_totals
from tests.accounts.test_profit import RATES, SINCE, UNTIL, world  # noqa: F401  (the fixture)


def test_the_sql_totals_equal_the_row_by_row_figures(hub, world):
    with hub.session(read_only=True) as s:
        rows = compute(load_inputs(s, since=SINCE, until=UNTIL), RATES)
        summed = load_totals(s, since=SINCE, until=UNTIL, rates=RATES)
    assert set(summed) == set(rows) and len(rows) == 2
    for owner, expected in rows.items():
        got = summed[owner]
        assert (got.revenue, got.margin, got.cost_to_serve, got.profit) == (
            expected.revenue, expected.margin, expected.cost_to_serve, expected.profit), owner
        for name, line in expected.lines.items():
            assert (got.lines[name].count, got.lines[name].minutes, got.lines[name].cost) == (
                line.count, line.minutes, line.cost), (owner, name)
