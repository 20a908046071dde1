"""Opt-out, opt-in and help: Twilio's standard keywords, the hub's reading of plain words, and
what they change in the hub.

Twilio itself blocks a number that texts an opt-out keyword (later sends fail with error 21610)
and unblocks it on an opt-in keyword; the hub mirrors that in the contact's SMS consent, with the
keyword as source and the time it arrived, and cancels marketing SMS still queued for the number.
An opt-out in other words (channels.sms.intent) withdraws consent the same way; one that only
may be an opt-out opens a task for an agent instead.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.twilio_common.keywords import Keyword
from hub.auth import SYSTEM
from hub.contacts import consent_status, record_consent
from hub.ingest import get_contact
from hub.models import (
    Contact,
    ConsentStatus,
    Delivery,
    DeliveryStatus,
    Identity,
    IdentityKind,
    Purpose,
    Task,
)
from hub.outbox import cancel
from hub.tasks import InvalidTask, create_task

log = logging.getLogger("channels.sms")
# Twilio blocks every message to an opted-out number, whatever its purpose.
SMS_PURPOSES = (Purpose.MARKETING, Purpose.TRANSACTIONAL)


def is_opted_out(session: Session, *, contact_id: int) -> bool:
    """Whether the contact's SMS consent stands withdrawn (for any purpose: Twilio blocks them all)."""
    return any(
        consent_status(session, contact_id=contact_id, channel="sms", purpose=purpose) == ConsentStatus.WITHDRAWN
        for purpose in SMS_PURPOSES
    )


def set_sms_consent(session: Session, *, contact_id: int, status: ConsentStatus, source: str,
                    wording: str | None = None) -> bool:
    """Record the SMS consent for every purpose that is not already `status`; True if anything changed."""
    contact = get_contact(session, contact_id)
    changed = False
    for purpose in SMS_PURPOSES:
        if consent_status(session, contact_id=contact.id, channel="sms", purpose=purpose) == status:  # type: ignore[arg-type]
            continue
        record_consent(session, contact=contact, actor=SYSTEM, channel="sms", status=status, purpose=purpose,
                       source=source, wording=wording)
        changed = True
    return changed


def cancel_queued_marketing(session: Session, *, number: str) -> int:
    """Cancel marketing SMS to `number` that no worker has claimed yet; how many."""
    ids = session.scalars(
        select(Delivery.id).where(
            Delivery.channel == "sms",
            Delivery.address == number,
            Delivery.purpose == Purpose.MARKETING,
            Delivery.status == DeliveryStatus.QUEUED,
        )
    ).all()
    return sum(cancel(session, delivery_id=delivery_id) for delivery_id in ids)


def contacts_with_number(session: Session, number: str) -> list[int]:
    return list(session.scalars(
        select(Identity.contact_id).where(Identity.kind == IdentityKind.PHONE, Identity.value == number)
    ))


def apply_keyword(session: Session, *, contact_id: int, number: str, word: Keyword, body: str, source: str) -> None:
    """Mirror an opt-out or opt-in keyword in consent (HELP changes nothing: Twilio answers it)."""
    if word == Keyword.OPT_OUT:
        set_sms_consent(session, contact_id=contact_id, status=ConsentStatus.WITHDRAWN, source=source, wording=body)
        cancelled = cancel_queued_marketing(session, number=number)
        if cancelled:
            log.info("cancelled %d queued marketing SMS to %s after an opt-out", cancelled, number)
    elif word == Keyword.OPT_IN:
        set_sms_consent(session, contact_id=contact_id, status=ConsentStatus.GRANTED, source=source, wording=body)


def opted_out_by_provider(session: Session, *, number: str, contact_id: int | None, source: str) -> None:
    """Twilio refused a send with 21610: the number is blocked, whatever the hub believed."""
    contact_ids = {contact_id} if contact_id is not None else set()
    contact_ids.update(contacts_with_number(session, number))
    for cid in sorted(contact_ids):
        set_sms_consent(session, contact_id=cid, status=ConsentStatus.WITHDRAWN, source=source)
    cancel_queued_marketing(session, number=number)


# Stored task text, in the hub's default language (tasks keep the words they were opened with).
REVIEW_TITLES = {
    "en": "Possible SMS opt-out from %(name)s: read it and withdraw SMS consent if they asked to stop",
    "ru": "Возможно, %(name)s просит больше не присылать SMS: прочитайте и, если так, отзовите согласие на SMS",
}
REVIEW_NOTES = {
    "en": "The hub did not opt them out on its own: the message may mean something else.\n\nTheir SMS: %(body)s",
    "ru": "Хаб не стал отписывать сам: сообщение может значить и другое.\n\nИх SMS: %(body)s",
}


def open_opt_out_review(session: Session, *, contact: Contact, body: str, event_id: int, locale: str) -> Task:
    """A task for a person to decide whether a message that may be an opt-out is one."""
    language = locale if locale in REVIEW_TITLES else "en"
    title = REVIEW_TITLES[language] % {"name": contact.display_name or contact.id}
    notes = REVIEW_NOTES[language] % {"body": body[:1600]}
    for assignee in dict.fromkeys([contact.owner_id, None]):
        try:
            task = create_task(session, actor=SYSTEM, title=title[:500], notes=notes, assignee_id=assignee,
                               contact_id=contact.id)
        except InvalidTask:  # the owner left: everyone's open tasks then
            continue
        task.source_event_id = event_id
        return task
    raise AssertionError("a task without an assignee is always valid")
