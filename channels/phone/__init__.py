"""Phone calls through Twilio (inbound routing, call events, click-to-call), hand-logged calls, PBX CDRs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter

from hub.channel import Capability, ChannelLimits
from channels.phone.calls import parse_call
from channels.phone.settings import PhoneSettings
from channels.twilio_common import TwilioChannel
from hub.ingest import InboundEvent
from hub.plugin import EventKind, TimelineChannel
from hub.translatable import N_


class PhoneChannel(TwilioChannel):
    name = "phone"
    label = "Phone"
    timeline_channels = (TimelineChannel("phone", N_("Phone"), "phone"), TimelineChannel("call", N_("Phone"), "phone"))
    event_kinds = (EventKind("call", N_("Call")), EventKind("call.incoming", N_("Incoming call")),
                   EventKind("call.completed", N_("Call")), EventKind("call.missed", N_("Missed call")))
    capabilities = frozenset({Capability.RECEIVE, Capability.STATUS})
    asks_consent = True  # agents call contacts, who may refuse calls (hub.channel_hooks.consent_channels)
    limits = ChannelLimits(max_body_chars=20_000)
    Settings = PhoneSettings

    settings: PhoneSettings
    setup_example = {"account_sid": "AC" + "0" * 32, "auth_token": "your-auth-token", "caller_id": "+15005550006"}

    def missing_settings(self) -> list[str]:
        # Without a caller id inbound calls work, but click-to-call has no number to call from.
        return super().missing_settings() + ([] if self.settings.caller_id else ["caller_id"])

    @property
    def panel_ready(self) -> bool:
        # The panel logs a call made or taken on any phone: a note of a call, not a Twilio call.
        return self.settings.enabled

    @staticmethod
    def parse(payload: Any) -> Sequence[InboundEvent]:
        return [parse_call(payload)]

    def router(self) -> APIRouter:
        from channels.phone.webhooks import build_router

        return build_router(self)

    def web_router(self) -> APIRouter:
        from channels.phone.panel import build_router

        return build_router()


__all__ = ["PhoneChannel", "PhoneSettings"]
