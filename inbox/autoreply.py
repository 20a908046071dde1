"""The out-of-hours reply: one message through the outbox, at most once per conversation per local
day (the outbox's idempotency key says so), in the contact's language, only outside the team's hours.

It is only ever sent in answer to an event that opened or joined a conversation, so never to an
auto-reply, a bounce or an opt-out (inbox.service.expects_answer); consent and suppression are the
send gates' to check when the worker sends it (hub.sending), as for any transactional message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit
from hub.auth import SYSTEM
from hub.models import Contact, Delivery, Purpose, TimelineEvent
from hub.outbox import enqueue
from inbox import sla
from inbox.models import Conversation

if TYPE_CHECKING:
    from inbox.settings import InboxSettings


def _address(event: TimelineEvent) -> str | None:
    data = event.data or {}
    if event.channel == "email":
        reply_to = data.get("reply_to") or []
        return (reply_to[0] if reply_to else None) or data.get("from") or None
    return data.get("from") or data.get("chat_id") or None


def _content(event: TimelineEvent, text: str, subject: str) -> dict[str, object]:
    if event.channel != "email":
        return {"text": text, "thread_key": event.thread_key}
    data = event.data or {}
    # RFC 3834: marked as an automatic reply, so the customer's own autoresponder stays silent.
    content: dict[str, object] = {"subject": subject, "text": text, "thread_key": event.thread_key,
                                  "auto_submitted": "auto-replied"}
    if data.get("message_id"):
        content["in_reply_to"] = data["message_id"]
    return content


def maybe_reply(session: Session, *, conv: Conversation, event: TimelineEvent, contact: Contact,
                settings: InboxSettings) -> str | None:
    """Queue the out-of-hours reply if one is due; its idempotency key, or None when none is sent."""
    texts = settings.auto_reply.get(event.channel) if settings.auto_reply_enabled else None
    if not texts:
        return None
    calendar = sla.calendar_of(session, settings, conv.team_id)
    if calendar.is_open(event.occurred_at):
        return None
    hub = session.info["hub"]
    channel = hub.channels.get(event.channel)
    if channel is None or not getattr(channel, "configured", False):
        return None
    address = _address(event)
    if not address:
        return None
    language = (contact.locale or hub.settings.default_locale or "ru")[:2]
    text = texts.get(language) or texts.get("ru") or next(iter(texts.values()))
    subject = settings.auto_reply_subject.get(language) or "Re"
    day = event.occurred_at.astimezone(calendar.zone).date().isoformat()
    key = f"inbox.out_of_hours:{conv.id}:{day}"
    if session.scalar(select(Delivery.id).where(Delivery.idempotency_key == key)) is not None:
        return None  # already answered today
    try:
        delivery = enqueue(session, channel=event.channel, address=str(address), content=_content(event, text, subject),
                           idempotency_key=key, contact_id=contact.id, purpose=Purpose.TRANSACTIONAL,
                           event_data={"auto_reply": True, "inbox_conversation_id": conv.id})
    except ValueError:
        return None  # the channel cannot carry it (an address it refuses): no reply rather than no event
    audit.record(session, actor=SYSTEM, action="conversation.auto_reply", entity="conversation", entity_id=conv.id,
                 contact_id=conv.contact_id, changes={"delivery_id": delivery.id, "key": key})
    return key
