"""The suppression list, shared with campaigns: a suppressed address never gets marketing mail.

Hard bounces suppress at once; soft bounces are counted (a replayed report counts once) and
suppress at the configured threshold. Each change is posted on the contact's timeline, so the
reason and time show where the agent looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from channels.email.dsn import RecipientStatus
from channels.email.models import EmailBounce, EmailSuppression, SuppressionReason
from hub import audit, clock
from hub.auth import Principal
from hub.db import among, insert_ignore
from hub.identities import InvalidIdentity, normalize_email
from hub.ingest import InboundEvent, post_event
from hub.models import Direction, Identity, IdentityKind, Purpose
from hub.sending import Decision

if TYPE_CHECKING:
    from hub.channel import OutboundMessage

_REASON_TEXT = {
    SuppressionReason.HARD_BOUNCE: "the address bounced permanently",
    SuppressionReason.SOFT_BOUNCES: "the address bounced temporarily too many times",
    SuppressionReason.COMPLAINT: "the recipient reported mail as spam",
    SuppressionReason.UNSUBSCRIBED: "the recipient unsubscribed",
    SuppressionReason.MANUAL: "an agent suppressed it",
}


class SuppressionGate:
    """A send gate (hub.sending): marketing mail to an address on the list is skipped for good, with the
    reason and since when. One query per batch."""

    name = "email.suppression"
    marketing_only = True

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._listed: dict[int, EmailSuppression] = {}

    def _address(self, message: OutboundMessage) -> str | None:
        if message.channel != self.channel or message.purpose != Purpose.MARKETING:
            return None
        try:
            return normalize_email(message.address)
        except InvalidIdentity:
            return None  # the channel refuses it with the reason when it sends

    def prepare(self, session: Session, messages: Sequence[OutboundMessage], now: datetime) -> None:
        addresses = {m.delivery_id: address for m in messages if (address := self._address(m)) is not None}
        rows = {row.address: row for row in session.scalars(select(EmailSuppression).where(
            among(session, EmailSuppression.address, set(addresses.values())))).all()} if addresses else {}
        # By delivery: check() then normalises nothing again.
        self._listed = {delivery_id: rows[address] for delivery_id, address in addresses.items() if address in rows}

    def check(self, session: Session, *, message: OutboundMessage, now: datetime) -> Decision | None:
        row = self._listed.get(message.delivery_id)  # prepare() kept only this channel's marketing
        if row is None:
            return None
        return Decision.skip(f"{row.address} is suppressed ({row.reason} since {row.created_at:%Y-%m-%d %H:%M} UTC); "
                             "marketing mail is not sent to it")


def get_suppression(session: Session, *, address: str) -> EmailSuppression | None:
    """The suppression in force for an address, if any."""
    return session.scalars(select(EmailSuppression).where(EmailSuppression.address == normalize_email(address))).first()


def is_suppressed(session: Session, *, address: str) -> bool:
    """Whether marketing mail to this address must not be sent."""
    return get_suppression(session, address=address) is not None


def suppressions_for_contact(session: Session, *, contact_id: int) -> list[EmailSuppression]:
    """Suppressions of every email address the contact has (what the contact card shows)."""
    addresses = select(Identity.value).where(Identity.contact_id == contact_id, Identity.kind == IdentityKind.EMAIL)
    return list(session.scalars(
        select(EmailSuppression).where(EmailSuppression.address.in_(addresses)).order_by(EmailSuppression.created_at)
    ))


def suppress(session: Session, *, address: str, reason: SuppressionReason | str, source: str,
             detail: str | None = None, actor: Principal | None = None) -> EmailSuppression:
    """Put an address on the list (an existing entry is kept as it is) and note it on the timeline."""
    address = normalize_email(address)
    reason = SuppressionReason(reason)
    now = clock.now()
    new_id = insert_ignore(
        session, EmailSuppression,
        dict(address=address, reason=reason.value, source=source[:200], detail=detail, created_at=now),
        ["address"],
    )
    row = session.scalars(select(EmailSuppression).where(EmailSuppression.address == address)).one()
    if new_id is None:
        return row
    contact_id = _contact_of(session, address)
    if actor is not None:
        audit.record(session, actor=actor, action="email.suppress", entity="email_suppression", entity_id=row.id,
                     contact_id=contact_id, changes={"address": address, "reason": reason.value})
    if contact_id is not None:
        text = f"Email to {address} is suppressed: {_REASON_TEXT[reason]}."
        if detail:
            text += f" ({detail[:300]})"
        post_event(session, event=InboundEvent(
            channel="email", kind="suppressed", direction=Direction.INTERNAL, contact_id=contact_id,
            external_id=f"suppressed:{address}:{now.isoformat()}"[:300], occurred_at=now, text=text,
            data={"address": address, "reason": reason.value, "source": source, "detail": detail},
            actor_user_id=actor.user_id if actor else None,
        ))
    return row


def unsuppress(session: Session, *, address: str, actor: Principal | None = None) -> bool:
    """Take an address off the list; its soft bounces so far stop counting. False if it was not on it."""
    address = normalize_email(address)
    row = session.scalars(select(EmailSuppression).where(EmailSuppression.address == address)).first()
    if row is None:
        return False
    session.delete(row)
    session.execute(update(EmailBounce).where(EmailBounce.address == address).values(cleared=True))
    contact_id = _contact_of(session, address)
    if actor is not None:
        audit.record(session, actor=actor, action="email.unsuppress", entity="email_suppression", entity_id=row.id,
                     contact_id=contact_id, changes={"address": address, "reason": [row.reason, None]})
    if contact_id is not None:
        now = clock.now()
        post_event(session, event=InboundEvent(
            channel="email", kind="unsuppressed", direction=Direction.INTERNAL, contact_id=contact_id,
            external_id=f"unsuppressed:{address}:{now.isoformat()}"[:300], occurred_at=now,
            text=f"Email to {address} is no longer suppressed (it was: {row.reason}).",
            data={"address": address, "previous_reason": row.reason},
            actor_user_id=actor.user_id if actor else None,
        ))
    return True


def record_bounce(session: Session, *, recipient: RecipientStatus, report_id: str, original_message_id: str | None,
                  soft_threshold: int, window_days: int) -> EmailSuppression | None:
    """Count one recipient's failure from a DSN; suppress on a hard bounce or at the soft threshold."""
    address = normalize_email(recipient.address)
    new_id = insert_ignore(
        session, EmailBounce,
        dict(address=address, report_id=report_id[:300], hard=recipient.hard, action=recipient.action[:20],
             status=recipient.status[:20], diagnostic=recipient.diagnostic, original_message_id=original_message_id,
             cleared=False, occurred_at=clock.now()),
        ["address", "report_id"],
    )
    if new_id is None:
        return None  # this report was counted before
    detail = " ".join(p for p in (recipient.status, recipient.diagnostic or "") if p)[:500]
    if recipient.hard:
        return suppress(session, address=address, reason=SuppressionReason.HARD_BOUNCE, source=f"dsn:{report_id}"[:200],
                        detail=detail)
    since = clock.now() - timedelta(days=window_days)
    soft = session.scalar(
        select(func.count()).select_from(EmailBounce).where(
            EmailBounce.address == address, EmailBounce.hard.is_(False), EmailBounce.cleared.is_(False),
            EmailBounce.occurred_at >= since,
        )
    ) or 0
    if soft >= soft_threshold:
        return suppress(session, address=address, reason=SuppressionReason.SOFT_BOUNCES,
                        source=f"dsn:{report_id}"[:200], detail=f"{soft} soft bounces; last: {detail}")
    return None


def _contact_of(session: Session, address: str) -> int | None:
    return session.scalars(
        select(Identity.contact_id).where(Identity.kind == IdentityKind.EMAIL, Identity.value == address)
    ).first()
