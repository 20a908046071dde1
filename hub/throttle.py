"""Rate limits that hold across every worker process together: token buckets kept in the database.

A bucket is one `rate_bucket` row (name, tokens, updated_at). Taking tokens refills the bucket for
the time since it was last touched (`rate` per second, up to `capacity`) and takes what it can, in
one short transaction: under a row lock (`SELECT … FOR UPDATE`) on PostgreSQL, under the database's
single write lock (BEGIN IMMEDIATE) on SQLite. No process keeps a private budget, so any number of
workers together never exceed the rate; a worker claims only as many deliveries as tokens it got,
and gives back what it did not use (nothing due, a sending rule deferred it).

Buckets: `global` (settings.sending.global_rate_per_second) and `channel:<name>`
(settings.sending.rate_per_second[name]); a send takes one token from each that applies. Public
forms use the same buckets per visitor address (`per_address`), and `purge_idle` forgets those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import select, update
from sqlmodel import Field, SQLModel

from hub import clock
from hub.models import _time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.runtime import Hub
    from hub.settings import Settings

# Wait at least this long before asking an empty bucket again (keeps idle polling cheap).
MIN_WAIT_SECONDS = 0.01


class RateBucket(SQLModel, table=True):
    __tablename__ = "rate_bucket"

    name: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    tokens: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    updated_at: datetime = _time()


T = RateBucket.__table__


@dataclass(frozen=True)
class Limit:
    """One bucket: `rate` tokens per second, holding at most `capacity`."""

    name: str
    rate: float
    capacity: float


@dataclass(frozen=True)
class Grant:
    """How many sends were granted, and (when fewer than asked) how long until the next token."""

    granted: int
    wait: float = 0.0


def limits_for(settings: Settings, channel: str) -> list[Limit]:
    """The buckets a send on `channel` draws from (none when no rate is configured)."""
    sending = settings.sending
    limits = []
    if sending.global_rate_per_second:
        rate = sending.global_rate_per_second
        limits.append(Limit("global", rate, max(1.0, rate * sending.burst_seconds)))
    rate = sending.rate_per_second.get(channel)
    if rate:
        limits.append(Limit(f"channel:{channel}", rate, max(1.0, rate * sending.burst_seconds)))
    return limits


def _ensure(session: Session, limits: list[Limit], now: datetime) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for limit in limits:
        session.execute(insert(T).values(name=limit.name, tokens=limit.capacity, updated_at=now)
                        .on_conflict_do_nothing(index_elements=["name"]))


def _locked(session: Session, limits: list[Limit]) -> dict[str, sa.Row]:
    # Always in name order, so two processes taking from the same buckets cannot deadlock.
    stmt = select(T.c.name, T.c.tokens, T.c.updated_at).where(T.c.name.in_([lim.name for lim in limits]))
    stmt = stmt.order_by(T.c.name)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {row.name: row for row in session.execute(stmt).all()}


def _refilled(limit: Limit, row: sa.Row, now: datetime) -> tuple[float, datetime]:
    # A process whose clock is behind the last writer's adds nothing (and never moves time back).
    elapsed = max(0.0, (now - row.updated_at).total_seconds())
    return min(limit.capacity, row.tokens + limit.rate * elapsed), max(now, row.updated_at)


def acquire(hub: Hub, limits: list[Limit], want: int, *, now: datetime | None = None) -> Grant:
    """Take up to `want` tokens from every bucket in `limits` at once (the same number from each)."""
    if want < 1:
        return Grant(0)
    if not limits:
        return Grant(want)
    limits = sorted(limits, key=lambda lim: lim.name)
    now = now or clock.now()
    with hub.db.session() as session, session.begin():
        rows = _locked(session, limits)
        if len(rows) < len(limits):
            _ensure(session, limits, now)
            rows = _locked(session, limits)
        levels = {lim.name: _refilled(lim, rows[lim.name], now) for lim in limits}
        # The epsilon forgives float drift (2.9999999 tokens after many refills are 3).
        granted = min([want] + [math.floor(levels[lim.name][0] + 1e-9) for lim in limits])
        granted = max(granted, 0)
        for lim in limits:
            tokens, at = levels[lim.name]
            session.execute(update(T).where(T.c.name == lim.name).values(tokens=tokens - granted, updated_at=at))
    wait = 0.0
    if granted < want:
        wait = max(max(0.0, 1.0 - (levels[lim.name][0] - granted)) / lim.rate for lim in limits)
        wait = max(wait, MIN_WAIT_SECONDS)
    return Grant(granted, wait)


def refund(hub: Hub, limits: list[Limit], count: int) -> None:
    """Give back tokens taken for sends that did not happen (never above a bucket's capacity)."""
    if count < 1 or not limits:
        return
    with hub.db.session() as session, session.begin():
        for lim in sorted(limits, key=lambda lim: lim.name):
            session.execute(update(T).where(T.c.name == lim.name)
                            .values(tokens=sa.func.least(T.c.tokens + count, lim.capacity)
                                    if session.get_bind().dialect.name == "postgresql"
                                    else sa.func.min(T.c.tokens + count, lim.capacity)))


def level(hub: Hub, name: str) -> float | None:
    """A bucket's stored token count (as last written; not refilled to now), or None if it has none yet."""
    with hub.db.session(read_only=True) as session:
        return session.scalar(select(T.c.tokens).where(T.c.name == name))


def per_address(hub: Hub, prefix: str, address: str, *, limit: int, window_seconds: float) -> float | None:
    """One attempt by a visitor at `address` on a public form: None when allowed (a token is taken),
    else the seconds to wait. `limit` attempts in `window_seconds`, refilled steadily."""
    bucket = Limit(f"{prefix}:{address[:64]}", rate=limit / window_seconds, capacity=float(limit))
    grant = acquire(hub, [bucket], 1)
    return None if grant.granted else max(grant.wait, 1.0)


def purge_idle(hub: Hub, prefix: str, *, idle_seconds: float, now: datetime | None = None) -> int:
    """Delete the `prefix:` buckets untouched for `idle_seconds` (by then they are full again, so
    forgetting them changes nothing); how many."""
    from datetime import timedelta

    cutoff = (now or clock.now()) - timedelta(seconds=idle_seconds)
    with hub.db.session() as session, session.begin():
        result = session.execute(sa.delete(T).where(T.c.name.startswith(f"{prefix}:"), T.c.updated_at < cutoff))
    return result.rowcount or 0
