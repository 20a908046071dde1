"""RFM scores and cells against a hand-computed fixture, for contacts and accounts, on both stores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from analytics import rfm
from analytics.compute import Options, recompute_scores
from analytics.models import RfmScore
from hub.accounts import create_account
from hub.auth import SYSTEM
from tests.analytics.factories import customer, order

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)


def seed(hub) -> dict[str, int]:
    """Five customers whose recency, frequency and money ranks differ: with five, each score is the rank.

    A: 5 orders, 5000, last 1 day ago      → R5 F5 M5, FM 5 → champions
    B: 1 order (re-reported: 100 counts)    → R4 F1 M1, FM 1 → promising
    C: 3 orders 900, refund 100 → 800       → R3 F3 M3, FM 3 → need attention
    D: 4 orders, 2000, last 200 days ago   → R2 F4 M4, FM 4 → at risk
    E: 2 orders, 300 (+ one in USD, left out), last 400 days ago → R1 F2 M2, FM 2 → hibernating
    Accounts: X = A + B (6 orders, 5100, last 1 day), Y = C (3 orders, 800, last 30 days); with two
    accounts the scores are 1 and 1 + ⌊5/2⌋ = 3: X R3 F3 M3 → need attention, Y R1 F1 M1 → lost."""
    with hub.session() as s, s.begin():
        x = create_account(s, actor=SYSTEM, name="X").id
        y = create_account(s, actor=SYSTEM, name="Y").id
    ids = {"A": customer(hub, "A", account_id=x), "B": customer(hub, "B", account_id=x),
           "C": customer(hub, "C", account_id=y), "D": customer(hub, "D"), "E": customer(hub, "E"),
           "nobody": customer(hub, "No orders"), "X": x, "Y": y}
    ago = lambda days: NOW - timedelta(days=days)  # noqa: E731
    for i in range(5):
        order(hub, ids["A"], ago(1 + 20 * i), "1000.00", f"A{i}")
    order(hub, ids["B"], ago(12), "250.00", "B1", n=1)
    order(hub, ids["B"], ago(10), "100.00", "B1", n=2)  # the same order reported again: its latest amount counts
    for i, amount in enumerate(("300.00", "300.00", "300.00")):
        order(hub, ids["C"], ago(30 + 40 * i), amount, f"C{i}")
    order(hub, ids["C"], ago(31), "100.00", "C0", kind="order.refunded")
    for i in range(4):
        order(hub, ids["D"], ago(200 + 30 * i), "500.00", f"D{i}")
    order(hub, ids["E"], ago(400), "150.00", "E0")
    order(hub, ids["E"], ago(450), "150.00", "E1")
    order(hub, ids["E"], ago(10), "99999.00", "E2", currency="USD")
    return ids


EXPECTED = {"A": (5, 5, 5, "champions", 5, "5000.00"), "B": (4, 1, 1, "promising", 1, "100.00"),
            "C": (3, 3, 3, "need_attention", 3, "800.00"), "D": (2, 4, 4, "at_risk", 4, "2000.00"),
            "E": (1, 2, 2, "hibernating", 2, "300.00")}


def test_scores_and_cells_match_the_hand_computed_fixture(hub):
    ids = seed(hub)
    with hub.session() as s, s.begin():
        run = recompute_scores(s, options=Options(currency="RUB"), now=NOW)
    assert run.details["owners"] == {"contact": 5, "account": 2}
    with hub.session(read_only=True) as s:
        scores = {row.owner_id: row for row in s.scalars(select(RfmScore).where(RfmScore.owner_kind == "contact"))}
        accounts = {row.owner_id: row for row in s.scalars(select(RfmScore).where(RfmScore.owner_kind == "account"))}
        grid = rfm.grid(s, kind="contact")
    assert ids["nobody"] not in scores
    for name, (r, f, m, cell, orders, revenue) in EXPECTED.items():
        row = scores[ids[name]]
        assert (row.r, row.f, row.m, row.cell, row.orders, row.revenue) == (r, f, m, cell, orders, Decimal(revenue)), name
        assert rfm.cell_of(r, f, m) == cell
    assert scores[ids["A"]].last_order_at == NOW - timedelta(days=1)
    x, y = accounts[ids["X"]], accounts[ids["Y"]]
    assert (x.r, x.f, x.m, x.cell, x.orders, x.revenue) == (3, 3, 3, "need_attention", 6, Decimal("5100.00"))
    assert (y.r, y.f, y.m, y.cell, y.orders, y.revenue) == (1, 1, 1, "lost", 3, Decimal("800.00"))
    assert grid.total == 5 and grid.revenue == Decimal("8200.00")
    assert grid.cell("champions").customers == 1 and grid.cell("champions").revenue == Decimal("5000.00")
    assert grid.cell("loyal").customers == 0
    assert grid.squares == {(5, 5): 1, (4, 1): 1, (3, 3): 1, (2, 4): 1, (1, 2): 1}


def test_tied_values_share_a_score_and_a_recompute_replaces_the_last(hub):
    a, b = customer(hub, "Twin 1"), customer(hub, "Twin 2")
    for cid in (a, b):
        order(hub, cid, NOW - timedelta(days=5), "100.00", f"T{cid}")
    with hub.session() as s, s.begin():
        recompute_scores(s, options=Options(), now=NOW)
        recompute_scores(s, options=Options(), now=NOW)  # idempotent: no duplicate rows
    with hub.session(read_only=True) as s:
        rows = list(s.scalars(select(RfmScore).where(RfmScore.owner_kind == "contact")))
    assert len(rows) == 2
    assert {(r.r, r.f, r.m) for r in rows} == {(1, 1, 1)}


@pytest.mark.any_store
def test_the_grid_names_every_classic_cell_once_per_square():
    assert set(rfm.CELLS) == {c for row in rfm.GRID.values() for c in row.values()}
    assert len(rfm.GRID) == 5 and all(len(row) == 5 for row in rfm.GRID.values())
    assert rfm.GRID[5][5] == "champions" and rfm.GRID[1][1] == "lost" and rfm.GRID[1][5] == "cant_lose"
