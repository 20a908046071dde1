"""An agent's email from the timeline: a new message or a reply that keeps its thread, via the outbox."""

from __future__ import annotations

import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.html import sanitize_html
from channels.email.mime import EmailContent, message_id_for, normalize_message_id
from channels.email.models import EmailAttachment
from channels.email.parse import safe_filename
from hub.auth import Principal
from hub.identities import InvalidIdentity, normalize_email
from hub.ingest import get_contact, survivor
from hub.models import Contact, Delivery, Direction, Identity, IdentityKind, Purpose, TimelineEvent
from hub.outbox import enqueue

_REPLY_PREFIX = re.compile(r"^\s*(re|ответ|aw|sv|antw)\s*:", re.IGNORECASE)


class EmailDraft(BaseModel):
    """The body of POST /channels/email/messages."""

    model_config = ConfigDict(extra="forbid")

    contact_id: int
    subject: str | None = Field(default=None, max_length=998, description="Default for a reply: Re: <subject>")
    text: str = Field(min_length=1, max_length=1_000_000)
    html: str | None = Field(default=None, max_length=2_000_000)
    to: str | None = Field(default=None, max_length=320,
                           description="One of the contact's addresses; default: the reply's sender or the primary one")
    attachment_ids: list[int] = Field(default_factory=list, max_length=20,
                                      description="Files uploaded with POST /channels/email/attachments")
    reply_to_event_id: int | None = Field(default=None, description="The email event this answers; keeps its thread")
    client_id: str | None = Field(default=None, max_length=100, description="Your id for this message; a retry sends it once")


_MEDIA_TYPE = re.compile(r"^[a-z0-9][\w.+-]*/[\w.+-]+$")


def store_upload(session: Session, *, channel: Any, data: bytes, filename: str | None, content_type: str | None,
                 uploaded_by: int | None) -> EmailAttachment:
    """Keep an agent's file for attaching to an email; EmailRefused (413) when it is too large."""
    limit = channel.settings.max_attachment_bytes
    if len(data) > limit:
        raise EmailRefused(f"an attachment may be at most {limit} bytes", status=413, slug="attachment-too-large")
    media = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if not _MEDIA_TYPE.match(media):
        media = "application/octet-stream"
    sha256 = channel.files.attachments.put_bytes(data)
    row = EmailAttachment(direction="out", filename=safe_filename(filename, media, 1), content_type=media,
                          size=len(data), sha256=sha256, uploaded_by=uploaded_by)
    session.add(row)
    session.flush()
    return row


class EmailRefused(ValueError):
    """Why an email cannot be queued; `status` and `slug` become the problem answer."""

    def __init__(self, message: str, *, status: int = 422, slug: str = "email-refused") -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug


def email_addresses(session: Session, *, contact_id: int) -> list[str]:
    """The contact's email addresses, primary first."""
    return list(session.scalars(
        select(Identity.value)
        .where(Identity.contact_id == contact_id, Identity.kind == IdentityKind.EMAIL)
        .order_by(Identity.is_primary.desc(), Identity.id)
    ))


def _valid(address: str | None) -> str | None:
    try:
        return normalize_email(address) if address else None
    except InvalidIdentity:
        return None


def _reply_context(session: Session, *, event_id: int, contact: Contact, id_domain: str, max_refs: int) -> dict[str, Any]:
    event = session.get(TimelineEvent, event_id)
    if event is None or event.channel != "email" or event.kind not in {"message", "auto_reply"}:
        raise EmailRefused(f"event {event_id} is not an email message to reply to", status=404, slug="not-found")
    owner = session.get(Contact, event.contact_id)
    if owner is None or survivor(session, owner).id != contact.id:
        raise EmailRefused(f"event {event_id} is on another contact's timeline")
    data = event.data or {}
    if event.direction == Direction.OUT:
        delivery = session.scalars(select(Delivery).where(Delivery.event_id == event.id)).first()
        if delivery is None:
            raise EmailRefused(f"event {event_id} has no delivery to reply to")
        parent_id = delivery.provider_id or message_id_for(delivery.idempotency_key, id_domain)
        earlier = list((delivery.content or {}).get("references") or [])
        to = delivery.address
    else:
        parent_id = data.get("message_id")
        earlier = list(data.get("references") or [])
        # Replies go where the customer asked (Reply-To), else to the sender.
        to = next((a for a in (data.get("reply_to") or []) if _valid(a)), None) or data.get("from")
    parent_id = normalize_message_id(parent_id) if parent_id else None
    references = [r for r in [*earlier, parent_id] if r and not r.startswith("mid-sha256:")][-max_refs:]
    subject = event.subject or ""
    return {
        "to": _valid(to),
        "subject": subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".strip(),
        "in_reply_to": parent_id if parent_id and not parent_id.startswith("mid-sha256:") else None,
        "references": references,
        "thread_key": event.thread_key,
    }


