"""Endpoints (add, change, pause, rotate, delete), the notice listener that queues deliveries in
the cause's transaction, and replays. Functions take the session first and do not commit."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.auth import Principal
from hub.db import after_commit
from hub.memo import memo_of
from hub.notices import Catalogue, Notice, new_id
from hub.translatable import N_, FieldError
from webhooks import safety
from webhooks.models import (ENDPOINTS_MEMO, DeliveryState, EndpointStatus, WebhookAttempt, WebhookDelivery,
                             WebhookEndpoint, WebhookMessage)
from webhooks.signing import new_secret

if TYPE_CHECKING:
    from hub.runtime import Hub

E, D, M = WebhookEndpoint.__table__, WebhookDelivery.__table__, WebhookMessage.__table__
ALL = "*"  # an endpoint subscribed to every notice type, present and future
TEST_TYPE = "webhook.test"


class EndpointNotFound(LookupError):
    """No endpoint has this id."""


def _settings(hub: Hub) -> Any:
    return hub.extensions["webhooks"].settings


def policy_of(hub: Hub) -> safety.Policy:
    """The URL policy the settings give (HTTPS only unless allow_http; the allow-list)."""
    settings = _settings(hub)
    return safety.Policy(allow_http=settings.allow_http, allowed_hosts=tuple(settings.allowed_hosts))


def clean_types(catalogue: Catalogue, event_types: Sequence[str]) -> list[str]:
    """The chosen notice types, each known to the catalogue (or "*"); FieldError otherwise."""
    chosen = sorted({str(t).strip() for t in event_types if str(t).strip()})
    if not chosen:
        raise FieldError("event_types", N_("Choose at least one event type."))
    known = set(catalogue.names())
    unknown = [t for t in chosen if t != ALL and t not in known]
    if unknown:
        raise FieldError("event_types", N_("Unknown event types: %(types)s."), types=", ".join(unknown))
    return [ALL] if ALL in chosen else chosen


def clean_url(hub: Hub, url: str) -> str:
    """The URL, checked against the policy now (resolving its host); safety.UnsafeUrl says why not."""
    return safety.check_url(url, policy_of(hub)).url


def get_endpoint(session: Session, endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)
    if endpoint is None:
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def create_endpoint(session: Session, *, hub: Hub, actor: Principal, url: str, event_types: Sequence[str],
                    description: str = "", ordered: bool = False) -> tuple[WebhookEndpoint, str]:
    """A new active endpoint and its secret (returned once: show it, never log it)."""
    clean = clean_url(hub, url)
    types = clean_types(hub.notices, event_types)
    secret = new_secret()
    endpoint = WebhookEndpoint(url=clean, description=(description or "").strip()[:500], event_types=types,
                               ordered=bool(ordered), secret=secret, created_by=actor.user_id)
    session.add(endpoint)
    session.flush()
    audit.record(session, actor=actor, action="webhook.create", entity="webhook_endpoint", entity_id=endpoint.id,
                 changes={"url": [None, clean], "event_types": [None, types]})
    _forget_endpoints(session)
    return endpoint, secret


def update_endpoint(session: Session, *, hub: Hub, actor: Principal, endpoint: WebhookEndpoint,
                    url: str | None = None, event_types: Sequence[str] | None = None,
                    description: str | None = None, ordered: bool | None = None) -> dict[str, Any]:
    """Change what is given; the audit diff (empty when nothing changed)."""
    before = {"url": endpoint.url, "event_types": list(endpoint.event_types), "description": endpoint.description,
              "ordered": endpoint.ordered}
    if url is not None:
        endpoint.url = clean_url(hub, url)
    if event_types is not None:
        endpoint.event_types = clean_types(hub.notices, event_types)
    if description is not None:
        endpoint.description = description.strip()[:500]
    if ordered is not None:
        endpoint.ordered = bool(ordered)
    after = {"url": endpoint.url, "event_types": list(endpoint.event_types), "description": endpoint.description,
             "ordered": endpoint.ordered}
    diff = audit.diff(before, after)
    if diff:
        endpoint.updated_at = clock.now()
        audit.record(session, actor=actor, action="webhook.update", entity="webhook_endpoint", entity_id=endpoint.id,
                     changes=diff)
        _forget_endpoints(session)
    return diff


_STATUS_ACTIONS = {EndpointStatus.ACTIVE: "webhook.resume", EndpointStatus.PAUSED: "webhook.pause",
                   EndpointStatus.DISABLED: "webhook.disable"}


def set_status(session: Session, *, actor: Principal, endpoint: WebhookEndpoint, status: EndpointStatus,
               reason: str | None = None) -> bool:
    """Pause, resume (from paused or disabled) or disable; False if it already was so."""
    status = EndpointStatus(status)
    if endpoint.status == status:
        return False
    old = endpoint.status
    endpoint.status = status.value
    endpoint.updated_at = clock.now()
    if status == EndpointStatus.ACTIVE:
        endpoint.failing_since = None
        endpoint.disabled_reason = None
    elif status == EndpointStatus.DISABLED:
        endpoint.disabled_reason = (reason or "")[:500] or None
    audit.record(session, actor=actor, action=_STATUS_ACTIONS[status], entity="webhook_endpoint", entity_id=endpoint.id,
                 changes={"status": [old, status.value], **({"reason": [None, reason]} if reason else {})})
    _forget_endpoints(session)
    return True


def rotate_secret(session: Session, *, hub: Hub, actor: Principal, endpoint: WebhookEndpoint,
                  overlap_hours: float | None = None) -> str:
    """A new secret; the old one keeps signing too for the overlap (default from the settings)."""
    hours = _settings(hub).rotation_overlap_hours if overlap_hours is None else overlap_hours
    now = clock.now()
    endpoint.previous_secret = endpoint.secret if hours > 0 else None
    endpoint.previous_secret_until = now + timedelta(hours=hours) if hours > 0 else None
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    audit.record(session, actor=actor, action="webhook.rotate", entity="webhook_endpoint", entity_id=endpoint.id,
                 changes={"overlap_hours": [None, hours]})
    return endpoint.secret


def secrets_in_force(endpoint: Any, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    found = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        found.append(endpoint.previous_secret)
    return found


def delete_endpoint(session: Session, *, actor: Principal, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and their log (messages other endpoints share stay)."""
    ids = select(D.c.id).where(D.c.endpoint_id == endpoint.id)
    session.execute(delete(WebhookAttempt.__table__).where(WebhookAttempt.__table__.c.delivery_id.in_(ids)))
    session.execute(delete(D).where(D.c.endpoint_id == endpoint.id))
    audit.record(session, actor=actor, action="webhook.delete", entity="webhook_endpoint", entity_id=endpoint.id,
                 changes={"url": [endpoint.url, None]})
    session.delete(endpoint)
    session.flush()
    _forget_endpoints(session)


