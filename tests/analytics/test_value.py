"""The customer-value model: BG/NBD and Gamma-Gamma fitted on orders drawn from a known process, its
error measured on a hold-out period (computed here, then compared with what the page shows)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from analytics.compute import Options, latest_run, recompute_scores
from analytics.models import RfmScore
from tests.analytics.factories import bgnbd_history, bulk_customers, bulk_orders

NOW = datetime(2026, 6, 15, tzinfo=timezone.utc)
START = NOW - timedelta(days=730)
# analytics.value (SciPy, NumPy) is imported by the tests that use it, not when the suite collects
# this module: ~1 s of CPU in every parallel worker, most of which never runs these tests.


def seed(hub, customers: int = 1500, seed: int = 7) -> None:
    with hub.session() as s, s.begin():
        ids = bulk_customers(s, customers, created_at=START)
        bulk_orders(s, bgnbd_history(random.Random(seed), customers=ids, start=START, end=NOW))


def test_the_hold_out_error_is_measured_and_small_on_data_the_model_describes(hub):
    from analytics import value

    seed(hub)
    with hub.session(read_only=True) as s:
        check = value.hold_out(s, currency="RUB", now=NOW, holdout_days=180)
    assert check is not None and check.customers > 500
    assert check.actual_orders > 100
    # The figures are computed, not assumed: the prediction lands near what happened, and nearer than
    # the naive "everyone keeps their past rate" forecast, which ignores customers who dropped out.
    assert check.orders_error < 0.2, check
    assert check.orders_error < check.baseline_error, check
    assert check.revenue_error < 0.3, check
    assert check.mae_orders < 1.5, check


def test_the_refresh_writes_predictions_and_the_page_shows_the_error(hub, web):
    from analytics import value
    from hub.models import Role
    from tests.web.conftest import login

    seed(hub, customers=600, seed=11)
    options = Options(holdout_days=180, horizon_days=365)
    with hub.session() as s, s.begin():
        recompute_scores(s, options=options, now=NOW)
        run = value.refresh(s, options=options, now=NOW)
    holdout = run.details["holdout"]
    assert holdout["actual_orders"] > 0 and 0 <= holdout["orders_error"] < 1
    with hub.session(read_only=True) as s:
        missing = s.scalar(select(func.count()).where(RfmScore.owner_kind == "contact",
                                                       RfmScore.predicted_value.is_(None)))
        rows = list(s.execute(select(RfmScore.orders, RfmScore.p_alive, RfmScore.expected_orders,
                                     RfmScore.predicted_value, RfmScore.last_order_at)
                              .where(RfmScore.owner_kind == "contact")))
        assert latest_run(s, "value").id == run.id
    assert missing == 0 and len(rows) > 300
    assert all(0 <= pa <= 1 and e >= 0 and pv >= 0 for _, pa, e, pv, _ in rows)
    # Someone who bought often and recently is worth more than someone who bought once, long ago.
    busy = max(rows, key=lambda r: (r[0], r[4]))
    once = min((r for r in rows if r[0] == 1), key=lambda r: r[4])
    assert busy[3] > once[3]
    login(web, hub, "m@example.com", role=Role.MARKETER)
    page = web.get("/analytics/value").text
    assert 'id="holdout-summary"' in page
    shown = f"{round(100 * holdout['orders_error'])}%"
    assert shown in page.replace("\xa0", "")


@pytest.mark.any_store
def test_the_model_recovers_the_parameters_it_was_drawn_from():
    import numpy as np

    from analytics import value
    from analytics.value import Summary

    rng = random.Random(3)

    # Straight from the BG/NBD story, in weeks: 3000 customers observed for 78 weeks.
    xs, txs, Ts = [], [], []
    for _ in range(3000):
        lam, p = rng.gammavariate(0.8, 1 / 8.0), rng.betavariate(0.6, 2.5)
        T = 78.0
        t, x, last = 0.0, 0, 0.0
        while True:
            t += rng.expovariate(lam)
            if t > T:
                break
            x, last = x + 1, t
            if rng.random() < p:
                break
        xs.append(x)
        txs.append(last)
        Ts.append(T)
    s = Summary(np.arange(3000), np.array(xs, float), np.array(txs), np.array(Ts), np.ones(3000), np.array(xs, float) + 1)
    r, alpha, a, b = value.fit_bgnbd(s)
    assert r == pytest.approx(0.8, rel=0.3) and alpha == pytest.approx(8.0, rel=0.35)
    assert a == pytest.approx(0.6, rel=0.5) and b == pytest.approx(2.5, rel=0.6)
