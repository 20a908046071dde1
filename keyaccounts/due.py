"""Taking a key account's temperature again soon after new events, without doing it in the request.

A trigger on new events (the customer's inbound contact, orders, survey answers, notes, calls, and
the agents' own replies; not the hub's campaign sends) marks the contact's key account due in the
event's own transaction: one `account_temperature_due` row per account, its `version` bumped by
each later event. The job `keyaccounts.recompute_due` (every `recompute_due_seconds`, once per
cluster) takes the temperature of each due account through `watch.watch_one` — the same rules,
alerts and episode as the hourly run — and deletes the mark in the same transaction only if no
event bumped it meanwhile, so an event that arrives during a recompute is never lost.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import clock
from hub.models import Account, Contact, TimelineEvent
from hub.triggers import TriggerRegistry
from keyaccounts.models import TemperatureDue
from keyaccounts.watch import WATCHING, RunResult, Thresholds, watch_one

log = logging.getLogger("keyaccounts.due")
# Outgoing kinds that say something about the relationship: an agent's reply, an outbound call.
# ("campaign.message" and other bulk sends are left out: thousands a run, none about one account.)
OUTGOING_KINDS = ("message", "call")
BATCH = 200


def mark_due(session: Session, *, account_id: int) -> None:
    """Mark the account due (insert, or bump the version of the mark already there)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = TemperatureDue.__table__  # type: ignore[attr-defined]
    stmt = insert(table).values(account_id=account_id, marked_at=clock.now(), version=1)
    session.execute(stmt.on_conflict_do_update(index_elements=["account_id"],
                                               set_={"version": table.c.version + 1}))


def on_event(session: Session, *, event: TimelineEvent, contact: Contact) -> None:
    """The trigger: a new event of a key account's contact makes its temperature due."""
    if contact.account_id is None or contact.account_id in (session.info.get(WATCHING) or ()):
        return  # no account, or the watch's own alert (its event, its task): nothing new about them
    account = session.get(Account, contact.account_id)  # usually already in the session
    if account is not None and account.is_key:
        mark_due(session, account_id=account.id)  # type: ignore[arg-type]


def register(triggers: TriggerRegistry) -> None:
    triggers.register("*", on_event, outgoing=False)
    for kind in OUTGOING_KINDS:
        triggers.register(kind, _outgoing_only)


def _outgoing_only(session: Session, *, event: TimelineEvent, contact: Contact) -> None:
    if str(event.direction) == "out":  # the "*" registration already saw the others
        on_event(session, event=event, contact=contact)


def recompute_due(hub: Any, *, thresholds: Thresholds, limit: int = BATCH) -> RunResult:
    """Take the temperature of the accounts marked due (the oldest marks first), each in its own
    transaction with its mark's removal; an account no longer key just loses its mark."""
    result = RunResult()
    now = clock.now()
    with hub.session(read_only=True) as session:
        due = session.execute(select(TemperatureDue.account_id, TemperatureDue.version)
                              .order_by(TemperatureDue.marked_at, TemperatureDue.account_id).limit(limit)).all()
    for account_id, version in due:
        try:
            with hub.session() as session:
                account = session.get(Account, account_id)
                if account is not None and account.is_key:
                    watch_one(session, account_id=account_id, now=now, thresholds=thresholds, result=result,
                              default_locale=hub.settings.default_locale)
                session.execute(delete(TemperatureDue).where(TemperatureDue.account_id == account_id,
                                                             TemperatureDue.version == version))
                session.commit()
        except IntegrityError:
            log.info("keyaccounts: the cooling episode of account %s was opened elsewhere", account_id)
    return result
