"""Claiming, recording and reaping webhook deliveries: each call is its own short transaction.

The same shape as the outbox (hub.outbox): a due row is claimed (status `sending`, a lease, the
attempt counted) in one transaction, sent with no transaction open, and its outcome recorded in
another; a worker that dies leaves rows whose lease runs out, and `reap` puts them back. So every
delivery goes out at least once, and only one in flight when its worker died can go out twice
(receivers deduplicate by `webhook-id`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from hub import clock
from hub.auth import SYSTEM
from hub.db import among
from webhooks.models import (DeliveryState, EndpointStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint,
                             WebhookMessage)
from webhooks.service import message_body, secrets_in_force

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("webhooks.delivery")
E, D, M = WebhookEndpoint.__table__, WebhookDelivery.__table__, WebhookMessage.__table__
A = WebhookAttempt.__table__
S = DeliveryState


@dataclass(frozen=True)
class Job:
    """One claimed delivery, detached from the session: everything the sender needs."""

    delivery_id: int
    endpoint_id: int
    attempt: int
    message_id: str
    body: bytes


@dataclass(frozen=True)
class EndpointInfo:
    id: int
    url: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What one try gave: a status code (None: no answer), latency, the answer's first bytes."""

    delivery_id: int
    attempt: int
    status_code: int | None = None
    latency_ms: int | None = None
    response: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _settings(hub: Hub) -> Any:
    return hub.extensions["webhooks"].settings


def claim(hub: Hub, *, worker: str, per_endpoint: int, now: datetime | None = None,
          skip: Sequence[int] = (), only: int | None = None) -> tuple[list[Job], dict[int, EndpointInfo]]:
    """Claim up to `per_endpoint` due deliveries of each active endpoint (not those in `skip`), in
    (due time, id) order; an ordered endpoint's subject waits while an earlier one is unfinished."""
    now = now or clock.now()
    earlier = aliased(WebhookDelivery)
    ranked = (
        select(D.c.id, func.row_number().over(partition_by=D.c.endpoint_id,
                                              order_by=(D.c.next_attempt_at, D.c.id)).label("n"))
        .select_from(D.join(E, E.c.id == D.c.endpoint_id))
        .where(D.c.status == S.QUEUED, D.c.next_attempt_at <= now, E.c.status == EndpointStatus.ACTIVE,
               or_(E.c.ordered.is_(False), ~exists().where(and_(
                   earlier.endpoint_id == D.c.endpoint_id, earlier.subject == D.c.subject, earlier.id < D.c.id,
                   earlier.status.in_([S.QUEUED, S.SENDING]))))))
    if skip:
        ranked = ranked.where(D.c.endpoint_id.not_in(list(skip)))
    if only is not None:
        ranked = ranked.where(D.c.endpoint_id == only)
    ranked = ranked.subquery()
    lease = timedelta(seconds=_settings(hub).lease_seconds)
    with hub.db.session() as session, session.begin():
        ids = list(session.scalars(select(ranked.c.id).where(ranked.c.n <= per_endpoint).limit(per_endpoint * 200)))
        if not ids:
            return [], {}
        # The status test re-checked under the row lock makes a row two workers raced for go to one.
        rows = session.execute(
            update(D).where(among(session, D.c.id, ids), D.c.status == S.QUEUED)
            .values(status=S.SENDING, claimed_by=worker, claimed_until=now + lease, attempts=D.c.attempts + 1,
                    updated_at=now)
            .returning(D.c.id, D.c.endpoint_id, D.c.message_id, D.c.attempts)).all()
        if not rows:
            return [], {}
        messages = {r.id: r for r in session.execute(
            select(M.c.id, M.c.message_id, M.c.payload).where(among(session, M.c.id, list({r.message_id for r in rows}))))}
        endpoints = {r.id: EndpointInfo(r.id, r.url, tuple(secrets_in_force(r, now))) for r in session.execute(
            select(E.c.id, E.c.url, E.c.secret, E.c.previous_secret, E.c.previous_secret_until)
            .where(among(session, E.c.id, list({r.endpoint_id for r in rows}))))}
    jobs = [Job(r.id, r.endpoint_id, r.attempts, messages[r.message_id].message_id,
                message_body(messages[r.message_id].payload)) for r in sorted(rows, key=lambda r: r.id)]
    return jobs, endpoints


def backoff_seconds(hub: Hub, attempts: int) -> float:
    """base × 2^(attempts-1), capped, with ±50% jitter so a recovering endpoint is not stampeded."""
    settings = _settings(hub)
    base = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** max(attempts - 1, 0))
    return base * random.uniform(0.5, 1.5)


