"""What an unsubscribe or a preferences change does: consent recorded, the timeline told, queued
marketing on that channel cancelled. Each call runs in the caller's transaction.

Consent is the record (hub.contacts, history kept); the send-time consent gate (hub.sending) is what
stops marketing that was computed before the click, and cancelling the queued deliveries here just
keeps the queue honest. A replayed unsubscribe changes nothing and posts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.channel import Capability
from hub import outbox
from hub.auth import Principal
from hub.contacts import consent_status, record_consent, update_contact
from hub.ingest import ContactNotFound, InboundEvent, get_contact, post_event
from hub.locks import xact_lock
from hub.models import ActorKind, ConsentRecord, ConsentStatus, Contact, Direction, Identity, IdentityKind, Purpose
from hub.sending import address_kind

if TYPE_CHECKING:
    from campaigns.unsubscribe.links import UnsubscribeLink
    from hub.runtime import Hub

# Changes made through a customer's signed link; the audit log names them "system".
CUSTOMER_LINK = Principal(ActorKind.SYSTEM, None, "customer link")
ONE_CLICK_SOURCE = "list-unsubscribe"
PAGE_SOURCE = "unsubscribe-page"
PREFERENCES_SOURCE = "preferences-page"


class UnknownContact(LookupError):
    """The link names a contact that no longer exists (erased); pages show the invalid-link message."""


@dataclass(frozen=True)
class Unsubscribed:
    contact_id: int
    channel: str
    already: bool  # the contact had already withdrawn: nothing new was recorded
    cancelled: int  # queued marketing deliveries cancelled


@dataclass
class Preferences:
    contact: Contact
    # channel -> whether marketing on it is on, for each channel the contact can be reached on
    channels: dict[str, bool] = field(default_factory=dict)


def _contact(session: Session, contact_id: int) -> Contact:
    try:
        return get_contact(session, contact_id)  # a merged contact's link acts on the survivor
    except ContactNotFound:
        raise UnknownContact(contact_id) from None


def _withdraw(session: Session, *, contact: Contact, channel: str, source: str) -> tuple[ConsentRecord | None, int]:
    """Withdraw marketing consent on one channel; (the new decision or None if it stood already, deliveries cancelled)."""
    # Two clicks at once (a mail client's POST and the person's) must record one decision, not two.
    xact_lock(session, f"consent:{contact.id}:{channel}")
    cancelled = outbox.cancel_where(session, contact_id=contact.id, channel=channel, purpose=Purpose.MARKETING)
    if consent_status(session, contact_id=contact.id, channel=channel, purpose=Purpose.MARKETING) == ConsentStatus.WITHDRAWN:
        return None, cancelled
    record = record_consent(session, contact=contact, actor=CUSTOMER_LINK, channel=channel,
                            status=ConsentStatus.WITHDRAWN, purpose=Purpose.MARKETING, source=source)
    return record, cancelled


def unsubscribe(session: Session, *, link: UnsubscribeLink, source: str = ONE_CLICK_SOURCE) -> Unsubscribed:
    """Stop marketing to the link's contact on its channel, at once; a replay changes nothing."""
    contact = _contact(session, link.contact_id)
    assert contact.id is not None
    new, cancelled = _withdraw(session, contact=contact, channel=link.channel, source=source)
    if new is not None:
        post_event(session, event=InboundEvent(
            channel=link.channel,
            kind="campaign.unsubscribed",
            direction=Direction.IN,
            external_id=f"unsubscribed:{new.id}",
            contact_id=contact.id,
            text=f"Unsubscribed from marketing by {link.channel}",
            data={"campaign_id": link.campaign_id, "channel": link.channel, "source": source,
                  "cancelled_deliveries": cancelled},
            thread_key=f"campaign:{link.campaign_id}" if link.campaign_id is not None else None,
        ))
    return Unsubscribed(contact.id, link.channel, already=new is None, cancelled=cancelled)


def reachable_channels(hub: Hub, session: Session, contact: Contact) -> list[str]:
    """Sending channels the contact has an address for (email for email, a phone for SMS…), by name."""
    kinds = set(session.scalars(select(Identity.kind).where(Identity.contact_id == contact.id)))
    found = []
    for name, channel in sorted(hub.channels.items()):
        if Capability.SEND not in channel.capabilities:
            continue
        wanted = address_kind(name, "")  # email, phone, or a kind of its own (telegram)
        if wanted in kinds:
            found.append(name)
    return found


def preferences(hub: Hub, session: Session, *, contact_id: int) -> Preferences:
    """The contact's marketing switches per reachable channel (on unless withdrawn, or unless never
    granted when the hub requires opt-in)."""
    contact = _contact(session, contact_id)
    prefs = Preferences(contact)
    require_opt_in = hub.settings.sending.require_opt_in
    for channel in reachable_channels(hub, session, contact):
        status = consent_status(session, contact_id=contact.id, channel=channel, purpose=Purpose.MARKETING)  # type: ignore[arg-type]
        prefs.channels[channel] = status == ConsentStatus.GRANTED or (status is None and not require_opt_in)
    return prefs


def save_preferences(hub: Hub, session: Session, *, contact_id: int, marketing: Mapping[str, bool],
                     locale: str | None) -> dict[str, object]:
    """Apply the page's choices (only channels the contact can be reached on); what changed."""
    current = preferences(hub, session, contact_id=contact_id)
    contact = current.contact
    changes: dict[str, object] = {}
    cancelled = 0
    for channel, was_on in current.channels.items():
        wanted = bool(marketing.get(channel, False))
        if wanted == was_on:
            continue
        if wanted:
            xact_lock(session, f"consent:{contact.id}:{channel}")
            record_consent(session, contact=contact, actor=CUSTOMER_LINK, channel=channel,
                           status=ConsentStatus.GRANTED, purpose=Purpose.MARKETING, source=PREFERENCES_SOURCE)
        else:
            cancelled += _withdraw(session, contact=contact, channel=channel, source=PREFERENCES_SOURCE)[1]
        changes[channel] = "on" if wanted else "off"
    if locale is not None and locale != contact.locale:
        update_contact(session, contact=contact, actor=CUSTOMER_LINK, changes={"locale": locale},
                       action="contact.preferences")
        changes["locale"] = locale
    if changes:
        parts = [f"{k}: {v}" for k, v in changes.items()]
        post_event(session, event=InboundEvent(
            channel="campaigns",
            kind="preferences.updated",
            direction=Direction.IN,
            contact_id=contact.id,
            text="Preferences updated: " + ", ".join(parts),
            data={"changes": changes, "cancelled_deliveries": cancelled},
        ))
    return changes
