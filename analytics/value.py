"""Customer value: the historical lifetime value (revenue so far, `RfmScore.revenue`) and a predicted
value for the next `horizon_days`, from a documented model with its error measured on a hold-out.

**Model.** BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") for how many
orders a customer will place, and Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV") for what an
order will be worth; predicted value = expected orders × expected order value (not discounted).
Both are fitted by maximum likelihood with scipy over one summary row per customer — x repeat
orders, t_x weeks from the first to the last order, T weeks from the first order to now, the mean
order value — that the database aggregates (analytics.sql). The maintained packages were weighed
first: `lifetimes` is unmaintained since 2020, `btyd` is a 2022 beta built on PyMC, and
`pymc-marketing` brings PyMC and PyTensor (hundreds of MB, a C compiler): docs/analytics.md.

**Hold-out.** The model is fitted again on the orders before `now − holdout_days` only, asked how
many orders and how much revenue each of those customers would bring in the hold-out period, and
compared with what they did: the relative error on the totals and the mean absolute error per
customer, beside a naive baseline (each customer keeps their past rate). The figures are stored with
the run and shown beside the predictions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from analytics.models import ComputeRun, RfmScore
from analytics.sql import epoch_days, order_moves, per_owner

if TYPE_CHECKING:
    from analytics.compute import Options

WEEK = 7.0
BOUND = (-12.0, 12.0)
MIN_CUSTOMERS = 20  # fewer, and the four BG/NBD parameters are not identified: no prediction
# Log-parameters stay within e^±12: beyond, exp() overflows or the likelihood is flat, and a
# quasi-Newton fit (tens of evaluations, where Nelder–Mead took thousands) wanders off.


@dataclass(frozen=True)
class Summary:
    """One row per customer, as arrays: ids, repeat orders, recency and age in weeks, mean order value."""

    ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    mean_value: np.ndarray
    orders: np.ndarray


def summary(session: Session, *, currency: str, by: str, until: datetime) -> Summary:
    """The customers' summary rows from every order before `until`, aggregated in the database."""
    owners = per_owner(order_moves(currency, by=by, until=until)).subquery("owners")
    rows = session.execute(select(owners.c.owner_id, epoch_days(owners.c.first_order_at),
                                  epoch_days(owners.c.last_order_at), owners.c.orders, owners.c.revenue)).all()
    end = (until - datetime(1970, 1, 1, tzinfo=until.tzinfo)).total_seconds() / 86400
    if not rows:
        empty = np.zeros(0)
        return Summary(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty)
    ids, first, last, orders, revenue = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    return Summary(ids.astype(np.int64), orders - 1, (last - first) / WEEK, np.maximum((end - first) / WEEK, 1e-6),
                   np.maximum(revenue, 0) / orders, orders)


# --- BG/NBD -------------------------------------------------------------------------------------

