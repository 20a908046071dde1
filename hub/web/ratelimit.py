"""The sign-in rate limit, kept in the database so it holds across every API process.

An address (account) is locked after MAX_FAILURES_PER_EMAIL failed tries within WINDOW, counted from
its last successful sign-in; a client address after MAX_FAILURES_PER_ADDRESS failures within WINDOW,
whichever accounts it tried (password spraying). The lock lifts as the oldest counted failure ages out.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub import clock
from hub.web.models import LoginAttempt

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 30
KEEP = timedelta(days=1)


def _wait(session: Session, *conditions: object, limit: int) -> timedelta | None:
    counted = (
        select(LoginAttempt.occurred_at)
        .where(LoginAttempt.succeeded.is_(False), *conditions)  # type: ignore[arg-type]
        .order_by(LoginAttempt.occurred_at.desc())
        .limit(limit)
    ).subquery()
    count, oldest = session.execute(select(func.count(), func.min(counted.c.occurred_at))).one()
    if count < limit:
        return None
    return max(oldest + WINDOW - clock.now(), timedelta(seconds=1))


def retry_after(session: Session, *, email: str, address: str) -> timedelta | None:
    """How long this sign-in must wait, or None when it may try now."""
    start = clock.now() - WINDOW
    # Ids, not times, order the tries: two can share a timestamp.
    last_success = session.scalar(
        select(func.max(LoginAttempt.id)).where(LoginAttempt.email == email, LoginAttempt.succeeded.is_(True))
    ) or 0
    waits = [
        _wait(session, LoginAttempt.email == email, LoginAttempt.id > last_success, LoginAttempt.occurred_at > start,
              limit=MAX_FAILURES_PER_EMAIL),
        _wait(session, LoginAttempt.address == address, LoginAttempt.occurred_at > start,
              limit=MAX_FAILURES_PER_ADDRESS) if address else None,
    ]
    found = [w for w in waits if w is not None]
    return max(found) if found else None


def record(session: Session, *, email: str, address: str, succeeded: bool) -> None:
    """Remember one try (in the caller's transaction) and forget tries older than a day."""
    now = clock.now()
    session.add(LoginAttempt(email=email[:320], address=address[:64], succeeded=succeeded, occurred_at=now))
    session.execute(delete(LoginAttempt).where(LoginAttempt.occurred_at < now - KEEP))
