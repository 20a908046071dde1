"""REST routes of outbound webhooks under /api/v1/webhooks (admin scope), and the event catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from hub.api.deps import HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.timeline import decode_cursor, encode_cursor
from hub.translatable import FieldError
from webhooks import service
from webhooks.models import EndpointStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from webhooks.safety import UnsafeUrl
from webhooks.signing import mask

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Admin = Annotated[Principal, Depends(require("admin"))]


class EventType(BaseModel):
    name: str = Field(description="The notice's type, sent as `type` in the body")
    version: int
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the body's `data`")
    example: dict[str, Any] = Field(description="An example `data`")

    model_config = ConfigDict(populate_by_name=True)


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="https:// URL the hub POSTs to")
    event_types: list[str] = Field(min_length=1, max_length=100, description='Notice types, or ["*"] for all')
    description: str = Field("", max_length=500)
    ordered: bool = Field(False, description="Per subject in order: a subject's next notice waits for the earlier one")


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2000)
    event_types: list[str] | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    ordered: bool | None = None
    status: EndpointStatus | None = Field(None, description="active (resume), paused; disabled is set by the hub")


class EndpointPublic(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str]
    status: str
    ordered: bool
    secret_hint: str = Field(description="The secret's last characters; the secret itself is shown once")
    previous_secret_until: datetime | None = Field(None, description="Until when the old secret signs too")
    failing_since: datetime | None
    disabled_reason: str | None
    created_at: datetime


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="The signing secret (Standard Webhooks, whsec_…): shown only in this answer")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float | None = Field(None, ge=0, le=720, description="How long the old secret signs too")


class Secret(BaseModel):
    secret: str
    previous_secret_until: datetime | None


class DeliveryPublic(BaseModel):
    id: int
    message_id: str = Field(description="The webhook-id header")
    type: str
    subject: str
    status: str = Field(description="queued, sending, delivered, failed or cancelled")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class AttemptPublic(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int | None
    response: str | None = Field(description="The answer's first bytes")
    error: str | None


class DeliveryDetail(DeliveryPublic):
    payload: dict[str, Any]
    log: list[AttemptPublic]


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime = Field(description="Every message since this time (with its zone offset)")


class Count(BaseModel):
    count: int


class Queued(BaseModel):
    delivery_id: int


def public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return dict(id=endpoint.id, url=endpoint.url, description=endpoint.description, event_types=endpoint.event_types,
                status=endpoint.status, ordered=endpoint.ordered, secret_hint=mask(endpoint.secret),
                previous_secret_until=endpoint.previous_secret_until if endpoint.previous_secret else None,
                failing_since=endpoint.failing_since, disabled_reason=endpoint.disabled_reason,
                created_at=endpoint.created_at)


def _refused(exc: Exception) -> Problem:
    field = getattr(exc, "field", "url")
    return Problem(422, str(exc), slug="validation", errors=[{"field": field, "in": "body", "message": str(exc)}])


def _endpoint(session: Any, endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    try:
        return service.get_endpoint(session, endpoint_id, lock=lock)
    except service.EndpointNotFound as exc:
        raise Problem(404, str(exc)) from None


@router.get("/event-types", summary="The event catalogue: every notice type with its schema and an example",
            response_model=list[EventType], response_model_by_alias=True)
def event_types(hub: HubDep, _: Admin) -> list[EventType]:
    return [EventType(name=t.name, version=t.version, description=t.description, schema=t.json_schema(),
                      example=dict(t.example)) for t in hub.notices.latest()]


@router.get("", summary="Webhook endpoints", response_model=list[EndpointPublic])
def list_endpoints(session: SessionDep, _: Admin) -> list[EndpointPublic]:
    rows = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    return [EndpointPublic(**public(e)) for e in rows]


@router.post("", status_code=201, summary="Add an endpoint; the answer holds its secret, shown only once",
             response_model=EndpointCreated, responses={422: {"description": "Unsafe URL or unknown event type"}})
def create(body: EndpointIn, hub: HubDep, session: SessionDep, principal: Admin) -> EndpointCreated:
    try:
        endpoint, secret = service.create_endpoint(session, hub=hub, actor=principal, url=body.url,
                                                   event_types=body.event_types, description=body.description,
                                                   ordered=body.ordered)
    except (UnsafeUrl, FieldError) as exc:
        raise _refused(exc) from None
    session.commit()
    return EndpointCreated(**public(endpoint), secret=secret)


@router.get("/{endpoint_id}", summary="One endpoint", response_model=EndpointPublic,
            responses={404: {"description": "No such endpoint"}})
def get_one(endpoint_id: int, session: SessionDep, _: Admin) -> EndpointPublic:
    return EndpointPublic(**public(_endpoint(session, endpoint_id)))


@router.patch("/{endpoint_id}", summary="Change an endpoint, pause or resume it", response_model=EndpointPublic,
              responses={404: {"description": "No such endpoint"}, 422: {"description": "Invalid change"}})
def patch(endpoint_id: int, body: EndpointPatch, hub: HubDep, session: SessionDep, principal: Admin) -> EndpointPublic:
    endpoint = _endpoint(session, endpoint_id, lock=True)
    if body.status == EndpointStatus.DISABLED:
        raise Problem(422, "Endpoints are disabled by the hub; pause one instead.", slug="validation",
                      errors=[{"field": "status", "in": "body", "message": "use paused"}])
    try:
        service.update_endpoint(session, hub=hub, actor=principal, endpoint=endpoint, url=body.url,
                                event_types=body.event_types, description=body.description, ordered=body.ordered)
    except (UnsafeUrl, FieldError) as exc:
        raise _refused(exc) from None
    if body.status is not None:
        service.set_status(session, actor=principal, endpoint=endpoint, status=body.status)
    session.commit()
    return EndpointPublic(**public(endpoint))


@router.post("/{endpoint_id}/rotate-secret", summary="A new secret; the old one keeps signing for the overlap",
             response_model=Secret, responses={404: {"description": "No such endpoint"}})
def rotate(endpoint_id: int, body: RotateIn, hub: HubDep, session: SessionDep, principal: Admin) -> Secret:
    endpoint = _endpoint(session, endpoint_id, lock=True)
    secret = service.rotate_secret(session, hub=hub, actor=principal, endpoint=endpoint, overlap_hours=body.overlap_hours)
    session.commit()
    return Secret(secret=secret, previous_secret_until=endpoint.previous_secret_until)


@router.delete("/{endpoint_id}", status_code=204, summary="Delete an endpoint with its delivery log",
               responses={404: {"description": "No such endpoint"}})
def remove(endpoint_id: int, session: SessionDep, principal: Admin) -> None:
    service.delete_endpoint(session, actor=principal, endpoint=_endpoint(session, endpoint_id, lock=True))
    session.commit()


@router.post("/{endpoint_id}/test", status_code=202, summary="Send a webhook.test notice to this endpoint",
             response_model=Queued, responses={404: {"description": "No such endpoint"}})
def test(endpoint_id: int, hub: HubDep, session: SessionDep, principal: Admin) -> Queued:
    delivery_id = service.send_test(session, hub=hub, actor=principal, endpoint=_endpoint(session, endpoint_id))
    session.commit()
    return Queued(delivery_id=delivery_id)


def _delivery_rows(session: Any, endpoint_id: int, *, status: str | None, before: int | None, limit: int) -> list[Any]:
    D, M = WebhookDelivery, WebhookMessage
    stmt = (select(D.id, M.message_id, M.type, D.subject, D.status, D.attempts, D.next_attempt_at, D.last_status_code,
                   D.last_latency_ms, D.last_error, D.delivered_at, D.created_at, M.payload)
            .join(M, M.id == D.message_id).where(D.endpoint_id == endpoint_id))
    if status:
        stmt = stmt.where(D.status == status)
    if before is not None:
        stmt = stmt.where(D.id < before)
    return list(session.execute(stmt.order_by(D.id.desc()).limit(limit)).all())


def delivery_public(row: Any) -> dict[str, Any]:
    return dict(id=row.id, message_id=row.message_id, type=row.type, subject=row.subject, status=row.status,
                attempts=row.attempts, next_attempt_at=row.next_attempt_at if row.status == "queued" else None,
                last_status_code=row.last_status_code, last_latency_ms=row.last_latency_ms, last_error=row.last_error,
                delivered_at=row.delivered_at, created_at=row.created_at)


@router.get("/{endpoint_id}/deliveries", summary="The endpoint's delivery log, newest first", response_model=DeliveryPage,
            responses={404: {"description": "No such endpoint"}})
def deliveries(endpoint_id: int, session: SessionDep, _: Admin,
               status: Annotated[str | None, Query(pattern="^(queued|sending|delivered|failed|cancelled)$")] = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: str | None = None) -> DeliveryPage:
    _endpoint(session, endpoint_id)
    before = None
    if cursor:
        parts = decode_cursor(cursor)
        if len(parts) != 1 or not isinstance(parts[0], int) or isinstance(parts[0], bool):
            raise Problem(400, "The cursor is not one this API issued; start again without it.", slug="invalid-cursor")
        before = parts[0]
    rows = _delivery_rows(session, endpoint_id, status=status, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(items=[DeliveryPublic(**delivery_public(r)) for r in rows],
                        next_cursor=encode_cursor(rows[-1].id) if more else None)


@router.get("/{endpoint_id}/deliveries/{delivery_id}", summary="One delivery with its body and every attempt",
            response_model=DeliveryDetail, responses={404: {"description": "No such endpoint or delivery"}})
def delivery_detail(endpoint_id: int, delivery_id: int, session: SessionDep, _: Admin) -> DeliveryDetail:
    _endpoint(session, endpoint_id)
    rows = [r for r in _delivery_rows(session, endpoint_id, status=None, before=delivery_id + 1, limit=1) if r.id == delivery_id]
    if not rows:
        raise Problem(404, f"endpoint {endpoint_id} has no delivery {delivery_id}")
    log = session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                          .order_by(WebhookAttempt.id.desc()).limit(100))
    return DeliveryDetail(**delivery_public(rows[0]), payload=rows[0].payload,
                          log=[AttemptPublic(attempt=a.attempt, at=a.at, status_code=a.status_code, latency_ms=a.latency_ms,
                                             response=a.response, error=a.error) for a in log])


@router.post("/{endpoint_id}/deliveries/{delivery_id}/replay", status_code=202, summary="Send one delivery again",
             response_model=Queued, responses={404: {"description": "No such endpoint or delivery"},
                                               409: {"description": "It is being sent right now"}})
def replay_one(endpoint_id: int, delivery_id: int, hub: HubDep, session: SessionDep, principal: Admin) -> Queued:
    endpoint = _endpoint(session, endpoint_id)
    try:
        done = service.replay_delivery(session, hub=hub, actor=principal, endpoint=endpoint, delivery_id=delivery_id)
    except LookupError as exc:
        raise Problem(404, str(exc)) from None
    if not done:
        raise Problem(409, "This delivery is being sent right now; replay it once it is done.")
    session.commit()
    return Queued(delivery_id=delivery_id)


@router.post("/{endpoint_id}/replay", status_code=202, summary="Send again every message since a time",
             response_model=Count, responses={404: {"description": "No such endpoint"}})
def replay_since(endpoint_id: int, body: ReplayIn, hub: HubDep, session: SessionDep, principal: Admin) -> Count:
    endpoint = _endpoint(session, endpoint_id)
    try:
        count = service.replay_since(session, hub=hub, actor=principal, endpoint=endpoint, since=body.since)
    except FieldError as exc:
        raise _refused(exc) from None
    session.commit()
    return Count(count=count)