# --- the notice listener: deliveries in the cause's transaction ------------------------------

def _forget_endpoints(session: Session) -> None:
    """Every process reads the endpoints again once this transaction commits (and it does at once).
    Called before the change is flushed; the flush tells again (webhooks.models) for writes made
    past this module."""
    memo_of(session).changed(session, ENDPOINTS_MEMO)


def _endpoints(session: Session) -> list[Any]:
    """Every endpoint's (id, status, types): kept per process until an endpoint changes anywhere
    (hub.memo; once per transaction on SQLite), since every notice of every webhook asks. Deliveries
    are only sent to endpoints active at send time (webhooks.delivery), whatever was read here."""
    return memo_of(session).get(session, ENDPOINTS_MEMO,
                                lambda: session.execute(select(E.c.id, E.c.status, E.c.event_types)).all())


def wants(event_types: Sequence[str], notice_type: str) -> bool:
    return ALL in event_types or notice_type in event_types


def on_notices(session: Session, notices: Sequence[Notice]) -> None:
    """The listener hub.notices calls with each emitted batch: store every notice some endpoint wants
    once, and queue a delivery of it for each active one, in the cause's transaction."""
    endpoints = _endpoints(session)
    if not endpoints:
        return
    wanted: list[tuple[Notice, list[int]]] = []
    for notice in notices:
        subscribed = [row for row in endpoints if wants(row.event_types or [], notice.type)]
        if subscribed:
            # Paused and disabled endpoints get no delivery, but the message is kept so a replay
            # since a time can send what they missed.
            wanted.append((notice, [row.id for row in subscribed if row.status == EndpointStatus.ACTIVE]))
    if wanted:
        queue_many(session, wanted)


def queue(session: Session, notice: Notice, endpoint_ids: Sequence[int]) -> int:
    """Store `notice` and queue it for `endpoint_ids`; the message's row id."""
    return queue_many(session, [(notice, endpoint_ids)])[0]


def queue_many(session: Session, items: Sequence[tuple[Notice, Sequence[int]]]) -> list[int]:
    """Store each notice and queue it for its endpoints, in one statement per table (a recorded
    batch's notices come together); the messages' row ids, in the order of `items`."""
    hub: Hub = session.info["hub"]
    now = clock.now()
    give_up = now + timedelta(hours=_settings(hub).retry_for_hours)
    messages = [dict(message_id=notice.id, type=notice.type, version=notice.version, subject=notice.subject[:200],
                     contact_id=notice.data.get("contact_id") if isinstance(notice.data.get("contact_id"), int) else None,
                     payload=notice.payload(), created_at=now) for notice, _ in items]
    # Matched back by the notices' unique ids: asking for the rows in parameter order would make
    # SQLite insert them one statement each.
    stored = {message_id: row_id for message_id, row_id in
              session.execute(insert(M).returning(M.c.message_id, M.c.id), messages)}
    message_rows = [stored[notice.id] for notice, _ in items]
    deliveries = [dict(endpoint_id=endpoint_id, message_id=message_row, subject=notice.subject[:200],
                       status=DeliveryState.QUEUED.value, attempts=0, next_attempt_at=now,
                       give_up_at=give_up, created_at=now, updated_at=now)
                  for (notice, endpoint_ids), message_row in zip(items, message_rows) for endpoint_id in endpoint_ids]
    if deliveries:
        session.execute(insert(D), deliveries)
        _wake_after_commit(session, hub)
    return message_rows


