"""Calls agents make or take outside the voice webhook: logged by hand, or placed with click-to-call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from channels.phone.calls import (
    CHANNEL,
    CallOutcome,
    describe,
    record_facts,
    thread_key,
)
from channels.phone.twiml import bridge
from channels.twilio_common.numbers import NumberRefused, choose_number
from hub import audit, clock
from hub.auth import Principal
from hub.event_updates import complete_event
from hub.identities import InvalidIdentity, normalize_phone
from hub.ingest import InboundEvent, get_contact, post_event
from hub.models import Direction, Task, TimelineEvent
from hub.tasks import create_task


class FollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    due_at: AwareDatetime | None = None
    assignee_id: int | None = None
    notes: str | None = Field(default=None, max_length=10_000)


class ManualCall(BaseModel):
    """The body of POST /channels/phone/calls: a call made or taken on any phone."""

    model_config = ConfigDict(extra="forbid")

    contact_id: int
    direction: Literal["in", "out"]
    outcome: CallOutcome
    occurred_at: AwareDatetime | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)
    number: str | None = Field(default=None, max_length=50, description="The other party's number")
    notes: str | None = Field(default=None, max_length=20_000)
    follow_up: FollowUp | None = None
    client_id: str | None = Field(default=None, max_length=100, description="Your id for this entry; a retry logs it once")


class CallRefused(ValueError):
    """Input the checks refuse; `field` names it, `status` is the HTTP answer."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422, slug: str = "validation") -> None:
        super().__init__(message)
        self.field, self.status, self.slug = field, status, slug


@dataclass(frozen=True)
class LoggedCall:
    event: TimelineEvent
    task: Task | None
    created: bool


def log_call(session: Session, *, call: ManualCall, actor: Principal) -> LoggedCall:
    """Put a hand-logged call on the contact's timeline, with an optional follow-up task."""
    hub = session.info["hub"]
    contact = get_contact(session, call.contact_id)
    now = clock.now()
    if call.occurred_at is not None and call.occurred_at > now + timedelta(minutes=5):
        raise CallRefused("a logged call cannot be in the future", field="occurred_at")
    number = None
    if call.number:
        try:
            number = normalize_phone(call.number, hub.settings.default_region)
        except InvalidIdentity as exc:
            raise CallRefused(str(exc), field="number") from None
    inbound = call.direction == "in"
    data = {"source": "manual", "direction": call.direction, "outcome": call.outcome.value,
            "duration_seconds": call.duration_seconds, "logged_by": actor.actor,
            "from": number if inbound else None, "to": None if inbound else number}
    if call.outcome == CallOutcome.ANSWERED:
        data["answered"] = True
    external_id = f"manual:{actor.actor}:{call.client_id}" if call.client_id else f"manual:{uuid.uuid4().hex}"
    result = post_event(session, event=InboundEvent(
        channel=CHANNEL,
        kind="call",
        direction=Direction.IN if inbound else Direction.OUT,
        external_id=external_id,
        occurred_at=call.occurred_at or now,
        contact_id=contact.id,
        subject="Incoming call" if inbound else "Outgoing call",
        text="\n\n".join(filter(None, [describe(data), call.notes])),
        status=call.outcome.value,
        data={**data, "notes": call.notes},
        actor_user_id=actor.user_id,
    ))
    if not result.created:
        return LoggedCall(event=result.event, task=None, created=False)
    task = None
    if call.follow_up is not None:
        try:
            task = create_task(session, actor=actor, title=call.follow_up.title, notes=call.follow_up.notes,
                               due_at=call.follow_up.due_at, assignee_id=call.follow_up.assignee_id or actor.user_id,
                               contact_id=contact.id)
        except ValueError as exc:
            raise CallRefused(str(exc), field=f"follow_up.{getattr(exc, 'field', 'title')}") from None
        task.source_event_id = result.event.id
        complete_event(session, result.event, task_id=task.id)
    audit.record(session, actor=actor, action="call.logged", entity="timeline_event", entity_id=result.event.id,
                 contact_id=contact.id, changes={"outcome": call.outcome.value, "direction": call.direction,
                                                 "task_id": task.id if task else None})
    return LoggedCall(event=result.event, task=task, created=True)


class DialRequest(BaseModel):
    """The body of POST /channels/phone/dial: ring my phone, then connect me to the contact."""

    model_config = ConfigDict(extra="forbid")

    contact_id: int
    to: str | None = Field(default=None, max_length=50, description="One of the contact's numbers; default: the primary one")


def prepare_dial(session: Session, *, request: DialRequest, actor: Principal) -> tuple[TimelineEvent, str, str]:
    """Post the outgoing call's event before Twilio hears of it; (event, agent's line, customer number)."""
    hub = session.info["hub"]
    channel = hub.channel(CHANNEL)
    settings = channel.settings
    if not channel.configured or not settings.caller_id:
        raise CallRefused("phone calls are not configured: set account_sid, auth_token and caller_id under "
                          "[channels.phone]", status=409, slug="channel-not-configured")
    line = settings.line_of(actor.user_id)
    if line is None:
        raise CallRefused("you have no phone line: add yourself to [channels.phone] agents with a number or client",
                          status=409, slug="no-phone-line")
    contact = get_contact(session, request.contact_id)
    try:
        customer = choose_number(session, contact_id=contact.id, given=request.to,  # type: ignore[arg-type]
                                 region=hub.settings.default_region)
    except InvalidIdentity as exc:
        raise CallRefused(str(exc), field="to") from None
    except NumberRefused as exc:
        raise CallRefused(str(exc), field=exc.field) from None
    ref = f"dial:{uuid.uuid4().hex}"
    data = {"direction": "out", "from": settings.caller_id, "to": customer, "agent_user_id": actor.user_id,
            "agent_label": line.label or None, "twilio_direction": "outbound-api", "call_status": "queued",
            "outcome": None}
    result = post_event(session, event=InboundEvent(
        channel=CHANNEL, kind="call", direction=Direction.OUT, external_id=ref, contact_id=contact.id,
        subject="Outgoing call", text=describe(data), thread_key=thread_key(settings.caller_id, customer),
        status="queued", data=data, actor_user_id=actor.user_id,
    ))
    return result.event, line.target or "", customer


def place_call(channel: object, *, ref: str, agent_target: str, customer: str) -> str:
    """Ask Twilio to ring the agent and bridge to the customer; the CallSid. Raises the SDK's errors."""
    settings = channel.settings  # type: ignore[attr-defined]
    url_for = channel.public_url  # type: ignore[attr-defined]
    call = channel.api.client().calls.create(  # type: ignore[attr-defined]
        to=agent_target,
        from_=settings.caller_id,
        twiml=bridge(settings, customer=customer, ref=ref, url_for=url_for),
        status_callback=url_for(f"/status?ref={ref}"),
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        timeout=settings.ring_timeout_seconds,
    )
    return call.sid


def dial_failed(session: Session, *, ref: str, reason: str) -> None:
    record_facts(session, external_id=ref, facts={"call_status": "failed", "error": reason})

