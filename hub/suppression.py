"""The do-not-contact list: hashed addresses that must never receive marketing again.

Entries hold a SHA-256 of the normalized address, not the address, so the list can outlive an
erasure (a data-subject request removes the person, and this entry keeps them from being imported
and mailed again) without keeping their personal data. Every channel's send-time check consults it
(hub.sending); the email channel's own list (channels/email/suppression.py) keeps bounce details.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from hub import clock
from hub.db import insert_ignore
from hub.identities import normalize
from hub.models import _id, _time


class SuppressionEntry(SQLModel, table=True):
    __tablename__ = "suppression_entry"
    __table_args__ = (sa.UniqueConstraint("kind", "value_hash", name="uq_suppression_entry_kind_hash"),)

    id: int | None = _id()
    kind: str = Field(max_length=20)  # an IdentityKind: email, phone
    value_hash: str = Field(max_length=64)
    reason: str = Field(max_length=40)  # erased, opted_out, unsubscribed, manual
    source: str = Field(default="", max_length=200)
    created_at: datetime = _time()


def address_hash(kind: str, value: str, *, region: str) -> str:
    """The hash an address is listed under (normalized first, so any notation matches)."""
    try:
        normalized = normalize(kind, value, region=region)
    except ValueError:
        normalized = value.strip().casefold()
    return hashlib.sha256(f"{kind}:{normalized}".encode()).hexdigest()


def suppress(session: Session, *, kind: str, value: str, region: str, reason: str, source: str = "") -> bool:
    """List an address (idempotent); True if it was not listed before."""
    row = dict(kind=kind, value_hash=address_hash(kind, value, region=region), reason=reason, source=source,
               created_at=clock.now())
    return insert_ignore(session, SuppressionEntry, row, ["kind", "value_hash"]) is not None


def is_suppressed(session: Session, *, kind: str, value: str, region: str) -> bool:
    """Whether the address is on the do-not-contact list."""
    digest = address_hash(kind, value, region=region)
    found = session.scalar(select(SuppressionEntry.id).where(SuppressionEntry.kind == kind,
                                                             SuppressionEntry.value_hash == digest))
    return found is not None


def unsuppress(session: Session, *, kind: str, value: str, region: str) -> bool:
    """Take an address off the list (the person asked to hear from us again); True if it was listed."""
    digest = address_hash(kind, value, region=region)
    result = session.execute(sa.delete(SuppressionEntry).where(SuppressionEntry.kind == kind,
                                                                SuppressionEntry.value_hash == digest))
    return bool(result.rowcount)
