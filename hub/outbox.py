"""The outbox: deliveries written with their cause, claimed by workers, moved forward by providers.

A delivery is inserted in the caller's transaction (with its outbound timeline event), so a
rolled-back cause never sends anything. Workers claim due rows with `FOR UPDATE SKIP LOCKED` on
PostgreSQL; on SQLite the claim is one UPDATE inside the BEGIN IMMEDIATE write transaction, which
is the single-writer equivalent. Sending is at-least-once: only a row in flight when its worker
dies can go out twice.
"""

from __future__ import annotations

import logging
import random
import threading
import weakref
from dataclasses import dataclass, replace
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, literal, select, text, true, tuple_, update
from sqlalchemy.orm import Session

from hub import clock, notices
from hub.channel import (
    Capability,
    OutboundMessage,
    PermanentSendError,
    SendError,
    SendResult,
    StatusUpdate,
    TransientSendError,
)
from hub.db import after_commit, among, dumps_compact, insert_ignore, insert_ignore_many, is_postgres
from hub.event_updates import EventChange, update_events
from hub.ingest import InboundEvent, post_events, survivors
from hub.locks import xact_lock, xact_locks
from hub.models import Delivery, DeliveryStatus, Direction, PendingStatus, Purpose, TimelineEvent
from hub.observability import DELIVERIES

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.outbox")

T = Delivery.__table__
S = DeliveryStatus

# Provider statuses only move up this ladder; equal ranks never replace each other, so a
# repeated or late callback (delivered after read, sent after delivered) changes nothing.
RANK: dict[str, int] = {
    S.QUEUED: 0,
    S.SENDING: 1,
    S.SENT: 2,
    S.DELIVERED: 3,
    S.FAILED: 3,
    S.UNDELIVERED: 3,
    S.READ: 4,
    S.BOUNCED: 4,
    # Local final states: no provider callback overrides them.
    S.DEAD: 5,
    S.CANCELLED: 5,
}
PROVIDER_STATUSES = frozenset(RANK) - {S.DEAD, S.CANCELLED}
# Provider statuses whose detail explains a failure worth showing as the delivery's last error.
_PROBLEMS = frozenset({S.FAILED, S.UNDELIVERED, S.BOUNCED})


def rank(status: str) -> int:
    """Where a status stands on the forward-only ladder."""
    return RANK[DeliveryStatus(status)]


def _below(status: str) -> list[str]:
    return [s.value for s in DeliveryStatus if RANK[s] < rank(status)]


# --- writing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outgoing:
    """One delivery to enqueue: what `enqueue` takes, as a value (see enqueue for the fields)."""

    channel: str
    address: str
    content: Mapping[str, Any]
    idempotency_key: str
    contact_id: int | None = None
    purpose: str = Purpose.TRANSACTIONAL
    send_after: datetime | None = None
    record_event: bool = True
    actor_user_id: int | None = None
    rules: Mapping[str, Any] | None = None
    event_data: Mapping[str, Any] | None = None
    event_kind: str = "message"


@dataclass(frozen=True)
class Queued:
    """What became of one Outgoing: its delivery's id (new, or the one already holding its key), or
    why it was refused (the channel cannot carry it, a field is invalid) with nothing written."""

    delivery_id: int | None
    refused: str | None = None


def enqueue(session: Session, **fields: Any) -> Delivery:
    """Add a delivery (and its outbound timeline event) to the caller's transaction, at most once per key.

    `rules` are the cause's sending rules (hub.sending.DeliveryRules: quiet hours, frequency cap),
    checked by the worker at send time; `event_data` is merged into the timeline event's data and
    `event_kind` names it (campaigns post `campaign.message`). ValueError if it cannot be sent.
    """
    [queued] = enqueue_many(session, [Outgoing(**fields)])
    if queued.delivery_id is None:
        raise ValueError(queued.refused)
    delivery = session.get(Delivery, queued.delivery_id)
    assert delivery is not None
    return delivery