def compose_email(session: Session, *, draft: EmailDraft, actor: Principal) -> Delivery:
    """Queue an agent's email (transactional) to one of the contact's addresses; EmailRefused says why not."""
    hub = session.info["hub"]
    channel = hub.channels.get("email")
    if channel is None or not channel.configured:
        raise EmailRefused("email is not configured: set smtp_host and from_address under [channels.email]",
                           status=409, slug="channel-not-configured")
    settings = channel.settings
    contact = get_contact(session, draft.contact_id)
    known = email_addresses(session, contact_id=contact.id)  # type: ignore[arg-type]
    key = (f"email:agent:{actor.actor}:{draft.client_id}" if draft.client_id else f"email:agent:{uuid.uuid4().hex}")
    reply = (_reply_context(session, event_id=draft.reply_to_event_id, contact=contact, id_domain=settings.id_domain,
                            max_refs=settings.max_references) if draft.reply_to_event_id is not None else {})

    if draft.to:
        to = _valid(draft.to)
        if to is None:
            raise EmailRefused(f"{draft.to!r} is not a valid email address", slug="invalid-identity")
        if to not in known and to != reply.get("to"):
            raise EmailRefused(f"{to} is not one of this contact's addresses; add it to the contact first")
    else:
        to = reply.get("to") or (known[0] if known else None)
        if to is None:
            raise EmailRefused("this contact has no email address")

    subject = (draft.subject or "").strip() or reply.get("subject")
    if not subject:
        raise EmailRefused("an email needs a subject")
    if any(c in subject for c in "\r\n"):
        raise EmailRefused("the subject may not contain line breaks")

    attachments = []
    if draft.attachment_ids:
        rows = {a.id: a for a in session.scalars(select(EmailAttachment).where(EmailAttachment.id.in_(draft.attachment_ids)))}
        missing = [i for i in draft.attachment_ids if i not in rows]
        if missing:
            raise EmailRefused(f"no attachment with id {missing[0]}", status=404, slug="not-found")
        attachments = [rows[i] for i in draft.attachment_ids]

    content: dict[str, Any] = {
        "subject": subject,
        "text": draft.text,
        "to_name": contact.display_name or None,
        "thread_key": reply.get("thread_key") or f"email:{message_id_for(key, settings.id_domain)}",
        "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "sha256": a.sha256} for a in attachments],
    }
    if draft.html:
        content["html"] = sanitize_html(draft.html, block_remote_images=False)
    if reply.get("in_reply_to"):
        content["in_reply_to"] = reply["in_reply_to"]
    if reply.get("references"):
        content["references"] = reply["references"]
    try:
        EmailContent.model_validate(content)
    except ValueError as exc:
        raise EmailRefused(f"the email is not valid: {exc}") from None

    delivery = enqueue(session, channel="email", address=to, content=content, idempotency_key=key,
                       contact_id=contact.id, purpose=Purpose.TRANSACTIONAL, actor_user_id=actor.user_id,
                       event_data={"message_id": message_id_for(key, settings.id_domain),
                                   "in_reply_to": content.get("in_reply_to"), "to": [to],
                                   "attachments": content["attachments"]})
    if delivery.event_id is not None:
        for attachment in attachments:
            if attachment.event_id is None:
                attachment.event_id = delivery.event_id
    return delivery