def _bgnbd_ll(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> float:
    r, alpha, a, b = np.exp(params)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(-np.sum(a1 + a2 + np.logaddexp(a3, a4)))


def fit_bgnbd(s: Summary) -> tuple[float, float, float, float]:
    """(r, alpha, a, b) by maximum likelihood."""
    result = minimize(_bgnbd_ll, np.log([1.0, max(float(np.mean(s.T)), 1.0), 1.0, 1.0]), args=(s.x, s.t_x, s.T),
                      method="L-BFGS-B", bounds=[BOUND] * 4)
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return r, alpha, a, b


def expected_orders(params: tuple[float, float, float, float], s: Summary, weeks: float) -> np.ndarray:
    """Each customer's expected number of orders in the next `weeks` (the BG/NBD conditional expectation)."""
    r, alpha, a, b = params
    x, t_x, T = s.x, s.t_x, s.T
    z = weeks / (alpha + T + weeks)
    head = (a + b + x - 1) / (a - 1) if abs(a - 1) > 1e-9 else (a + b + x - 1) / 1e-9
    body = 1 - ((alpha + T) / (alpha + T + weeks)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    return np.maximum(head * body / (1 + (x > 0) * (a / np.maximum(b + x - 1, 1e-12))
                                     * ((alpha + T) / (alpha + t_x)) ** (r + x)), 0)


def p_alive(params: tuple[float, float, float, float], s: Summary) -> np.ndarray:
    r, alpha, a, b = params
    return 1 / (1 + (s.x > 0) * (a / np.maximum(s.x + b - 1, 1e-12))
                * ((alpha + s.T) / (alpha + s.t_x)) ** (r + s.x))


# --- Gamma-Gamma --------------------------------------------------------------------------------

def _gg_ll(params: np.ndarray, n: np.ndarray, m: np.ndarray) -> float:
    p, q, v = np.exp(params)
    ll = (gammaln(p * n + q) - gammaln(p * n) - gammaln(q) + q * np.log(v) + (p * n - 1) * np.log(m)
          + p * n * np.log(n) - (p * n + q) * np.log(n * m + v))
    return float(-np.sum(ll))


def fit_gamma_gamma(s: Summary) -> tuple[float, float, float] | None:
    """(p, q, v) over customers with a positive mean order value; None when there are too few."""
    keep = s.mean_value > 0
    if keep.sum() < MIN_CUSTOMERS:
        return None
    n, m = s.orders[keep], s.mean_value[keep]
    result = minimize(_gg_ll, np.log([1.0, 2.0, float(np.mean(m))]), args=(n, m), method="L-BFGS-B",
                      bounds=[BOUND] * 3)
    p, q, v = (float(val) for val in np.exp(result.x))
    return p, q, v


def expected_order_value(params: tuple[float, float, float] | None, s: Summary) -> np.ndarray:
    """Each customer's expected order value (their own mean shrunk toward the population's)."""
    if params is None:
        return s.mean_value.copy()
    p, q, v = params
    if q <= 1:
        return s.mean_value.copy()
    return (p * (v + s.orders * s.mean_value)) / (p * s.orders + q - 1)


# --- hold-out and refresh -----------------------------------------------------------------------

@dataclass(frozen=True)
class HoldOut:
    customers: int
    actual_orders: float
    predicted_orders: float
    baseline_orders: float
    actual_revenue: float
    predicted_revenue: float
    orders_error: float  # |predicted − actual| / actual, totals
    revenue_error: float
    baseline_error: float
    mae_orders: float  # mean absolute error per customer

    def as_json(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in vars(self).items()}


def hold_out(session: Session, *, currency: str, now: datetime, holdout_days: int) -> HoldOut | None:
    """Fit on the orders before now − holdout_days, predict the hold-out period, compare."""
    cutoff = now - timedelta(days=holdout_days)
    calibration = summary(session, currency=currency, by="contact", until=cutoff)
    if len(calibration.ids) < MIN_CUSTOMERS:
        return None
    params = fit_bgnbd(calibration)
    weeks = holdout_days / WEEK
    predicted = expected_orders(params, calibration, weeks)
    value = expected_order_value(fit_gamma_gamma(calibration), calibration)
    moves = order_moves(currency, since=cutoff, until=now)
    actual_rows = dict((int(o), (float(n), float(rev))) for o, n, rev in session.execute(
        select(moves.c.owner_id, func.sum(moves.c.is_order), func.coalesce(func.sum(moves.c.amount), 0))
        .group_by(moves.c.owner_id)))
    actual = np.array([actual_rows.get(int(i), (0.0, 0.0))[0] for i in calibration.ids])
    actual_revenue = float(sum(actual_rows.get(int(i), (0.0, 0.0))[1] for i in calibration.ids))
    baseline = calibration.x / calibration.T * weeks
    total, total_base = float(predicted.sum()), float(baseline.sum())
    total_actual = float(actual.sum())
    predicted_revenue = float((predicted * value).sum())

    def rel(p: float, a: float) -> float:
        return abs(p - a) / a if a else (0.0 if p == 0 else math.inf)

    return HoldOut(len(calibration.ids), total_actual, total, total_base, actual_revenue, predicted_revenue,
                   rel(total, total_actual), rel(predicted_revenue, actual_revenue), rel(total_base, total_actual),
                   float(np.mean(np.abs(predicted - actual))))


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def refresh(session: Session, *, options: Options, now: datetime) -> ComputeRun:
    """Fit on everything, write each scored customer's expected orders, P(alive) and predicted value,
    and record the run with its parameters and hold-out error."""
    started = time.perf_counter()
    details: dict[str, Any] = {"horizon_days": options.horizon_days, "holdout_days": options.holdout_days,
                               "currency": options.currency, "model": "BG/NBD + Gamma-Gamma"}
    check = hold_out(session, currency=options.currency, now=now, holdout_days=options.holdout_days)
    details["holdout"] = check.as_json() if check is not None else None
    written = 0
    for kind in ("contact", "account"):
        s = summary(session, currency=options.currency, by=kind, until=now)
        if len(s.ids) < MIN_CUSTOMERS:
            details[kind] = {"customers": int(len(s.ids)), "skipped": "too few customers to fit"}
            continue
        params = fit_bgnbd(s)
        gg = fit_gamma_gamma(s)
        orders = expected_orders(params, s, options.horizon_days / WEEK)
        alive = p_alive(params, s)
        value = orders * expected_order_value(gg, s)
        details[kind] = {"customers": int(len(s.ids)), "bgnbd": dict(zip(("r", "alpha", "a", "b"), params, strict=True)),
                         "gamma_gamma": None if gg is None else dict(zip(("p", "q", "v"), gg, strict=True))}
        rows = [{"k": kind, "o": int(i), "e": float(e), "pa": float(pa), "pv": _money(float(v))}
                for i, e, pa, v in zip(s.ids, orders, alive, value, strict=True)]
        statement = (update(RfmScore.__table__)
                     .where(RfmScore.__table__.c.owner_kind == bindparam("k"), RfmScore.__table__.c.owner_id == bindparam("o"))
                     .values(expected_orders=bindparam("e"), p_alive=bindparam("pa"), predicted_value=bindparam("pv")))
        for start in range(0, len(rows), 5000):
            session.connection().execute(statement, rows[start:start + 5000])
        written += len(rows)
    run = ComputeRun(kind="value", started_at=now, seconds=round(time.perf_counter() - started, 3), rows=written,
                     details=details)
    session.add(run)
    session.flush()
    return run
