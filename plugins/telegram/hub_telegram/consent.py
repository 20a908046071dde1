"""Consent on Telegram: /stop and the stop button withdraw marketing, /start grants it again, and a
bot the user blocked withdraws everything, as Twilio's error 21610 does for SMS.

Also the link a shared phone number makes: the Telegram user's contact and the contact that already
has that number become one (the older contact survives, with its history and consent).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.auth import SYSTEM
from hub.contacts import consent_status, record_consent
from hub.identities import InvalidIdentity, normalize_phone
from hub.ingest import get_contact
from hub.merge import merge_contacts
from hub.models import Contact, ConsentStatus, Delivery, DeliveryStatus, Identity, IdentityKind, Purpose
from hub.outbox import cancel

log = logging.getLogger("hub_telegram")
CHANNEL = "telegram"


def set_consent(session: Session, *, contact_id: int, status: ConsentStatus, purposes: tuple[Purpose, ...],
                source: str, wording: str | None = None) -> bool:
    """Record `status` for each purpose not already at it; True if anything changed."""
    contact = get_contact(session, contact_id)
    changed = False
    for purpose in purposes:
        if consent_status(session, contact_id=contact.id, channel=CHANNEL, purpose=purpose) == status:  # type: ignore[arg-type]
            continue
        record_consent(session, contact=contact, actor=SYSTEM, channel=CHANNEL, status=status, purpose=purpose,
                       source=source[:200], wording=wording)
        changed = True
    return changed


def is_blocked(session: Session, *, contact_id: int) -> bool:
    """Whether nothing may go to the contact on Telegram (they blocked the bot)."""
    return consent_status(session, contact_id=contact_id, channel=CHANNEL,
                          purpose=Purpose.TRANSACTIONAL) == ConsentStatus.WITHDRAWN


def stopped(session: Session, *, contact_id: int, source: str, wording: str) -> None:
    """/stop or the stop button: no more marketing on Telegram; what is queued is cancelled."""
    set_consent(session, contact_id=contact_id, status=ConsentStatus.WITHDRAWN, purposes=(Purpose.MARKETING,),
                source=source, wording=wording)
    cancel_queued_marketing(session, contact_id=contact_id)


def started(session: Session, *, contact_id: int, source: str, wording: str) -> None:
    """/start: marketing on Telegram again, and replies too if a block had stopped them."""
    set_consent(session, contact_id=contact_id, status=ConsentStatus.GRANTED,
                purposes=(Purpose.MARKETING, Purpose.TRANSACTIONAL), source=source, wording=wording)


def blocked(session: Session, *, user_id: str, contact_id: int | None, source: str) -> None:
    """The Bot API answered 403 (the user blocked the bot): every purpose is withdrawn."""
    ids = {contact_id} if contact_id is not None else set()
    ids.update(session.scalars(select(Identity.contact_id).where(Identity.kind == IdentityKind.TELEGRAM,
                                                                Identity.value == user_id)))
    for cid in sorted(ids):
        set_consent(session, contact_id=cid, status=ConsentStatus.WITHDRAWN,
                    purposes=(Purpose.MARKETING, Purpose.TRANSACTIONAL), source=source)
        cancel_queued_marketing(session, contact_id=cid)


def cancel_queued_marketing(session: Session, *, contact_id: int) -> int:
    """Cancel marketing on Telegram to the contact that no worker has claimed yet; how many."""
    ids = session.scalars(select(Delivery.id).where(
        Delivery.channel == CHANNEL, Delivery.contact_id == contact_id, Delivery.purpose == Purpose.MARKETING,
        Delivery.status == DeliveryStatus.QUEUED)).all()
    return sum(cancel(session, delivery_id=delivery_id) for delivery_id in ids)


def link_phone(session: Session, *, contact: Contact, phone: str, region: str) -> Contact:
    """Give the Telegram user's contact the number they shared; if another contact has it, merge the
    two into the older one. The contact that holds both afterwards."""
    try:
        number = normalize_phone(phone, region)
    except InvalidIdentity:
        log.warning("contact %s shared a number that is not one: %r", contact.id, phone[:40])
        return contact
    owner_id = session.scalar(select(Identity.contact_id).where(Identity.kind == IdentityKind.PHONE,
                                                                Identity.value == number))
    if owner_id is None or owner_id == contact.id:
        return contact  # the event's identities already attached a number nobody had
    other = get_contact(session, owner_id)
    if other.id == contact.id:
        return contact
    survivor, merged = (other, contact) if (other.id or 0) < (contact.id or 0) else (contact, other)
    merge_contacts(session, survivor_id=survivor.id, merged_id=merged.id, actor=SYSTEM)  # type: ignore[arg-type]
    log.info("telegram: contact %s shared %s; merged contact %s into %s", contact.id, number, merged.id, survivor.id)
    return get_contact(session, survivor.id)  # type: ignore[arg-type]