def record(hub: Hub, outcomes: Sequence[Outcome], *, worker: str, now: datetime | None = None,
           released: Sequence[tuple[int, int]] = ()) -> dict[int, str]:
    """Record tries (and hand back `released` (delivery_id, attempt) rows that were claimed but not
    tried, their attempt uncounted, due when the failed try retries: they would meet the same
    endpoint) in ONE transaction; the new status by delivery id. Rows this worker no longer holds are
    left alone (a reaper requeued them and another worker took them)."""
    now = now or clock.now()
    settings = _settings(hub)
    statuses: dict[int, str] = {}
    held = and_(D.c.claimed_by == worker, D.c.status == S.SENDING)
    with hub.session() as session, session.begin():
        ids = [o.delivery_id for o in outcomes] + [d for d, _ in released]
        current = {r.id: r for r in session.execute(
            select(D.c.id, D.c.endpoint_id, D.c.attempts, D.c.give_up_at).where(among(session, D.c.id, ids), held)
            .with_for_update())} if ids else {}
        failing: dict[int, Outcome] = {}
        succeeded: set[int] = set()
        attempts_log = []
        changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        release_at = now
        for outcome in outcomes:
            row = current.get(outcome.delivery_id)
            if row is None or row.attempts != outcome.attempt:
                log.warning("webhook delivery %s: %s no longer holds it; outcome not recorded", outcome.delivery_id, worker)
                continue
            attempts_log.append(dict(delivery_id=row.id, attempt=outcome.attempt, at=now, status_code=outcome.status_code,
                                     latency_ms=outcome.latency_ms, response=outcome.response,
                                     error=(outcome.error or None) and outcome.error[:500]))
            values: dict[str, Any] = dict(claimed_by=None, claimed_until=None, updated_at=now,
                                          last_status_code=outcome.status_code, last_latency_ms=outcome.latency_ms,
                                          last_error=(outcome.error or None) and outcome.error[:500])
            if outcome.ok:
                values.update(status=S.DELIVERED, delivered_at=now)
                succeeded.add(row.endpoint_id)
            else:
                if outcome.retry_after is not None:  # the receiver said when: honoured, within bounds
                    delay = min(max(outcome.retry_after, 1.0), settings.backoff_max_seconds)
                else:
                    delay = backoff_seconds(hub, outcome.attempt)
                retry_at = now + timedelta(seconds=delay)
                release_at = max(release_at, retry_at)
                if retry_at > row.give_up_at:
                    values.update(status=S.FAILED)
                else:
                    values.update(status=S.QUEUED, next_attempt_at=retry_at)
                failing[row.endpoint_id] = outcome
            changes.setdefault(tuple(sorted(values)), []).append({"row_id": row.id, **values})
            statuses[row.id] = values["status"]
        # One executemany per shape of change (delivered, retried, given up): a batch's rows in a
        # handful of round trips, not a statement each.
        for rows in changes.values():
            session.execute(update(D).where(D.c.id == bindparam("row_id")), rows)
        back = [delivery_id for delivery_id, attempt in released
                if (row := current.get(delivery_id)) is not None and row.attempts == attempt]
        if back:
            session.execute(update(D).where(among(session, D.c.id, back)).values(
                status=S.QUEUED, attempts=D.c.attempts - 1, claimed_by=None, claimed_until=None, updated_at=now,
                next_attempt_at=release_at))
            statuses.update(dict.fromkeys(back, S.QUEUED))
        if attempts_log:
            session.execute(insert(A), attempts_log)
        if succeeded:
            session.execute(update(E).where(among(session, E.c.id, list(succeeded)), E.c.failing_since.is_not(None))
                            .values(failing_since=None))
        for endpoint_id, outcome in failing.items():
            if endpoint_id not in succeeded:
                _count_failure(session, hub, endpoint_id=endpoint_id, outcome=outcome, now=now)
    return statuses


def _count_failure(session: Any, hub: Hub, *, endpoint_id: int, outcome: Outcome, now: datetime) -> None:
    """Start or continue the endpoint's failing streak; past `disable_after_hours`, disable it and tell the admin."""
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or endpoint.status != EndpointStatus.ACTIVE:
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        return
    if now - endpoint.failing_since < timedelta(hours=_settings(hub).disable_after_hours):
        return
    from webhooks.service import set_status

    last = f"HTTP {outcome.status_code}" if outcome.status_code is not None else (outcome.error or "no answer")
    reason = f"failing since {endpoint.failing_since.isoformat()}; last answer: {last}"[:500]
    set_status(session, actor=SYSTEM, endpoint=endpoint, status=EndpointStatus.DISABLED, reason=reason)
    # Its waiting deliveries stay queued: re-enabling the endpoint sends them (until they expire).
    log.warning("webhook endpoint %s disabled after failing since %s", endpoint_id, endpoint.failing_since)
    from webhooks.notify import endpoint_disabled

    endpoint_disabled(session, hub, endpoint)


def reap(hub: Hub, *, now: datetime | None = None) -> int:
    """Requeue deliveries whose worker's lease ran out (it died mid-send); how many."""
    now = now or clock.now()
    with hub.db.session() as session, session.begin():
        rows = session.execute(update(D).where(D.c.status == S.SENDING, D.c.claimed_until < now).values(
            status=S.QUEUED, claimed_by=None, claimed_until=None, next_attempt_at=now, updated_at=now)
            .returning(D.c.id)).all()
    if rows:
        log.warning("requeued %d webhook deliveries from expired claims", len(rows))
    return len(rows)


def purge(hub: Hub, *, now: datetime | None = None) -> int:
    """Forget messages older than `retention_days` whose deliveries are all finished; how many."""
    cutoff = (now or clock.now()) - timedelta(days=_settings(hub).retention_days)
    with hub.db.session() as session, session.begin():
        old = list(session.scalars(select(M.c.id).where(M.c.created_at < cutoff, ~exists().where(and_(
            D.c.message_id == M.c.id, D.c.status.in_([S.QUEUED, S.SENDING])))).limit(5000)))
        if not old:
            return 0
        doomed = select(D.c.id).where(among(session, D.c.message_id, old))
        session.execute(delete(A).where(A.c.delivery_id.in_(doomed)))
        session.execute(delete(D).where(among(session, D.c.message_id, old)))
        session.execute(delete(M).where(among(session, M.c.id, old)))
    return len(old)


__all__ = ["Job", "Outcome", "EndpointInfo", "backoff_seconds", "claim", "purge", "reap", "record"]
