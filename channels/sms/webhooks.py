"""SMS routes under /channels/sms: Twilio's webhooks (signed) and the agents' compose API.

The two webhooks are hub.inbound routes: the hub checks the signature, writes in one transaction
and answers; this module gives the keyword and 21610 hooks that run in that transaction. They
answer as soon as the event is committed: no calls out, so Twilio's 15-second limit is never near.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from channels.sms.compose import SmsDraft, SmsRefused, compose_sms
from channels.sms.intent import CONFIRMATIONS, Intent
from channels.twilio_common.keywords import Keyword
from channels.sms.optout import apply_keyword, open_opt_out_review, opted_out_by_provider
from channels.sms.parsing import E164, error_code, parse_message, parse_status
from channels.twilio_common import TwilioChannel
from channels.twilio_common.segments import count_segments
from channels.twilio_common.api import OPTED_OUT
from channels.twilio_common.signature import FormParams
from hub.api.deps import CurrentPrincipal, HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.inbound import Received, Webhook, mount

if TYPE_CHECKING:
    from channels.sms import SmsChannel


def keywords(session: Session, received: Received) -> str | None:
    """After an inbound SMS is written, in its transaction: an opt-out or opt-in updates consent.

    Returns the reply to send back, if any: the one confirmation of an opt-out that Twilio did not
    recognise itself (its exact keywords it confirms on its own).
    """
    [result] = received.events
    event = result.event
    data = event.data or {}
    sender = data.get("from")
    if not result.created or not isinstance(sender, str) or not E164.match(sender):
        return None
    word = data.get("keyword")
    body = (event.text or "").strip()
    verdict = data.get("opt_out")
    reply = None
    if word:
        source = (f"sms keyword {body.upper()}" if verdict is None
                  else f"sms opt-out {verdict['matched']} in words: {body}")
        # The source column holds 200 characters; the whole message is the consent's wording.
        apply_keyword(session, contact_id=result.contact.id, number=sender, word=Keyword(word), body=body,  # type: ignore[arg-type]
                      source=f"{source[:160]} ({event.external_id})")
    if verdict is not None and word == Keyword.OPT_OUT:
        reply = CONFIRMATIONS[verdict["language"]]
        event.data = {**data, "opt_out": {**verdict, "confirmation": reply}}
    elif verdict is not None and verdict["intent"] == Intent.POSSIBLE:
        hub = session.info["hub"]
        task = open_opt_out_review(session, contact=result.contact, body=body, event_id=event.id,  # type: ignore[arg-type]
                                   locale=hub.settings.default_locale)
        event.data = {**data, "opt_out": {**verdict, "task_id": task.id}}
    return reply


def provider_opt_out(session: Session, received: Received) -> None:
    """After a status callback: Twilio's error 21610 (the number replied STOP) withdraws consent."""
    params: FormParams = received.payload
    number = params.get("To")
    if error_code(params) == OPTED_OUT and isinstance(number, str):
        [(update, _changed)] = received.statuses
        opted_out_by_provider(session, number=number, contact_id=None,
                              source=f"twilio error 21610 ({update.provider_id})")


def _reply(received: Received) -> Response:
    if received.extra is None:
        return TwilioChannel.twiml()
    # A TwiML reply: Twilio sends it from the number the customer wrote to, no API call needed.
    response = MessagingResponse()
    response.message(received.extra)
    return TwilioChannel.twiml(str(response))


def _inbound(channel: SmsChannel) -> Webhook:
    return Webhook(path="/inbound", summary="Twilio webhook: an SMS or MMS came in", verify=channel.verified_form,
                   parse=lambda params: [parse_message(params.as_dict())], after=keywords, answer=_reply,
                   expects="Not an inbound Twilio message")


def _status(channel: SmsChannel) -> Webhook:
    return Webhook(path="/status", summary="Twilio webhook: a sent message's status changed",
                   verify=channel.verified_form, parse=lambda params: [parse_status(params.as_dict())],
                   after=provider_opt_out, answer=lambda _received: TwilioChannel.twiml(),
                   expects="Not a Twilio status callback")


class SegmentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=20_000)


def build_router(channel: SmsChannel) -> APIRouter:
    router = APIRouter()

    mount(router, channel, _inbound(channel))
    mount(router, channel, _status(channel))

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
