"""Twilio's messaging webhooks as the hub reads them: pure functions of the form parameters.

Two kinds arrive, told apart by their status parameter (anything else is refused):
- an inbound SMS or MMS ("received"): one timeline event, its media URLs recorded;
- a status callback for a message the hub sent (queued … delivered): a StatusUpdate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hub.channel import StatusUpdate
from channels.sms.intent import Intent, classify
from channels.twilio_common.keywords import Keyword, keyword
from hub.ingest import IdentityRef, InboundEvent
from hub.models import DeliveryStatus, Direction, IdentityKind

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SID = re.compile(r"^(SM|MM|SS)[0-9a-fA-F]{32}$")
INBOUND_STATUSES = frozenset({"received", "receiving"})
# Twilio's message statuses on the hub's forward-only ladder. Twilio's "queued" and "sending" are
# still in its hands, which the hub already calls sent once the API accepted the message.
DELIVERY_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.SENT,
    "scheduled": DeliveryStatus.SENT,
    "queued": DeliveryStatus.SENT,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
}
MAX_MEDIA = 10  # Twilio's limit per message


def _value(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"Twilio parameter {key} must be a string")
    return value


def _required(payload: Mapping[str, Any], key: str) -> str:
    value = _value(payload, key)
    if not value:
        raise ValueError(f"a Twilio messaging webhook needs {key}")
    return value


def _mapping(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ValueError("a Twilio webhook is a set of form parameters")
    return payload


def webhook_kind(payload: Any) -> str:
    """'message' or 'status'; ValueError for anything else."""
    payload = _mapping(payload)
    status = (_value(payload, "MessageStatus") or _value(payload, "SmsStatus") or "").lower()
    if status in INBOUND_STATUSES:
        return "message"
    if status in DELIVERY_STATUSES or status == "canceled":
        return "status"
    if not status:
        raise ValueError("not a Twilio messaging webhook: it has no MessageStatus or SmsStatus")
    raise ValueError(f"unknown Twilio message status {status!r}")


def thread_key(ours: str, theirs: str) -> str:
    """One SMS conversation: our sender (number or Messaging Service) and their number."""
    return f"sms:{ours}:{theirs}"


def sender_identity(number: str) -> IdentityRef:
    """A phone identity for an E.164 sender; short codes and alphanumeric senders are external ids."""
    if E164.match(number):
        return IdentityRef(kind=IdentityKind.PHONE, value=number)
    return IdentityRef(kind=IdentityKind.EXTERNAL, value=f"sms:{number}")


def media_of(payload: Mapping[str, Any]) -> list[dict[str, str | None]]:
    raw = _value(payload, "NumMedia") or "0"
    if not raw.isdigit() or int(raw) > MAX_MEDIA:
        raise ValueError(f"NumMedia must be a number from 0 to {MAX_MEDIA}")
    media = []
    for i in range(int(raw)):
        url = _value(payload, f"MediaUrl{i}")
        if not url or not url.startswith(("https://", "http://")):
            raise ValueError(f"NumMedia is {raw} but MediaUrl{i} is missing or not a URL")
        media.append({"url": url, "content_type": _value(payload, f"MediaContentType{i}")})
    return media


def parse_message(payload: Any) -> InboundEvent:
    """An inbound SMS or MMS as one timeline event (external id: the MessageSid)."""
    payload = _mapping(payload)
    if webhook_kind(payload) != "message":
        raise ValueError("this is a status callback, not an inbound message")
    sid = _value(payload, "MessageSid") or _value(payload, "SmsMessageSid") or _value(payload, "SmsSid") or ""
    if not SID.match(sid):
        raise ValueError("MessageSid is missing or is not a Twilio message SID")
    sender, recipient = _required(payload, "From"), _required(payload, "To")
    _required(payload, "AccountSid")
    body = _value(payload, "Body") or ""
    media = media_of(payload)
    ours = _value(payload, "MessagingServiceSid") or recipient
    # Twilio's own keyword (it blocks the number and confirms); otherwise the hub's reading of the words.
    word = keyword(body, _value(payload, "OptOutType"))
    verdict = classify(body) if word is None else None
    if verdict is not None and verdict.intent == Intent.OPT_OUT:
        word = Keyword.OPT_OUT
    return InboundEvent(
        channel="sms",
        kind="message",
        direction=Direction.IN,
        external_id=sid,
        identities=[sender_identity(sender)],
        text=body,
        thread_key=thread_key(ours, sender),
        status="received",
        data={
            "from": sender,
            "to": recipient,
            "messaging_service_sid": _value(payload, "MessagingServiceSid"),
            "num_segments": _value(payload, "NumSegments"),
            "media": media,
            "keyword": word.value if word else None,
            "opt_out": None if verdict is None else {
                "intent": verdict.intent.value, "language": verdict.language, "matched": verdict.reason},
            "from_country": _value(payload, "FromCountry"),
        },
    )


def parse_status(payload: Any) -> StatusUpdate:
    """A status callback as the outbox reads it; the error code (if any) is the detail."""
    payload = _mapping(payload)
    if webhook_kind(payload) != "status":
        raise ValueError("this is an inbound message, not a status callback")
    sid = _value(payload, "MessageSid") or _value(payload, "SmsSid") or ""
    if not SID.match(sid):
        raise ValueError("MessageSid is missing or is not a Twilio message SID")
    raw = (_value(payload, "MessageStatus") or _value(payload, "SmsStatus") or "").lower()
    if raw == "canceled":
        # Only the sender cancels a scheduled message, and the hub never schedules with Twilio.
        raise ValueError("a 'canceled' callback is not one the hub's sends produce")
    code = _value(payload, "ErrorCode")
    detail = None
    if code and code != "0":
        message = _value(payload, "ErrorMessage")
        detail = f"Twilio error {code}" + (f": {message}" if message else "")
    return StatusUpdate(provider_id=sid, status=DELIVERY_STATUSES[raw], detail=detail)


def error_code(payload: Mapping[str, Any]) -> int | None:
    code = _value(payload, "ErrorCode")
    return int(code) if code and code.isdigit() else None
