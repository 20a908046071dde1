"""SMS through Twilio: sends from the outbox, inbound SMS/MMS and status callbacks, STOP/START."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter
from twilio.base.exceptions import TwilioRestException

from hub.channel import (
    Capability,
    ChannelLimits,
    ContentPart,
    MarketingContext,
    OutboundMessage,
    PermanentSendError,
    SendResult,
)
from channels.sms.parsing import parse_message
from channels.twilio_common.segments import MAX_BODY_CHARS, count_segments
from channels.sms.settings import SmsSettings
from channels.twilio_common import TwilioChannel
from channels.twilio_common.api import OPTED_OUT, send_error
from hub.ingest import InboundEvent
from hub.models import DeliveryStatus
from hub.plugin import EventKind, TimelineChannel
from hub.translatable import N_
from hub.web.i18n import package_translations

log = logging.getLogger("channels.sms")

OPT_OUT = N_("Reply STOP to opt out")


class SmsChannel(TwilioChannel):
    name = "sms"
    label = "SMS"
    timeline_channels = (TimelineChannel("sms", N_("SMS"), "sms"),)
    event_kinds = (EventKind("sms", N_("SMS")),)
    capabilities = frozenset({Capability.SEND, Capability.RECEIVE, Capability.STATUS})
    limits = ChannelLimits(max_body_chars=MAX_BODY_CHARS, delivery_receipts=True)
    parts = (ContentPart("text", N_("Text"), max_chars=MAX_BODY_CHARS, missing=N_("an SMS needs its text")),)
    Settings = SmsSettings
    identity_kind = "phone"  # hub.channel_hooks: a delivery goes to the contact's phone identity
    # Twilio queues per sender anyway; a few parallel API calls keep a campaign moving.
    concurrency = 8
    setup_example = {"account_sid": "AC" + "0" * 32, "auth_token": "your-auth-token", "from_number": "+15005550006"}

    settings: SmsSettings

    @property
    def configured(self) -> bool:
        return super().configured and bool(self.settings.sender)

    def missing_settings(self) -> list[str]:
        return super().missing_settings() + ([] if self.settings.sender else ["from_number"])

    def test_message(self, address: str) -> OutboundMessage:
        from hub.identities import InvalidIdentity, normalize_phone

        try:
            number = normalize_phone(address, self.hub.settings.default_region)
        except InvalidIdentity as exc:
            raise ValueError(str(exc)) from None
        return self._test_message(number, {"text": "A test from the hub: SMS works."})

    @staticmethod
    def parse(payload: Any) -> Sequence[InboundEvent]:
        return [parse_message(payload)]

    def router(self) -> APIRouter:
        from channels.sms.webhooks import build_router

        return build_router(self)

    def web_router(self) -> APIRouter:
        from channels.sms.panel import build_router

        return build_router()

    def decorate_marketing(self, content: dict[str, Any], context: MarketingContext) -> dict[str, Any]:
        """The STOP wording under the text, in the contact's language (STOP is what Twilio honours)."""
        code = "en" if context.locale.lower().startswith("en") else "ru"
        wording = package_translations(code, "sms").gettext(OPT_OUT)
        text = (content.get("text") or "").rstrip()
        if wording and wording not in text:
            content["text"] = f"{text}\n{wording}" if text else wording
        return content

    def validate_content(self, content: Mapping[str, Any]) -> None:
        super().validate_content(content)
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("an SMS needs a text")

    async def send(self, message: OutboundMessage) -> SendResult:
        if not self.configured:
            raise PermanentSendError("SMS is not configured: set account_sid, auth_token and a sender "
                                     "under [channels.sms]")
        text = str(message.content.get("text") or "")
        segments = count_segments(text)
        if not text.strip():
            raise PermanentSendError("an SMS needs a text")
        if segments.over_limit:
            raise PermanentSendError(f"the body has {segments.characters} characters; "
                                     f"Twilio takes at most {MAX_BODY_CHARS}")
        params: dict[str, Any] = {
            "to": message.address,
            "body": text,
            "status_callback": self.public_url("/status"),
        }
        if self.settings.messaging_service_sid:
            params["messaging_service_sid"] = self.settings.messaging_service_sid
        else:
            params["from_"] = self.settings.from_number
        created = await asyncio.to_thread(self._create, message, params)
        return SendResult(
            provider_id=created.sid,
            status=DeliveryStatus.SENT,
            detail=f"twilio {created.status}; {segments.segments} {segments.encoding} segment(s)",
        )

    def _create(self, message: OutboundMessage, params: dict[str, Any]) -> Any:
        """The SDK call (in a worker thread); a 21610 also withdraws consent before it is reported."""
        try:
            return self.api.client().messages.create(**params)
        except Exception as exc:
            error = send_error(exc, self.api.last_headers())
            if isinstance(exc, TwilioRestException) and exc.code == OPTED_OUT:
                self._record_opt_out(message)
                raise PermanentSendError(f"{message.address} opted out (replied STOP); Twilio error 21610") from exc
            raise error from exc

    def _record_opt_out(self, message: OutboundMessage) -> None:
        from channels.sms.optout import opted_out_by_provider

        try:
            with self.hub.session() as session, session.begin():
                opted_out_by_provider(session, number=message.address, contact_id=message.contact_id,
                                      source=f"twilio error 21610 (delivery {message.delivery_id})")
        except Exception:  # the send's own outcome must still be recorded
            log.exception("could not record the opt-out of %s", message.address)


__all__ = ["SmsChannel", "SmsSettings"]
