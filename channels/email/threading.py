"""Which conversation a message belongs to, from the Message-IDs it answers.

Odoo's order: a reply to a known Message-ID first — an inbound message (its external_id is its
Message-ID) or an outbound delivery (its provider_id is the Message-ID the hub generated) — then
the tagged reply address, then the message's own root (its first Reference), so a conversation
the hub has never seen still groups by itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Delivery, TimelineEvent


@dataclass(frozen=True)
class ThreadMatch:
    thread_key: str
    message_id: str
    delivery_id: int | None = None
    contact_id: int | None = None


def find_thread(session: Session, *, candidates: Sequence[str], limit: int = 60) -> ThreadMatch | None:
    """The thread of the first candidate Message-ID the hub knows (candidates most relevant first)."""
    wanted = list(dict.fromkeys(c for c in candidates if c))[:limit]
    if not wanted:
        return None
    known: dict[str, ThreadMatch] = {}
    rows = session.execute(
        select(TimelineEvent.external_id, TimelineEvent.thread_key, TimelineEvent.contact_id)
        .where(TimelineEvent.channel == "email", TimelineEvent.external_id.in_(wanted))
    )
    for external_id, thread_key, contact_id in rows:
        known[external_id] = ThreadMatch(thread_key or f"email:{external_id}", external_id, None, contact_id)
    deliveries = session.execute(
        select(Delivery.provider_id, Delivery.id, Delivery.contact_id, Delivery.content, TimelineEvent.thread_key)
        .outerjoin(TimelineEvent, TimelineEvent.id == Delivery.event_id)
        .where(Delivery.channel == "email", Delivery.provider_id.in_(wanted))
    )
    for provider_id, delivery_id, contact_id, content, event_thread in deliveries:
        thread_key = event_thread or (content or {}).get("thread_key") or f"email:{provider_id}"
        known.setdefault(provider_id, ThreadMatch(thread_key, provider_id, delivery_id, contact_id))
    return next((known[c] for c in wanted if c in known), None)


def delivery_for(session: Session, *, message_id: str) -> Delivery | None:
    """The email delivery that carried this Message-ID."""
    return session.scalars(
        select(Delivery).where(Delivery.channel == "email", Delivery.provider_id == message_id)
    ).first()


def tagged_candidates(recipients: Sequence[str], *, reply_to: str, id_domain: str) -> list[str]:
    """Message-IDs named by tagged reply addresses (reply+<token>@domain) among the recipients."""
    local, _, domain = reply_to.rpartition("@")
    if not local:
        return []
    pattern = re.compile(rf"^{re.escape(local)}\+([a-z2-7]{{32}})@{re.escape(domain)}$", re.IGNORECASE)
    found = []
    for address in recipients:
        match = pattern.match(address)
        if match:
            found.append(f"{match.group(1).lower()}@{id_domain}")
    return found
