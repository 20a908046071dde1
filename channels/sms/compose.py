"""An agent's SMS from the timeline: checked, then queued in the outbox with its outbound event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from channels.twilio_common.numbers import NumberRefused, choose_number
from channels.sms.optout import is_opted_out
from channels.sms.parsing import thread_key
from channels.twilio_common.segments import MAX_BODY_CHARS, SegmentCount, count_segments
from hub.auth import Principal
from hub.identities import InvalidIdentity
from hub.ingest import get_contact
from hub.models import Delivery, Purpose
from hub.outbox import enqueue


class SmsDraft(BaseModel):
    """The body of POST /channels/sms/messages."""

    model_config = ConfigDict(extra="forbid")

    contact_id: int
    text: str = Field(min_length=1, max_length=20_000)
    to: str | None = Field(default=None, max_length=50,
                           description="One of the contact's numbers; default: the primary one")
    client_id: str | None = Field(default=None, max_length=100,
                                  description="Your id for this message; a retry sends it once")


class SmsRefused(ValueError):
    """Why an SMS cannot be queued; `status` and `slug` become the problem answer."""

    def __init__(self, message: str, *, status: int = 422, slug: str = "sms-refused") -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug


@dataclass(frozen=True)
class QueuedSms:
    delivery: Delivery
    segments: SegmentCount


def compose_sms(session: Session, *, draft: SmsDraft, actor: Principal) -> QueuedSms:
    """Queue an agent's SMS (transactional) to one of the contact's numbers; SmsRefused says why not."""
    hub = session.info["hub"]
    channel = hub.channels.get("sms")
    if channel is None or not channel.configured:
        raise SmsRefused("SMS is not configured: set account_sid, auth_token and from_number under [channels.sms]",
                         status=409, slug="channel-not-configured")
    contact = get_contact(session, draft.contact_id)
    try:
        to = choose_number(session, contact_id=contact.id, given=draft.to, region=hub.settings.default_region)  # type: ignore[arg-type]
    except InvalidIdentity as exc:
        raise SmsRefused(str(exc), slug="invalid-identity") from None
    except NumberRefused as exc:
        raise SmsRefused(str(exc)) from None
    if is_opted_out(session, contact_id=contact.id):  # type: ignore[arg-type]
        raise SmsRefused("this contact opted out of SMS (replied STOP); they must text START to receive SMS again",
                         status=409, slug="sms-opted-out")
    segments = count_segments(draft.text)
    if segments.over_limit:
        raise SmsRefused(f"an SMS is at most {MAX_BODY_CHARS} characters; this one has {segments.characters}",
                         slug="sms-too-long")
    key = f"sms:agent:{actor.actor}:{draft.client_id}" if draft.client_id else f"sms:agent:{uuid.uuid4().hex}"
    delivery = enqueue(
        session,
        channel="sms",
        address=to,
        content={"text": draft.text, "thread_key": thread_key(channel.settings.sender, to)},
        idempotency_key=key,
        contact_id=contact.id,
        purpose=Purpose.TRANSACTIONAL,
        actor_user_id=actor.user_id,
    )
    return QueuedSms(delivery=delivery, segments=segments)
