"""Phone routes under /channels/phone: Twilio's voice webhooks (signed) and the agents' call API.

Twilio routes, in the order a call meets them:
  /voice           the number's "a call comes in" webhook: post the event, pop the card, answer TwiML
  /voice/next      each ring's outcome (Dial action): answered, or ring the next line / voicemail
  /voice/voicemail the voicemail's end (Record action)
  /voice/bridged   the customer leg of a click-to-call (Dial action)
  /status          call status callbacks          /recording   recording status callbacks
Each does one short transaction and answers; nothing calls out while Twilio waits.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from requests import RequestException
from twilio.base.exceptions import TwilioException

from channels.phone import twiml
from channels.phone.calls import call_sid, call_started, parse_call, record_facts
from channels.phone.service import (
    CallRefused,
    DialRequest,
    ManualCall,
    dial_failed,
    log_call,
    place_call,
    prepare_dial,
)
from channels.twilio_common.signature import FormParams
from hub import clock
from hub.api.deps import HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.models import Direction

if TYPE_CHECKING:
    from channels.phone import PhoneChannel

log = logging.getLogger("channels.phone")
TimelineWriter = Annotated[Principal, Depends(require("timeline:write"))]


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _ensure_event(channel: PhoneChannel, session: Any, params: FormParams) -> str:
    """The call's event id: the CallSid, posting the event first if no earlier webhook did."""
    call_started(session, event=parse_call(params.as_dict()))
    return call_sid(params)


def incoming_call(channel: PhoneChannel, params: FormParams) -> str:
    """Post the ringing call (a new caller becomes a contact), pop it, and say how to route it."""
    event = parse_call(params.as_dict())
    if event.direction != Direction.IN:
        raise ValueError("the voice webhook takes inbound calls; outgoing calls carry their own TwiML")
    with channel.hub.session() as session, session.begin():
        result = call_started(session, event=event)
    log.info("call %s from contact %s (%s)", event.external_id, result.contact.id,
             "new contact" if result.contact_created else "known")
    return twiml.answer(channel.settings, now=clock.now(), default_zone=channel.hub.settings.default_timezone,
                        url_for=channel.public_url)


def ring_outcome(channel: PhoneChannel, params: FormParams, step: int) -> str:
    """A line rang out or answered; record it, then hang up (answered) or ring on."""
    lines = channel.settings.ring_order
    line = lines[step - 1] if 0 < step <= len(lines) else None
    dial_status = str(params.get("DialCallStatus") or "")
    facts: dict[str, Any] = {"dial_status": dial_status, "rung": step}
    if dial_status == "completed":
        facts.update(answered=True, answered_by=line.target if line else None,
                     agent_user_id=line.user_id if line else None, agent_label=(line.label or None) if line else None,
                     talk_seconds=_int(params.get("DialCallDuration")))
    with channel.hub.session() as session, session.begin():
        record_facts(session, external_id=_ensure_event(channel, session, params), facts=facts)
    if dial_status == "completed":
        return twiml.hang_up()
    return twiml.ring(channel.settings, step=step, url_for=channel.public_url)


def voicemail_left(channel: PhoneChannel, params: FormParams) -> str:
    seconds = _int(params.get("RecordingDuration")) or 0
    facts: dict[str, Any] = {}
    if seconds > 0 and params.get("RecordingSid") and params.get("RecordingUrl"):
        facts = {"voicemail": True, "voicemail_seconds": seconds,
                 "recording": {"sid": params["RecordingSid"], "url": params["RecordingUrl"], "seconds": seconds,
                               "source": "voicemail"}}
    with channel.hub.session() as session, session.begin():
        record_facts(session, external_id=_ensure_event(channel, session, params), facts=facts)
    return twiml.hang_up()


def bridged(channel: PhoneChannel, params: FormParams, ref: str) -> str:
    dial_status = str(params.get("DialCallStatus") or "")
    facts: dict[str, Any] = {"dial_status": dial_status, "call_sid": call_sid(params)}
    if dial_status == "completed":
        facts.update(answered=True, talk_seconds=_int(params.get("DialCallDuration")))
    with channel.hub.session() as session, session.begin():
        record_facts(session, external_id=ref, facts=facts)
    return twiml.hang_up()


def status_changed(channel: PhoneChannel, params: FormParams, ref: str | None) -> None:
    status = str(params.get("CallStatus") or "").lower()
    facts = {"call_status": status, "duration_seconds": _int(params.get("CallDuration"))}
    with channel.hub.session() as session, session.begin():
        external_id = ref or _ensure_event(channel, session, params)
        if record_facts(session, external_id=external_id, facts=facts) is None:
            log.warning("status callback for unknown call %s", external_id)


