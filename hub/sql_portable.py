"""Dialect-neutral SQL functions for figures (hub.json_sql's neighbour): each is one construct that
compiles to the right SQL on SQLite and on PostgreSQL, so a figure is one Select on either store.

- Time: calendar months and days from timestamps, read as UTC (SQLite keeps naive UTC text,
  PostgreSQL timestamptz). A month is an integer, year × 12 + month − 1 (2026-12 is 24323), so month
  arithmetic is subtraction on both stores.
- `seconds_between`: the seconds between two ISO-8601 texts (a meeting's `starts_at` and `ends_at`).
- `at_least_zero`: max(value, 0), NULL as 0, with the value evaluated once.

analytics (RFM, value, cohorts) and keyaccounts (profit, temperature) build on them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

UNIX_JULIAN = 2440587.5


def _args(element: Any, compiler: Any, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


class month_index(FunctionElement):  # type: ignore[type-arg]  # noqa: N801 - reads like a SQL function
    """The UTC calendar month of a timestamp as year × 12 + month − 1."""

    type = sa.Integer()
    inherit_cache = True


@compiles(month_index, "sqlite")
def _month_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    ts = _args(element, compiler, **kw)[0]
    return f"(CAST(strftime('%Y', {ts}) AS INTEGER) * 12 + CAST(strftime('%m', {ts}) AS INTEGER) - 1)"


@compiles(month_index, "postgresql")
def _month_pg(element: Any, compiler: Any, **kw: Any) -> str:
    ts = _args(element, compiler, **kw)[0]
    return (f"(CAST(EXTRACT(YEAR FROM ({ts}) AT TIME ZONE 'UTC') AS INTEGER) * 12 "
            f"+ CAST(EXTRACT(MONTH FROM ({ts}) AT TIME ZONE 'UTC') AS INTEGER) - 1)")


class epoch_days(FunctionElement):  # type: ignore[type-arg]  # noqa: N801
    """Days (fractional) since 1970-01-01 UTC."""

    type = sa.Float()
    inherit_cache = True


@compiles(epoch_days, "sqlite")
def _days_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(julianday({_args(element, compiler, **kw)[0]}) - {UNIX_JULIAN})"


@compiles(epoch_days, "postgresql")
def _days_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(EXTRACT(EPOCH FROM {_args(element, compiler, **kw)[0]}) / 86400.0)"


class month_of_days(FunctionElement):  # type: ignore[type-arg]  # noqa: N801
    """The UTC calendar month (year × 12 + month − 1) of a moment given in epoch days."""

    type = sa.Integer()
    inherit_cache = True


@compiles(month_of_days, "sqlite")
def _month_days_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    d = f"(({_args(element, compiler, **kw)[0]}) + {UNIX_JULIAN})"
    return f"(CAST(strftime('%Y', {d}) AS INTEGER) * 12 + CAST(strftime('%m', {d}) AS INTEGER) - 1)"


@compiles(month_of_days, "postgresql")
def _month_days_pg(element: Any, compiler: Any, **kw: Any) -> str:
    ts = f"(to_timestamp(({_args(element, compiler, **kw)[0]}) * 86400.0) AT TIME ZONE 'UTC')"
    return f"(CAST(EXTRACT(YEAR FROM {ts}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {ts}) AS INTEGER) - 1)"


class seconds_between(FunctionElement):  # type: ignore[type-arg]  # noqa: N801
    """Seconds from one ISO-8601 text timestamp to another (NULL when either is not one)."""

    type = sa.Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_pg(element: Any, compiler: Any, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    iso = "'^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+([+-][0-9:]+|Z)?$'"
    return (f"(CASE WHEN {start} ~ {iso} AND {end} ~ {iso} THEN "
            f"EXTRACT(EPOCH FROM (CAST({end} AS TIMESTAMPTZ) - CAST({start} AS TIMESTAMPTZ))) END)")


class at_least_zero(FunctionElement):  # type: ignore[type-arg]  # noqa: N801
    """The value, or 0 when it is below 0 or NULL, with the value evaluated once (CASE WHEN v > 0
    THEN v would compute a JSON extraction twice per row). PostgreSQL's greatest() skips NULLs where
    SQLite's max() returns NULL: SQLite's form coalesces first, so both stores give 0."""

    type = sa.Numeric()
    inherit_cache = True


@compiles(at_least_zero, "sqlite")
def _at_least_zero_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"max(coalesce({_args(element, compiler, **kw)[0]}, 0), 0)"


@compiles(at_least_zero, "postgresql")
def _at_least_zero_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f"greatest({_args(element, compiler, **kw)[0]}, 0)"
