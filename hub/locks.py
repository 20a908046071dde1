"""Cluster-wide locks: PostgreSQL advisory locks, or a lease row on SQLite.

PostgreSQL is the distributed engine, so nothing home-made coordinates processes there; SQLite
installs run one process, and the lease row only has to keep two threads (or a stray second
process) from running the same once-only tick together.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub import clock
from hub.models import SchedulerLease

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.locks")

# A SQLite lease outlives a crashed holder by at most this long; a once-only tick that runs longer
# may meet a second holder (in one process, APScheduler's max_instances=1 still keeps it single).
DEFAULT_LEASE_SECONDS = 600


def lock_key(name: str) -> int:
    """The advisory-lock key for a name: a stable signed 64-bit hash (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def once_lock(hub: Hub, name: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Iterator[bool]:
    """Hold the cluster-wide lock `name` for the block if it is free; yields whether it was acquired."""
    if hub.db.engine.dialect.name == "postgresql":
        with _advisory(hub, name) as acquired:
            yield acquired
    else:
        with _lease(hub, name, lease_seconds) as acquired:
            yield acquired


@contextmanager
def _advisory(hub: Hub, name: str) -> Iterator[bool]:
    key = lock_key(name)
    # A session-level advisory lock belongs to one connection: keep it checked out for the block.
    with hub.db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        acquired = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                except Exception:  # the connection died, and the lock with it; never pool it again
                    log.warning("could not unlock %s; discarding its connection", name, exc_info=True)
                    conn.invalidate()


@contextmanager
def _lease(hub: Hub, name: str, lease_seconds: float) -> Iterator[bool]:
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    table = SchedulerLease.__table__
    now = clock.now()
    stmt = (
        sqlite_insert(table)
        .values(name=name, holder=holder, expires_at=now + timedelta(seconds=lease_seconds))
        .on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": holder, "expires_at": now + timedelta(seconds=lease_seconds)},
            where=table.c.expires_at < now,
        )
        .returning(table.c.holder)
    )
    with hub.db.session() as session, session.begin():
        acquired = session.execute(stmt).first() is not None
    try:
        yield acquired
    finally:
        if acquired:
            with hub.db.session() as session, session.begin():
                session.execute(delete(table).where(table.c.name == name, table.c.holder == holder))


def xact_locks(session: Session, names: list[str]) -> None:
    """xact_lock for many names in one statement, taken in the given order (sort it to avoid deadlocks)."""
    if names and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) "
                             "WITH ORDINALITY AS t(k, n) ORDER BY n"), {"keys": [lock_key(n) for n in names]})


def xact_lock(session: Session, name: str) -> None:
    """Serialise transactions on `name` until the caller's transaction ends.

    On SQLite every write transaction already holds the database's one write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