def recording_ready(channel: PhoneChannel, params: FormParams, ref: str | None) -> None:
    if str(params.get("RecordingStatus") or "completed") != "completed":
        return
    sid, url = params.get("RecordingSid"), params.get("RecordingUrl")
    if not sid or not url:
        raise ValueError("a recording callback needs RecordingSid and RecordingUrl")
    seconds = _int(params.get("RecordingDuration")) or 0
    voicemail = params.get("RecordingSource") == "RecordVerb"
    facts: dict[str, Any] = {"recording": {"sid": sid, "url": url, "seconds": seconds,
                                           "source": "voicemail" if voicemail else "call"}}
    if voicemail and seconds > 0:
        facts.update(voicemail=True, voicemail_seconds=seconds)
    with channel.hub.session() as session, session.begin():
        external_id = ref or call_sid(params)
        if record_facts(session, external_id=external_id, facts=facts) is None:
            log.warning("recording %s for unknown call %s", sid, external_id)


def _ref(request: Request) -> str | None:
    ref = request.query_params.get("ref")
    if ref is not None and not (ref.startswith("dial:") and 5 < len(ref) <= 100):
        raise Problem(400, "ref must be a dial reference the hub issued")
    return ref


def build_router(channel: PhoneChannel) -> APIRouter:
    router = APIRouter()

    async def run(request: Request, func: Any, *args: Any) -> Any:
        params = await channel.signed_params(request)
        try:
            return await channel.in_thread(func, channel, params, *args)
        except ValueError as exc:
            raise Problem(400, f"Not a Twilio voice webhook this route takes: {exc}") from None

    @router.post("/voice", summary="Twilio webhook: a call comes in", response_class=Response)
    async def voice(request: Request) -> Response:
        return channel.twiml(await run(request, incoming_call))

    @router.post("/voice/next", summary="Twilio webhook: a ring ended (Dial action)", response_class=Response)
    async def voice_next(request: Request, step: int) -> Response:
        if step < 1:
            raise Problem(400, "step starts at 1")
        return channel.twiml(await run(request, ring_outcome, step))

    @router.post("/voice/voicemail", summary="Twilio webhook: a voicemail ended (Record action)",
                 response_class=Response)
    async def voice_voicemail(request: Request) -> Response:
        return channel.twiml(await run(request, voicemail_left))

    @router.post("/voice/bridged", summary="Twilio webhook: a click-to-call's customer leg ended",
                 response_class=Response)
    async def voice_bridged(request: Request) -> Response:
        ref = _ref(request)
        if ref is None:
            raise Problem(400, "ref is required")
        return channel.twiml(await run(request, bridged, ref))

    @router.post("/status", summary="Twilio webhook: a call's status changed", response_class=Response)
    async def status(request: Request) -> Response:
        await run(request, status_changed, _ref(request))
        return channel.twiml()

    @router.post("/recording", summary="Twilio webhook: a recording is ready", response_class=Response)
    async def recording(request: Request) -> Response:
        await run(request, recording_ready, _ref(request))
        return channel.twiml()

    @router.post("/calls", status_code=201, summary="Log a call made or taken on any phone")
    def log_manual_call(call: ManualCall, session: SessionDep, principal: TimelineWriter) -> dict[str, Any]:
        try:
            logged = log_call(session, call=call, actor=principal)
        except CallRefused as exc:
            raise Problem(exc.status, str(exc), slug=exc.slug, **({"field": exc.field} if exc.field else {})) from None
        session.commit()
        return {"event_id": logged.event.id, "task_id": logged.task.id if logged.task else None,
                "created": logged.created, "outcome": logged.event.status}

    @router.post("/dial", status_code=202, summary="Ring my phone, then connect me to the contact")
    def dial(body: DialRequest, hub: HubDep, session: SessionDep, principal: TimelineWriter) -> dict[str, Any]:
        try:
            event, agent_target, customer = prepare_dial(session, request=body, actor=principal)
        except CallRefused as exc:
            raise Problem(exc.status, str(exc), slug=exc.slug) from None
        session.commit()  # the event exists before Twilio's first callback can name it
        ref = event.external_id
        try:
            sid = place_call(channel, ref=ref, agent_target=agent_target, customer=customer)
        except (TwilioException, RequestException) as exc:
            with hub.session() as failed, failed.begin():
                dial_failed(failed, ref=ref, reason=str(exc))
            raise Problem(502, f"Twilio did not place the call: {exc}", slug="provider-error") from None
        with hub.session() as placed, placed.begin():
            record_facts(placed, external_id=ref, facts={"call_sid": sid})
        return {"event_id": event.id, "call_sid": sid, "to": customer}

    return router
