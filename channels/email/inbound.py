"""Receiving one message: parse, store its files, thread it, post it, and act on bounces.

`receive` is the one inbound path; the IMAP poller and the HTTP pipe both end here. It works inside
the caller's transaction and does not commit, so the poller can advance its UID in the same
transaction as the event it recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.channel import StatusUpdate
from channels.email import suppression
from channels.email.models import EmailAttachment, EmailRawMessage, RawReason
from channels.email.parse import ParsedMessage, parse_headers_only, parse_message, too_large_note
from channels.email.store import read_header_block
from channels.email.threading import delivery_for, find_thread, tagged_candidates
from hub.db import insert_ignore
from hub.identities import InvalidIdentity, normalize_email
from hub.ingest import post_event
from hub.models import Delivery, DeliveryStatus, TimelineEvent

if TYPE_CHECKING:
    from channels.email.channel import EmailChannel


@dataclass(frozen=True)
class Received:
    """What became of one message."""

    event_id: int | None
    created: bool
    kind: str | None = None
    raw_id: int | None = None
    skipped: str | None = None


def receive(session: Session, *, channel: EmailChannel, raw: bytes | None = None, path: Path | None = None,
            origin: dict[str, Any] | None = None, strict: bool = False) -> Received:
    """Record one raw message (bytes, or a file for big ones) on the timeline, at most once.

    With `strict`, bytes that are not a message at all raise ValueError; otherwise (the HTTP pipe,
    IMAP) even those are kept raw under an "unknown sender" event with the reason, so nothing is lost.
    """
    if (raw is None) == (path is None):
        raise TypeError("give raw bytes or a path")
    settings = channel.settings
    origin = origin or {}
    size = len(raw) if raw is not None else path.stat().st_size  # type: ignore[union-attr]
    if size > settings.max_message_bytes:
        return _oversized(session, channel=channel, raw=raw, path=path, size=size, origin=origin)
    if raw is None:
        raw = path.read_bytes()  # type: ignore[union-attr]
    try:
        parsed = parse_message(raw, limits=channel.parse_limits)
    except ValueError as exc:
        if strict:
            raise
        digest = channel.files.raw.put_bytes(raw)
        parsed = parse_headers_only(
            b"\r\n", digest=digest, data={"unreadable": True, "defects": [str(exc)[:300]]}, limits=channel.parse_limits,
            note="This was not a readable email message (no header fields). It is kept raw for inspection.")
        return _record(session, channel=channel, parsed=parsed, raw_reason=RawReason.MALFORMED, raw_digest=digest,
                       size=size, origin=origin)

    if parsed.message_id and _is_own(session, channel, parsed.message_id):
        return Received(event_id=None, created=False, kind=parsed.event.kind, skipped="the hub's own message")
    for attachment in parsed.attachments:
        if attachment.data is not None:
            channel.files.attachments.put_bytes(attachment.data)
    raw_reason = None
    if parsed.defects:
        raw_reason = RawReason.MALFORMED
    elif any(a.skipped for a in parsed.attachments):
        raw_reason = RawReason.ATTACHMENT_TOO_LARGE
    digest = channel.files.raw.put_bytes(raw) if raw_reason else None
    return _record(session, channel=channel, parsed=parsed, raw_reason=raw_reason, raw_digest=digest, size=size,
                   origin=origin)


def receive_headers(session: Session, *, channel: EmailChannel, header_block: bytes, size: int, digest: str,
                    note: str, origin: dict[str, Any], raw_digest: str | None = None,
                    raw_reason: RawReason | None = None) -> Received:
    """An event for a message the hub did not read (over max_raw_bytes, or it never recorded; it
    stays on the server), its bytes kept raw under `raw_digest` when the caller could fetch them."""
    parsed = parse_headers_only(header_block, digest=digest, note=note, limits=channel.parse_limits,
                                data={"left_on_server": origin, "size": size})
    return _record(session, channel=channel, parsed=parsed, raw_reason=raw_reason if raw_digest else None,
                   raw_digest=raw_digest, size=size, origin=origin)


def _oversized(session: Session, *, channel: EmailChannel, raw: bytes | None, path: Path | None, size: int,
               origin: dict[str, Any]) -> Received:
    # Streamed: the body is copied and hashed in chunks and only the header block is parsed.
    if path is not None:
        digest, size = channel.files.raw.put_file(path)
        head = read_header_block(path)
    else:
        assert raw is not None
        digest = channel.files.raw.put_bytes(raw)
        head = read_header_block(channel.files.raw.path(digest))
    parsed = parse_headers_only(head, digest=digest, note=too_large_note(size, channel.settings.max_message_bytes),
                                data={"oversized": True, "size": size}, limits=channel.parse_limits)
    return _record(session, channel=channel, parsed=parsed, raw_reason=RawReason.TOO_LARGE, raw_digest=digest,
                   size=size, origin=origin)


def _is_own(session: Session, channel: EmailChannel, message_id: str) -> bool:
    return message_id.endswith("@" + channel.settings.id_domain) and delivery_for(session, message_id=message_id) is not None


def _record(session: Session, *, channel: EmailChannel, parsed: ParsedMessage, raw_reason: RawReason | None,
            raw_digest: str | None, size: int, origin: dict[str, Any]) -> Received:
    settings = channel.settings
    event = parsed.event
    candidates = list(parsed.thread_candidates)
    if settings.reply_to_tagged:
        candidates += tagged_candidates(parsed.recipients, reply_to=settings.reply_to or settings.from_address,
                                        id_domain=settings.id_domain)
    match = find_thread(session, candidates=candidates)
    updates: dict[str, Any] = {}
    if match is not None:
        updates["thread_key"] = match.thread_key
        if match.delivery_id is not None:
            _thread_outbound(session, delivery_id=match.delivery_id, thread_key=match.thread_key)
        if event.kind == "bounce" and match.delivery_id is not None and match.contact_id is not None:
            # The delivery knows whose mail bounced better than the report's addresses do.
            updates.update(contact_id=match.contact_id, identities=[])
    if updates:
        event = event.model_copy(update=updates)

    result = post_event(session, event=event)
    if not result.created:
        return Received(event_id=result.event.id, created=False, kind=result.event.kind)
    row = result.event
    data = dict(row.data)

    stored = []
    for index, attachment in enumerate(parsed.attachments):
        info = dict(data["attachments"][index]) if index < len(data.get("attachments", [])) else attachment.describe()
        if attachment.data is not None:
            record = EmailAttachment(event_id=row.id, direction="in", filename=attachment.filename,
                                     content_type=attachment.content_type, size=attachment.size,
                                     sha256=attachment.sha256, content_id=attachment.content_id,
                                     inline=attachment.inline)
            session.add(record)
            session.flush()
            info["id"] = record.id
        stored.append(info)
    data["attachments"] = stored

    raw_id = None
    if raw_reason is not None and raw_digest is not None:
        raw_id = insert_ignore(session, EmailRawMessage, dict(
            sha256=raw_digest, size=size, reason=raw_reason.value, message_id=parsed.message_id,
            origin=origin, event_id=row.id, created_at=row.created_at,
        ), ["sha256"])
        if raw_id is None:
            raw_id = session.scalars(select(EmailRawMessage.id).where(EmailRawMessage.sha256 == raw_digest)).one()
        data["raw"] = {"id": raw_id, "reason": raw_reason.value, "size": size}
    row.data = data  # a new dict, so the JSON column is written

    if parsed.report is not None:
        _apply_report(session, channel=channel, parsed=parsed, report_id=row.external_id)
    return Received(event_id=row.id, created=True, kind=row.kind, raw_id=raw_id)


def _thread_outbound(session: Session, *, delivery_id: int, thread_key: str) -> None:
    # A campaign message may have gone out without a thread; the first answer gives it one, so
    # the message and its replies show together.
    delivery = session.get(Delivery, delivery_id)
    if delivery is not None and delivery.event_id is not None:
        event = session.get(TimelineEvent, delivery.event_id)
        if event is not None and event.thread_key is None:
            event.thread_key = thread_key


def _apply_report(session: Session, *, channel: EmailChannel, parsed: ParsedMessage, report_id: str) -> None:
    from hub.outbox import apply_status

    report = parsed.report
    assert report is not None
    original = parsed.event.data.get("report", {}).get("original_message_id")
    delivery = delivery_for(session, message_id=original) if original else None
    delivery_address = _normalized(delivery.address) if delivery is not None else None
    single = len(report.recipients) == 1
    for recipient in report.recipients:
        if _normalized(recipient.address) is None:
            continue
        about_delivery = delivery is not None and (recipient.address == delivery_address or single)
        if recipient.failed:
            suppression.record_bounce(session, recipient=recipient, report_id=report_id, original_message_id=original,
                                      soft_threshold=channel.settings.soft_bounce_threshold,
                                      window_days=channel.settings.soft_bounce_window_days)
            if about_delivery:
                detail = " ".join(p for p in (recipient.status, recipient.diagnostic or "") if p) or "bounced"
                apply_status(session, channel="email", update=StatusUpdate(
                    provider_id=original, status=DeliveryStatus.BOUNCED,  # type: ignore[arg-type]
                    occurred_at=parsed.event.occurred_at, detail=detail[:1000],
                ))
        elif recipient.action == "delivered" and about_delivery:
            apply_status(session, channel="email", update=StatusUpdate(
                provider_id=original, status=DeliveryStatus.DELIVERED,  # type: ignore[arg-type]
                occurred_at=parsed.event.occurred_at, detail="delivery status notification",
            ))


def _normalized(address: str) -> str | None:
    try:
        return normalize_email(address)
    except InvalidIdentity:
        return None