def enqueue_many(session: Session, items: Sequence[Outgoing]) -> list[Queued]:
    """Enqueue a batch (a campaign's) in the caller's transaction with a handful of statements, with
    exactly enqueue's rules per item: a key already used gives its delivery back, refusals write
    nothing for that item, a merged contact's delivery goes to the survivor."""
    hub = _runtime(session)
    results: list[Queued | None] = [None] * len(items)
    checked: list[tuple[int, Outgoing]] = []
    rules: dict[int, Any] = {}  # a campaign's batch shares one rules object: validated once, not per item
    for index, item in enumerate(items):
        try:
            checked.append((index, _checked(hub, item, rules)))
        except ValueError as exc:
            results[index] = Queued(None, str(exc))
    known = _ids_by_key(session, [item.idempotency_key for _, item in checked])
    contacts = survivors(session, [item.contact_id for _, item in checked
                                   if item.contact_id is not None and item.idempotency_key not in known])
    now = clock.now()
    fresh: dict[str, tuple[dict[str, Any], InboundEvent | None]] = {}
    waiting: list[tuple[int, str]] = []
    for index, item in checked:
        key = item.idempotency_key
        if key in known:
            results[index] = Queued(known[key])
            continue
        if key not in fresh:
            try:
                fresh[key] = _prepared(hub, item, contacts, now)
            except ValueError as exc:
                results[index] = Queued(None, str(exc))
                continue
        waiting.append((index, key))
    if fresh:
        if is_postgres(session):
            inserted = _insert_with_events(session, fresh)
        else:
            inserted = {r.idempotency_key: r.id for r in insert_ignore_many(
                session, Delivery, [row for row, _ in fresh.values()], ["idempotency_key"], ["id", "idempotency_key"])}
            _post_events(session, [(inserted[key], row, event) for key, (row, event) in fresh.items()
                                   if key in inserted and event is not None])
        raced = _ids_by_key(session, [key for key in fresh if key not in inserted])  # concurrent enqueues won
        for index, key in waiting:
            results[index] = Queued(inserted.get(key) or raced[key])
        if any(row["send_after"] <= now for key, (row, _) in fresh.items() if key in inserted):
            after_commit(session, lambda: _notify_enqueued(hub))
    return results  # type: ignore[return-value]


def _checked(hub: Hub, item: Outgoing, rules: dict[int, Any]) -> Outgoing:
    """The item with its fields checked and normalised; ValueError says what is wrong. `rules` holds
    the rules already cleaned in this batch, by the identity of the object the items carry."""
    from hub.sending import clean_rules

    adapter = hub.channel(item.channel)  # LookupError names the installed channels
    if Capability.SEND not in adapter.capabilities:
        raise ValueError(f"channel {item.channel!r} cannot send messages")
    address = (item.address or "").strip()
    if not address or len(address) > 320:
        raise ValueError("address must be 1 to 320 characters")
    if not item.idempotency_key or len(item.idempotency_key) > 300:
        raise ValueError("idempotency_key must be 1 to 300 characters")
    if not isinstance(item.content, Mapping):
        raise ValueError("content must be an object")
    if item.send_after is not None and item.send_after.tzinfo is None:
        raise ValueError("send_after needs a time zone offset")
    if item.event_data is not None and not isinstance(item.event_data, Mapping):
        raise ValueError("event_data must be an object")
    if not item.event_kind or len(item.event_kind) > 60:
        raise ValueError("event_kind must be 1 to 60 characters")
    if item.rules is None:
        cleaned = None
    elif id(item.rules) in rules:
        cleaned = rules[id(item.rules)]
    else:
        cleaned = rules[id(item.rules)] = clean_rules(item.rules)
    return replace(item, address=address, purpose=Purpose(item.purpose).value, rules=cleaned)


def _prepared(hub: Hub, item: Outgoing, contacts: Mapping[int, Any], now: datetime) -> tuple[dict[str, Any], InboundEvent | None]:
    """The delivery row and its timeline event, both built (so validated) before anything is written."""
    hub.channel(item.channel).validate_content(item.content)
    contact_id = contacts[item.contact_id].id if item.contact_id is not None else None
    event = None
    if contact_id is not None and item.record_event:
        event = InboundEvent(
            channel=item.channel, kind=item.event_kind, direction=Direction.OUT,
            external_id=f"delivery:{item.idempotency_key}", contact_id=contact_id,
            subject=item.content.get("subject"), text=item.content.get("text"), html=item.content.get("html"),
            thread_key=item.content.get("thread_key"), status=S.QUEUED.value, actor_user_id=item.actor_user_id,
            data={**dict(item.event_data or {}), "address": item.address, "purpose": item.purpose},
        )
    row = dict(channel=item.channel, contact_id=contact_id, address=item.address, purpose=item.purpose,
               content=dict(item.content), idempotency_key=item.idempotency_key,
               send_after=item.send_after or now, status=S.QUEUED.value, attempts=0,
               rules=item.rules, created_at=now, updated_at=now)
    return row, event