def send_test(session: Session, *, hub: Hub, actor: Principal, endpoint: WebhookEndpoint) -> int:
    """Queue a `webhook.test` notice for this endpoint alone (even paused ones: it is asked for)."""
    notice_type = hub.notices.get(TEST_TYPE)
    data = notice_type.schema.model_validate({"endpoint_id": endpoint.id, "message": "Test from the hub",
                                              "requested_by": actor.actor}).model_dump(mode="json")
    notice = Notice(id=new_id(), type=TEST_TYPE, version=notice_type.version, subject=f"webhook:{endpoint.id}",
                    data=data, occurred_at=clock.now())
    message_row = queue(session, notice, [endpoint.id])
    audit.record(session, actor=actor, action="webhook.test", entity="webhook_endpoint", entity_id=endpoint.id)
    return session.execute(select(D.c.id).where(D.c.endpoint_id == endpoint.id, D.c.message_id == message_row)).scalar_one()


# --- replay ---------------------------------------------------------------------------------

def _requeue_values(hub: Hub, now: datetime) -> dict[str, Any]:
    return dict(status=DeliveryState.QUEUED.value, attempts=0, next_attempt_at=now, claimed_by=None,
                claimed_until=None, give_up_at=now + timedelta(hours=_settings(hub).retry_for_hours), updated_at=now)


def replay_delivery(session: Session, *, hub: Hub, actor: Principal, endpoint: WebhookEndpoint, delivery_id: int) -> bool:
    """Send one delivery again (same webhook-id, so receivers can tell); False if it is on its way now."""
    row = session.execute(select(D.c.id, D.c.status).where(D.c.id == delivery_id, D.c.endpoint_id == endpoint.id)).first()
    if row is None:
        raise LookupError(f"endpoint {endpoint.id} has no delivery {delivery_id}")
    if row.status == DeliveryState.SENDING:
        return False
    session.execute(update(D).where(D.c.id == delivery_id).values(**_requeue_values(hub, clock.now())))
    audit.record(session, actor=actor, action="webhook.replay", entity="webhook_endpoint", entity_id=endpoint.id,
                 changes={"delivery_id": [None, delivery_id]})
    _wake_after_commit(session, hub)
    return True


def replay_since(session: Session, *, hub: Hub, actor: Principal, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every message since `since` the endpoint wants: its finished deliveries are
    requeued, and messages it missed (paused, disabled, subscribed later) are queued. How many."""
    now = clock.now()
    if since.tzinfo is None:
        raise FieldError("since", N_("Give the time with its time zone."))
    requeued = session.execute(update(D).where(
        D.c.endpoint_id == endpoint.id, D.c.created_at >= since,
        D.c.status.in_([DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.CANCELLED]),
    ).values(**_requeue_values(hub, now)).returning(D.c.id)).all()
    missed = session.execute(select(M.c.id, M.c.type, M.c.subject).where(
        M.c.created_at >= since, ~exists().where(and_(D.c.message_id == M.c.id, D.c.endpoint_id == endpoint.id)),
    ).order_by(M.c.id)).all()
    fresh = [dict(endpoint_id=endpoint.id, message_id=m.id, subject=m.subject, **_requeue_values(hub, now),
                  created_at=now) for m in missed if wants(endpoint.event_types, m.type) and m.type != TEST_TYPE]
    if fresh:
        session.execute(insert(D), fresh)
    count = len(requeued) + len(fresh)
    audit.record(session, actor=actor, action="webhook.replay", entity="webhook_endpoint", entity_id=endpoint.id,
                 changes={"since": [None, since.isoformat()], "count": [None, count]})
    if count:
        _wake_after_commit(session, hub)
    return count


# --- waking the dispatcher after a commit ----------------------------------------------------

_wakers: weakref.WeakKeyDictionary[Any, list[Callable[[], None]]] = weakref.WeakKeyDictionary()


def on_queued(hub: Hub, callback: Callable[[], None]) -> None:
    """Call `callback` after any commit that queued webhook deliveries (the dispatcher's wake-up)."""
    _wakers.setdefault(hub, []).append(callback)


def _wake_after_commit(session: Session, hub: Hub) -> None:
    transaction = session.get_transaction()
    if session.info.get("webhooks.wake") is transaction:
        return  # once per transaction, however many notices it emits
    session.info["webhooks.wake"] = transaction
    after_commit(session, lambda: [callback() for callback in list(_wakers.get(hub, ()))])


def message_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for a stored payload."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
