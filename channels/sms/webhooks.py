"""SMS routes under /channels/sms: Twilio's webhooks (signed) and the agents' compose API.

Webhooks answer as soon as the event is committed: one short transaction, no calls out, so
Twilio's 15-second limit is never near; anything slow (a reply, say) would go through the outbox.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from twilio.twiml.messaging_response import MessagingResponse

from channels.sms.compose import SmsDraft, SmsRefused, compose_sms
from channels.sms.intent import CONFIRMATIONS, Intent
from channels.twilio_common.keywords import Keyword
from channels.sms.optout import apply_keyword, open_opt_out_review, opted_out_by_provider
from channels.sms.parsing import E164, error_code, parse_message, parse_status
from channels.twilio_common.segments import count_segments
from channels.twilio_common.api import OPTED_OUT
from channels.twilio_common.signature import FormParams
from hub.api.deps import CurrentPrincipal, HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.ingest import IngestResult, post_event
from hub.outbox import apply_status

if TYPE_CHECKING:
    from channels.sms import SmsChannel

log = logging.getLogger("channels.sms")


def receive_message(channel: SmsChannel, params: FormParams) -> tuple[IngestResult, str | None]:
    """Record an inbound SMS/MMS once; an opt-out or opt-in updates consent in the same commit.

    Also the reply to send back, if any: the one confirmation of an opt-out that Twilio did not
    recognise itself (its exact keywords it confirms on its own).
    """
    event = parse_message(params.as_dict())
    reply = None
    with channel.hub.session() as session, session.begin():
        result = post_event(session, event=event)
        word = event.data.get("keyword")
        sender = event.data["from"]
        if not result.created or not E164.match(sender):
            return result, None
        body = (event.text or "").strip()
        verdict = event.data.get("opt_out")
        if word:
            source = (f"sms keyword {body.upper()}" if verdict is None
                      else f"sms opt-out {verdict['matched']} in words: {body}")
            # The source column holds 200 characters; the whole message is the consent's wording.
            apply_keyword(session, contact_id=result.contact.id, number=sender, word=Keyword(word), body=body,  # type: ignore[arg-type]
                          source=f"{source[:160]} ({event.external_id})")
        if verdict is not None and word == Keyword.OPT_OUT:
            reply = CONFIRMATIONS[verdict["language"]]
            result.event.data = {**result.event.data, "opt_out": {**verdict, "confirmation": reply}}
        elif verdict is not None and verdict["intent"] == Intent.POSSIBLE:
            task = open_opt_out_review(session, contact=result.contact, body=body, event_id=result.event.id,  # type: ignore[arg-type]
                                       locale=channel.hub.settings.default_locale)
            result.event.data = {**result.event.data, "opt_out": {**verdict, "task_id": task.id}}
    return result, reply


def receive_status(channel: SmsChannel, params: FormParams) -> bool:
    """Move the delivery forward (or keep the callback until the send is recorded)."""
    update = parse_status(params.as_dict())
    with channel.hub.session() as session, session.begin():
        changed = apply_status(session, channel="sms", update=update)
        number = params.get("To")
        if error_code(params) == OPTED_OUT and isinstance(number, str):
            opted_out_by_provider(session, number=number, contact_id=None,
                                  source=f"twilio error 21610 ({update.provider_id})")
    return changed


class SegmentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=20_000)


def build_router(channel: SmsChannel) -> APIRouter:
    router = APIRouter()

    @router.post("/inbound", summary="Twilio webhook: an SMS or MMS came in", response_class=Response)
    async def inbound(request: Request) -> Response:
        params = await channel.signed_params(request)
        try:
            result, reply = await channel.in_thread(receive_message, channel, params)
        except ValueError as exc:
            raise Problem(400, f"Not an inbound Twilio message: {exc}") from None
        log.info("sms %s from contact %s (%s)", result.event.external_id, result.contact.id,
                 "new" if result.created else "replayed")
        if reply is None:
            return channel.twiml()
        # A TwiML reply: Twilio sends it from the number the customer wrote to, no API call needed.
        response = MessagingResponse()
        response.message(reply)
        return channel.twiml(str(response))

    @router.post("/status", summary="Twilio webhook: a sent message's status changed", response_class=Response)
    async def status(request: Request) -> Response:
        params = await channel.signed_params(request)
        try:
            await channel.in_thread(receive_status, channel, params)
        except ValueError as exc:
            raise Problem(400, f"Not a Twilio status callback: {exc}") from None
        return channel.twiml()

    @router.post("/segments", summary="Count the SMS parts a text takes (the compose box's counter)")
    def segments(body: SegmentsIn, principal: CurrentPrincipal) -> dict[str, Any]:
        return count_segments(body.text).as_dict()

    @router.post("/messages", status_code=202, summary="Queue an SMS from an agent to a contact")
    def send_message(
        draft: SmsDraft,
        hub: HubDep,
        session: SessionDep,
        principal: Annotated[Principal, Depends(require("timeline:write"))],
    ) -> dict[str, Any]:
        try:
            queued = compose_sms(session, draft=draft, actor=principal)
        except SmsRefused as exc:
            raise Problem(exc.status, str(exc), slug=exc.slug) from None
        session.commit()
        return {
            "delivery_id": queued.delivery.id,
            "event_id": queued.delivery.event_id,
            "status": queued.delivery.status,
            "to": queued.delivery.address,
            "segments": queued.segments.as_dict(),
        }

    return router