# Ids taken from the delivery table's own sequence, as its inserts would take them.
_RESERVE_IDS = text("SELECT nextval(pg_get_serial_sequence('delivery', 'id')) FROM generate_series(1, :n)")


def _insert_with_events(session: Session, fresh: Mapping[str, tuple[dict[str, Any], InboundEvent | None]]) -> dict[str, int]:
    """PostgreSQL: the deliveries and their timeline events, each delivery written once and already
    linked to its event (an insert, not an insert and then an UPDATE of every row); the ids of the
    deliveries inserted, by key. Their ids are reserved first, so each event carries its delivery's.

    A key a concurrent enqueue wrote first is skipped; its event, if this batch made it (the winner
    wrote none of its own), is deleted again, so every event still stands for one delivery."""
    reserved = dict(zip(fresh, session.scalars(_RESERVE_IDS, {"n": len(fresh)}).all()))
    posting = [(key, event) for key, (_row, event) in fresh.items() if event is not None]
    for key, event in posting:
        event.data["delivery_id"] = reserved[key]
    events = dict(zip((key for key, _ in posting), post_events(session, events=[e for _, e in posting]))) \
        if posting else {}
    rows = [{**row, "id": reserved[key], "event_id": events.get(key)} for key, (row, _event) in fresh.items()]
    inserted = {r.idempotency_key: r.id for r in insert_ignore_many(
        session, Delivery, rows, ["idempotency_key"], ["id", "idempotency_key"])}
    lost = {events[key]: reserved[key] for key in events if key not in inserted}
    if lost:  # rare: only a race on the same key. Ours are the ones naming an id only this batch had.
        found = session.execute(select(TimelineEvent.id, TimelineEvent.data)
                                .where(among(session, TimelineEvent.id, lost))).all()
        ours = [r.id for r in found if (r.data or {}).get("delivery_id") == lost[r.id]]
        if ours:
            session.execute(delete(TimelineEvent).where(among(session, TimelineEvent.id, ours)))
    return inserted


def _post_events(session: Session, batch: list[tuple[int, dict[str, Any], InboundEvent]]) -> None:
    """SQLite: the new deliveries' outbound timeline events, posted together, and each delivery
    linked to its own (SQLite has no sequence to take the deliveries' ids from beforehand)."""
    if not batch:
        return
    for delivery_id, _row, event in batch:
        event.data["delivery_id"] = delivery_id
    post_events(session, events=[event for _, _, event in batch])
    # One UPDATE … FROM for the batch: each delivery finds its event by the event's external id.
    E = TimelineEvent.__table__
    session.execute(update(T).values(event_id=E.c.id).where(
        among(session, T.c.id, [delivery_id for delivery_id, _row, _event in batch]),
        E.c.channel == T.c.channel, E.c.external_id == literal("delivery:") + T.c.idempotency_key))


