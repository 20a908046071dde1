"""Each user's recently opened contacts."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub import clock
from hub.db import insert_ignore
from hub.models import Contact
from hub.web.models import RecentContact

KEEP = 20


def remember(session: Session, *, user_id: int, contact_id: int) -> None:
    """Mark the contact as opened now by this user (keeps the newest KEEP per user)."""
    now = clock.now()
    created = insert_ignore(session, RecentContact, {"user_id": user_id, "contact_id": contact_id, "opened_at": now},
                            ["user_id", "contact_id"])
    if created is None:
        session.execute(update(RecentContact).where(RecentContact.user_id == user_id,
                                                    RecentContact.contact_id == contact_id).values(opened_at=now))
        return
    stale = select(RecentContact.id).where(RecentContact.user_id == user_id) \
        .order_by(RecentContact.opened_at.desc(), RecentContact.id.desc()).offset(KEEP)
    session.execute(delete(RecentContact).where(RecentContact.id.in_(list(session.scalars(stale)))))


def recent(session: Session, *, user_id: int, limit: int = 8) -> list[Contact]:
    """The user's recently opened contacts that still exist unmerged, newest first."""
    rows = session.scalars(
        select(Contact)
        .join(RecentContact, RecentContact.contact_id == Contact.id)
        .where(RecentContact.user_id == user_id, Contact.merged_into.is_(None))
        .order_by(RecentContact.opened_at.desc(), RecentContact.id.desc())
        .limit(limit)
    )
    return list(rows)
