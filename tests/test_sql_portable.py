"""The portable SQL functions (hub.sql_portable) give the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from hub.sql_portable import at_least_zero, epoch_days, month_index, month_of_days, seconds_between


def one(database, expression):
    with database.engine.connect() as conn:
        return conn.execute(sa.select(expression)).scalar_one()


@pytest.mark.parametrize(("value", "expected"), [(5, 5), (-3, 0), (0, 0), (None, 0)])
def test_at_least_zero_is_the_same_on_both_stores_null_included(database, value, expected):
    assert float(one(database, at_least_zero(sa.literal(value, sa.Numeric())))) == expected


def test_seconds_between_iso_texts_and_null_for_anything_else(database):
    start, end = sa.literal("2026-06-01T10:00:00+00:00", sa.Text()), sa.literal("2026-06-01T11:30:00+00:00", sa.Text())
    assert round(float(one(database, seconds_between(start, end)))) == 5400
    assert round(float(one(database, seconds_between(end, start)))) == -5400
    assert one(database, seconds_between(start, sa.literal("soon", sa.Text()))) is None


def test_months_and_days_are_utc_calendar_figures(database):
    moment = sa.literal(datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc), sa.DateTime(timezone=True))
    assert one(database, month_index(moment)) == 2026 * 12 + 11
    days = float(one(database, epoch_days(moment)))
    assert abs(days - datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc).timestamp() / 86400) < 1e-3
    assert one(database, month_of_days(sa.literal(days, sa.Float()))) == 2026 * 12 + 11