def _ids_by_key(session: Session, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        found.update({r.idempotency_key: r.id for r in session.execute(
            select(T.c.id, T.c.idempotency_key).where(among(session, T.c.idempotency_key, unique[start:start + 500]))).all()})
    return found


def cancel(session: Session, *, delivery_id: int) -> bool:
    """Cancel a delivery that has not been claimed yet; False if it is already on its way or done."""
    return _cancel(session, T.c.id == delivery_id) == 1


def cancel_where(
    session: Session,
    *,
    ids: Any = None,
    contact_id: int | None = None,
    channel: str | None = None,
    purpose: str | None = None,
) -> int:
    """Cancel every queued delivery matching all the given filters (at least one besides purpose); how
    many. `ids` is a SELECT of delivery ids: a feature's own link table names its deliveries (a
    campaign run's are in campaign_message)."""
    filters = []
    if ids is not None:
        filters.append(T.c.id.in_(ids))
    if contact_id is not None:
        filters.append(T.c.contact_id == contact_id)
    if channel is not None:
        filters.append(T.c.channel == channel)
    if not filters:
        raise ValueError("cancel_where needs ids, contact_id or channel")
    if purpose is not None:
        filters.append(T.c.purpose == Purpose(purpose).value)
    return _cancel(session, and_(*filters))


def _cancel(session: Session, condition: Any) -> int:
    hub = _runtime(session)
    rows = session.execute(
        update(T)
        .where(condition, T.c.status == S.QUEUED)
        .values(status=S.CANCELLED, claimed_by=None, claimed_until=None, updated_at=clock.now())
        .returning(T.c.id, T.c.event_id)
    ).all()
    for row in rows:
        _mirror(session, hub, delivery_id=row.id, event_id=row.event_id, status=S.CANCELLED)
    return len(rows)


# --- claiming and recording (each call is its own transaction) --------------------------------

def has_due(hub: Hub, *, channel: str, now: datetime | None = None) -> bool:
    """Whether any delivery on `channel` is due (a read; lets a rate-limited worker skip taking tokens)."""
    now = now or clock.now()
    with hub.session(read_only=True) as session:
        found = session.scalar(select(T.c.id).where(T.c.status == S.QUEUED, T.c.send_after <= now,
                                                    T.c.channel == channel).limit(1))
    return found is not None


def claim_due(
    hub: Hub,
    *,
    worker: str,
    limit: int,
    now: datetime | None = None,
    channels: list[str] | None = None,
) -> list[OutboundMessage]:
    """Claim up to `limit` due deliveries for `worker` and commit; rows other workers hold are skipped."""

    if limit < 1 or (channels is not None and not channels):
        return []
    now = now or clock.now()
    due = select(T.c.id).where(T.c.status == S.QUEUED, T.c.send_after <= now)
    if channels is not None:
        due = due.where(T.c.channel.in_(channels))
    due = due.order_by(T.c.send_after, T.c.id).limit(limit)
    claim = (
        update(T)
        .where(T.c.status == S.QUEUED)
        .values(
            status=S.SENDING,
            claimed_by=worker,
            claimed_until=now + timedelta(seconds=hub.settings.outbox.lease_seconds),
            attempts=T.c.attempts + 1,
            updated_at=now,
        )
        .returning(
            T.c.id, T.c.channel, T.c.address, T.c.content, T.c.idempotency_key, T.c.purpose,
            T.c.contact_id, T.c.attempts, T.c.send_after, T.c.rules,
        )
    )
    with hub.db.session() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            # Lock first, then update exactly those rows. (Inside `UPDATE … WHERE id IN (SELECT …
            # LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may rescan the subquery and take more than n.)
            ids = session.scalars(due.with_for_update(skip_locked=True)).all()
            rows = session.execute(claim.where(among(session, T.c.id, ids))).all() if ids else []
        else:
            # One statement under the BEGIN IMMEDIATE write lock: the single-writer equivalent.
            rows = session.execute(claim.where(T.c.id.in_(due.scalar_subquery()))).all()
    rows.sort(key=lambda r: (r.send_after, r.id))
    return [
        OutboundMessage(
            delivery_id=r.id,
            channel=r.channel,
            address=r.address,
            content=dict(r.content or {}),
            idempotency_key=r.idempotency_key,
            purpose=r.purpose,
            contact_id=r.contact_id,
            attempt=r.attempts,
            rules=r.rules,
        )
        for r in rows
    ]


def _held_by(worker: str, attempt: int | None) -> Any:
    # The holder may still record after a reaper requeued its row (claimed_by is kept then), which
    # saves a duplicate send; once another worker reclaims the row, claimed_by no longer matches.
    return and_(
        T.c.claimed_by == worker,
        T.c.status.in_([S.SENDING, S.QUEUED]),
        T.c.attempts == attempt if attempt is not None else true(),
    )


def record_sent(
    hub: Hub,
    *,
    delivery_id: int,
    worker: str,
    result: SendResult,
    attempt: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Record a send the provider accepted; False (and nothing written) if `worker` no longer holds the row."""
    return record_outcomes(hub, [(delivery_id, attempt, result)], worker=worker, now=now)[0] is not None


def record_outcomes(
    hub: Hub,
    outcomes: Sequence[tuple[int, int | None, Any]],
    *,
    worker: str,
    now: datetime | None = None,
) -> list[str | None]:
    """Record a whole batch's outcomes — (delivery_id, attempt, SendResult or exception) — in ONE
    transaction, with exactly the per-row semantics of record_sent/record_failure (ownership check,
    pending statuses, timeline mirror); the new status of each row, None where `worker` no longer holds it.

    Sends (the common case) are written with a few statements for the whole batch; failures row by row.
    """

    now = now or clock.now()
    statuses: list[str | None] = [None] * len(outcomes)
    counted: list[tuple[str, str]] = []
    with hub.session() as session, session.begin():
        ids = list(dict.fromkeys(d for d, _a, _r in outcomes))
        channels = dict(session.execute(select(T.c.id, T.c.channel).where(among(session, T.c.id, ids))).all()) if ids else {}
        # Provider-id locks in a fixed order, so two batches (or a status callback) never deadlock.
        xact_locks(session, sorted({f"outbox.provider:{channels[d]}:{r.provider_id}" for d, _a, r in outcomes
                                    if isinstance(r, SendResult) and r.provider_id and d in channels}))
        sent = [(i, d, a, r) for i, (d, a, r) in enumerate(outcomes) if isinstance(r, SendResult)]
        for index, status, channel in _record_sent_many(session, hub, sent, worker=worker, now=now):
            statuses[index] = status
            counted.append((channel, "sent"))
        for index, (delivery_id, attempt, result) in enumerate(outcomes):
            if isinstance(result, SendResult):
                continue
            done = _record_failure_in(session, hub, delivery_id=delivery_id, worker=worker, error=result,
                                      attempt=attempt, now=now)
            statuses[index] = done[0] if done else None
            if done:
                counted.append((done[1], "dead" if done[0] == S.DEAD else "retry"))
    for channel, label in counted:
        DELIVERIES.labels(channel, label).inc()
    return statuses


# PostgreSQL: a batch's sends recorded in one UPDATE … FROM, not one UPDATE per row (executemany).
_RECORD_SENT = text(
    "UPDATE delivery AS d SET status = v.new_status, provider_id = v.provider, sent_at = :now, updated_at = :now, "
    "claimed_by = NULL, claimed_until = NULL, last_error = NULL "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(delivery bigint, new_status text, provider text) "
    "WHERE d.id = v.delivery"
).bindparams(bindparam("now", type_=T.c.sent_at.type))


def _record_sent_many(session: Session, hub: Hub, sent: Sequence[tuple[int, int, int | None, SendResult]], *,
                      worker: str, now: datetime) -> list[tuple[int, str, str]]:
    """Mark the held rows among `sent` (index, delivery_id, attempt, result) as sent; (index, status,
    channel) for each one recorded. The rows are locked before they are written, so every update lands."""
    if not sent:
        return []
    held = {r.id: r for r in session.execute(
        select(T.c.id, T.c.channel, T.c.event_id, T.c.attempts)
        .where(among(session, T.c.id, [d for _i, d, _a, _r in sent]), _held_by(worker, None)).with_for_update()).all()}
    done: list[tuple[int, str, str]] = []
    updates: list[dict[str, Any]] = []
    mirrors: list[tuple[int, int | None, str, dict[str, Any] | None]] = []
    for index, delivery_id, attempt, result in sent:
        row = held.pop(delivery_id, None)  # popped: a delivery listed twice is recorded once
        if row is None or (attempt is not None and row.attempts != attempt):
            log.warning("delivery %s was sent but %s no longer holds it; its outcome is not recorded", delivery_id, worker)
            continue
        status = DeliveryStatus(result.status)
        if rank(status) < rank(S.SENT) or status not in PROVIDER_STATUSES:
            status = S.SENT
        updates.append({"delivery": delivery_id, "new_status": status.value, "provider": result.provider_id})
        done.append((index, status.value, row.channel))
        mirrors.append((delivery_id, row.event_id, status.value,
                        {"provider_id": result.provider_id} if result.provider_id else None))
    if updates and is_postgres(session):  # one statement, the rows as one JSON parameter
        session.execute(_RECORD_SENT, {"rows": dumps_compact(updates), "now": now})
    elif updates:
        session.execute(update(T).where(T.c.id == bindparam("delivery")).values(
            status=bindparam("new_status"), provider_id=bindparam("provider"), sent_at=now, updated_at=now,
            claimed_by=None, claimed_until=None, last_error=None), updates)
    # A status callback that raced the send is waiting in pending_status: apply it now (rare).
    by_provider = {(row[2], u["provider"]): k for k, (u, row) in enumerate(zip(updates, done)) if u["provider"]}
    if by_provider:
        waiting = session.execute(
            select(PendingStatus.channel, PendingStatus.provider_id)
            .where(tuple_(PendingStatus.channel, PendingStatus.provider_id).in_(list(by_provider)))).all()
        for channel, provider_id in set(waiting):
            k = by_provider[(channel, provider_id)]
            status = _apply_pending(session, delivery_id=updates[k]["delivery"], channel=channel,
                                    provider_id=provider_id, current=done[k][1])
            done[k] = (done[k][0], str(status), channel)
            mirrors[k] = (*mirrors[k][:2], str(status), mirrors[k][3])
    _mirror_many(session, hub, mirrors)
    return done


def backoff_seconds(hub: Hub, attempts: int) -> float:
    """Exponential backoff with ±50% jitter, so a provider outage does not end in a thundering herd."""
    settings = hub.settings.outbox
    base = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** max(attempts - 1, 0))
    return base * random.uniform(0.5, 1.5)


def record_failure(
    hub: Hub,
    *,
    delivery_id: int,
    worker: str,
    error: BaseException,
    attempt: int | None = None,
    now: datetime | None = None,
) -> str | None:
    """Requeue after a transient error with backoff, or mark dead; the new status, None if not held."""
    return record_outcomes(hub, [(delivery_id, attempt, error)], worker=worker, now=now)[0]


def _record_failure_in(session: Session, hub: Hub, *, delivery_id: int, worker: str, error: BaseException,
                       attempt: int | None, now: datetime) -> tuple[str, str] | None:

    if isinstance(error, SendError):
        reason = error.reason or type(error).__name__
    else:
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if not isinstance(error, SendError):
        # An adapter bug or an unexpected library error: retried like a transient one, but loudly.
        log.error("delivery %s failed with an unexpected error", delivery_id, exc_info=error)
    current = session.execute(
        select(T.c.attempts, T.c.channel).where(T.c.id == delivery_id, _held_by(worker, attempt)).with_for_update()
    ).first()
    if current is None:
        log.warning("delivery %s failed (%s) but %s no longer holds it; not recorded", delivery_id, reason, worker)
        return None
    attempts = current.attempts
    if isinstance(error, PermanentSendError):
        status, last_error, send_after = S.DEAD, reason, None
    elif attempts >= hub.settings.outbox.max_attempts:
        status, last_error, send_after = S.DEAD, f"gave up after {attempts} attempts: {reason}", None
    else:
        retry_after = error.retry_after if isinstance(error, TransientSendError) else None
        delay = max(retry_after, 0.0) if retry_after is not None else backoff_seconds(hub, attempts)
        status, last_error, send_after = S.QUEUED, reason, now + timedelta(seconds=delay)
    values: dict[str, Any] = dict(status=status, last_error=last_error, updated_at=now, claimed_by=None, claimed_until=None)
    if send_after is not None:
        values["send_after"] = send_after
    row = session.execute(
        update(T).where(T.c.id == delivery_id, _held_by(worker, attempt)).values(**values).returning(T.c.event_id)
    ).first()
    if row is None:  # lost the row between the read and the write (cannot happen under the row lock)
        return None
    if status == S.DEAD:
        _mirror(session, hub, delivery_id=delivery_id, event_id=row.event_id, status=status, data={"error": last_error})
    return str(status), current.channel


def defer_claimed(hub: Hub, *, delivery_id: int, worker: str, until: datetime, reason: str,
                  attempt: int | None = None) -> bool:
    """Put a claimed row back for later without counting an attempt (a sending rule said "not now")."""
    with hub.session() as session, session.begin():
        row = session.execute(
            update(T).where(T.c.id == delivery_id, _held_by(worker, attempt))
            .values(status=S.QUEUED, send_after=until, claimed_by=None, claimed_until=None,
                    attempts=T.c.attempts - 1, last_error=reason, updated_at=clock.now())
            .returning(T.c.id)
        ).first()
    return row is not None


def skip_claimed(hub: Hub, *, delivery_id: int, worker: str, reason: str, attempt: int | None = None) -> bool:
    """Cancel a claimed row for good (a sending rule said "never": consent withdrawn, suppressed)."""
    with hub.session() as session, session.begin():
        row = session.execute(
            update(T).where(T.c.id == delivery_id, _held_by(worker, attempt))
            .values(status=S.CANCELLED, claimed_by=None, claimed_until=None, attempts=T.c.attempts - 1,
                    last_error=reason, updated_at=clock.now())
            .returning(T.c.channel, T.c.event_id)
        ).first()
        if row is None:
            return False
        _mirror(session, hub, delivery_id=delivery_id, event_id=row.event_id, status=S.CANCELLED,
                data={"skipped": reason})
    DELIVERIES.labels(row.channel, "skipped").inc()
    return True


def release_claims(hub: Hub, *, worker: str) -> int:
    """Put this worker's unsent claimed rows back in the queue (graceful shutdown); how many."""
    with hub.db.session() as session, session.begin():
        rows = session.execute(
            update(T)
            .where(T.c.status == S.SENDING, T.c.claimed_by == worker)
            # The attempt never happened, so it does not count against max_attempts.
            .values(status=S.QUEUED, claimed_by=None, claimed_until=None, attempts=T.c.attempts - 1,
                    updated_at=clock.now())
            .returning(T.c.id)
        ).all()
    if rows:
        log.info("%s released %d claimed deliveries", worker, len(rows))
    return len(rows)


def reap_expired(hub: Hub, *, now: datetime | None = None) -> int:
    """Requeue rows whose worker's lease ran out (it crashed or hung); dead after max_attempts. How many."""
    now = now or clock.now()
    max_attempts = hub.settings.outbox.max_attempts
    expired = and_(T.c.status == S.SENDING, T.c.claimed_until < now)
    with hub.session() as session, session.begin():
        dead = session.execute(
            update(T)
            .where(expired, T.c.attempts >= max_attempts)
            .values(status=S.DEAD, claimed_until=None, updated_at=now,
                    last_error=f"the worker holding it stopped answering; gave up after {max_attempts} attempts")
            .returning(T.c.id, T.c.event_id, T.c.last_error)
        ).all()
        # claimed_by stays, so the late holder can still record what really happened (see _held_by).
        requeued = session.execute(
            update(T).where(expired).values(status=S.QUEUED, claimed_until=None, updated_at=now).returning(T.c.id)
        ).all()
        for row in dead:
            _mirror(session, hub, delivery_id=row.id, event_id=row.event_id, status=S.DEAD, data={"error": row.last_error})
    if dead or requeued:
        log.warning("reaped %d deliveries from expired claims (%d requeued, %d dead)", len(dead) + len(requeued),
                    len(requeued), len(dead))
    return len(dead) + len(requeued)


# --- provider status -------------------------------------------------------------------------

def apply_status(session: Session, *, channel: str, update: StatusUpdate) -> bool:
    """Move a delivery's status forward from a provider callback; True if anything changed.

    A callback for a provider id no delivery has yet (it raced the send's commit) is kept and
    applied when the send is recorded.
    """
    status = DeliveryStatus(update.status)
    if status not in PROVIDER_STATUSES:
        raise ValueError(f"{status} is not a status a provider reports")
    hub = _runtime(session)
    match = and_(T.c.channel == channel, T.c.provider_id == update.provider_id)
    values: dict[str, Any] = {"status": status, "updated_at": clock.now()}
    if update.detail and status in _PROBLEMS:
        values["last_error"] = update.detail
    forward = _forward(match, status).values(**values).returning(T.c.id, T.c.event_id)
    rows = session.execute(forward).all()
    if not rows:
        # No delivery below this status has the id, or the send that gives it one has not committed
        # yet: serialise with record_sent for this provider id and look again, so a callback cannot
        # slip between "no delivery has this id" and the send's commit and be lost. (The common case,
        # a callback for a recorded send, needs no lock: the row lock orders it.)
        xact_lock(session, f"outbox.provider:{channel}:{update.provider_id}")
        rows = session.execute(forward).all()
    if rows:
        for row in rows:
            _mirror(session, hub, delivery_id=row.id, event_id=row.event_id, status=status)
        return True
    if session.scalar(select(T.c.id).where(match).limit(1)) is None:
        insert_ignore(
            session,
            PendingStatus,
            dict(channel=channel, provider_id=update.provider_id, status=status.value, detail=update.detail,
                 occurred_at=update.occurred_at or clock.now()),
            ["channel", "provider_id", "status"],
        )
    return False


def _forward(match: Any, status: str) -> Any:
    return update(T).where(match, T.c.status.in_(_below(status)))


def _apply_pending(session: Session, *, delivery_id: int, channel: str, provider_id: str, current: str) -> str:
    pending = session.scalars(
        select(PendingStatus).where(PendingStatus.channel == channel, PendingStatus.provider_id == provider_id)
    ).all()
    if not pending:
        return current
    best = max(pending, key=lambda p: (rank(p.status), p.occurred_at))
    session.execute(delete(PendingStatus).where(PendingStatus.id.in_([p.id for p in pending])))
    if rank(best.status) <= rank(current):
        return current
    values: dict[str, Any] = {"status": best.status}
    if best.detail and best.status in _PROBLEMS:
        values["last_error"] = best.detail
    session.execute(update(T).where(T.c.id == delivery_id).values(**values))
    return best.status


def purge_pending(hub: Hub, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Forget status callbacks no delivery claimed within `older_than` (not ours, or a lost send)."""
    cutoff = (now or clock.now()) - older_than
    with hub.db.session() as session, session.begin():
        result = session.execute(delete(PendingStatus).where(PendingStatus.occurred_at < cutoff))
    return result.rowcount or 0


# --- timeline mirror and wake-ups ------------------------------------------------------------

def _mirror(session: Session, hub: Hub, *, delivery_id: int, event_id: int | None, status: str,
            data: dict[str, Any] | None = None) -> None:
    """Show the delivery's status on its timeline event, and tell agents' screens after commit."""
    _mirror_many(session, hub, [(delivery_id, event_id, status, data)])


def _mirror_many(session: Session, hub: Hub, items: Sequence[tuple[int, int | None, str, dict[str, Any] | None]]) -> None:
    """_mirror for (delivery_id, event_id, status, data) items, in one batched write (hub.event_updates),
    and the notice other systems hear of each (hub.notices: webhooks), in the same transaction."""
    wanted = {event_id: (delivery_id, str(status), data) for delivery_id, event_id, status, data in items
              if event_id is not None}
    changed = update_events(session, [EventChange(event_id, status=status, data=data, live={"delivery_id": delivery_id})
                                      for event_id, (delivery_id, status, data) in wanted.items()])
    told: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # notice name: its (subject, data) items
    for event in changed:
        delivery_id, status, data = wanted[event.event_id]
        if status in _NOTICES:
            told.setdefault(_NOTICES[status], []).append((f"contact:{event.contact_id}", {
                "delivery_id": delivery_id, "event_id": event.event_id, "contact_id": event.contact_id,
                "channel": event.channel, "status": status, "error": (data or {}).get("error")}))
    for name, items in told.items():  # a recorded batch's notices of one type together
        notices.emit_many(session, name, items)


# Delivery statuses other systems hear about, as the notice each one emits.
_NOTICES = {S.SENT: "message.sent", S.DELIVERED: "message.delivered", S.READ: "message.delivered",
            S.FAILED: "message.failed", S.UNDELIVERED: "message.failed", S.BOUNCED: "message.failed",
            S.DEAD: "message.failed"}


def _runtime(session: Session) -> Hub:
    hub = session.info.get("hub")
    if hub is None:
        raise RuntimeError("the outbox needs a session from Hub.session()")
    return hub


_listeners: weakref.WeakKeyDictionary[Any, list[Callable[[], None]]] = weakref.WeakKeyDictionary()
_listeners_lock = threading.Lock()


def on_enqueued(hub: Hub, callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after any commit that enqueued a delivery due now; returns the unsubscriber."""
    with _listeners_lock:
        _listeners.setdefault(hub, []).append(callback)

    def unsubscribe() -> None:
        with _listeners_lock:
            callbacks = _listeners.get(hub, [])
            if callback in callbacks:
                callbacks.remove(callback)

    return unsubscribe


def _notify_enqueued(hub: Hub) -> None:
    with _listeners_lock:
        callbacks = list(_listeners.get(hub, ()))
    for callback in callbacks:
        callback()
