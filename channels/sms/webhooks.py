"""SMS routes under /channels/sms: Twilio's webhooks (signed) and the agents' compose API.

Webhooks answer as soon as the event is committed: one short transaction, no calls out, so
Twilio's 15-second limit is never near; anything slow (a reply, say) would go through the outbox.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from channels.sms.compose import SmsDraft, SmsRefused, compose_sms
from channels.sms.keywords import Keyword
from channels.sms.optout import apply_keyword, opted_out_by_provider
from channels.sms.parsing import E164, error_code, parse_message, parse_status
from channels.sms.segments import count_segments
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


def receive_message(channel: SmsChannel, params: FormParams) -> IngestResult:
    """Record an inbound SMS/MMS once; an opt-out or opt-in keyword updates consent in the same commit."""
    event = parse_message(params.as_dict())
    with channel.hub.session() as session, session.begin():
        result = post_event(session, event=event)
        word = event.data.get("keyword")
        sender = event.data["from"]
        if result.created and word and E164.match(sender):
            body = (event.text or "").strip()
            apply_keyword(session, contact_id=result.contact.id, number=sender, word=Keyword(word), body=body,  # type: ignore[arg-type]
                          source=f"sms keyword {body.upper()} ({event.external_id})")
    return result


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
            result = await channel.in_thread(receive_message, channel, params)
        except ValueError as exc:
            raise Problem(400, f"Not an inbound Twilio message: {exc}") from None
        log.info("sms %s from contact %s (%s)", result.event.external_id, result.contact.id,
                 "new" if result.created else "replayed")
        return channel.twiml()

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
