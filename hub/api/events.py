"""REST routes: business events in (POST /api/v1/events), the way sales reach the hub."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from hub.api.deps import SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.events import BusinessEvent, EventIdReused, InvalidBusinessEvent, record_business_event

router = APIRouter(tags=["events"])


class RecordedEventPublic(BaseModel):
    id: int
    contact_id: int
    created: bool
    type: str
    external_id: str
    occurred_at: datetime


@router.post(
    "/events",
    status_code=201,
    summary="Record a business event (an order, a refund, a subscription) on a contact's timeline",
    description=(
        "The event lands on the timeline on channel `commerce` with kind = `type`. It is idempotent on "
        "(source, event_id): the first call answers 201, a replay 200 with the same id and `created: false`. "
        "The contact is found by email, phone or external_id, and created when unknown. `order.*` types "
        "need an `order` object whose amounts are decimal strings."
    ),
    responses={200: {"model": RecordedEventPublic, "description": "A replay: already recorded"}},
)
def post_business_event(
    body: BusinessEvent,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("events:write"))],
) -> RecordedEventPublic:
    try:
        recorded = record_business_event(session, event=body, actor=principal)
    except InvalidBusinessEvent as exc:
        raise Problem(422, f"{exc.field}: {exc}", slug="validation",
                      errors=[{"field": exc.field, "in": "body", "message": str(exc), "type": "value_error"}]) from None
    except EventIdReused as exc:
        raise Problem(409, str(exc), slug="event-id-reused") from None
    session.commit()
    if not recorded.created:
        response.status_code = 200
    event = recorded.event
    return RecordedEventPublic(id=event.id, contact_id=recorded.contact_id, created=recorded.created,  # type: ignore[arg-type]
                               type=event.kind, external_id=event.external_id, occurred_at=event.occurred_at)
