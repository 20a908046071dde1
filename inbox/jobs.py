"""Scheduler ticks over rows: escalate near-breaches and breaches (once each: inbox_escalation's
unique key), and wake snoozed conversations. What is due lives in the conversation rows
(check_at, snoozed_until), so a restart loses nothing and a repeated tick changes nothing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.auth import SYSTEM
from hub.db import insert_ignore
from hub.models import Task
from hub.translatable import N_
from hub.web.i18n import package_translations
from inbox import events, service, sla
from inbox.models import Conversation, Escalation, Presence, Status, Team

if TYPE_CHECKING:
    from hub.runtime import Hub
    from inbox.settings import InboxSettings

log = logging.getLogger("inbox.jobs")
BATCH = 200
TARGET_LABELS = {"first_response": N_("first response"), "next_response": N_("next response"),
                 "resolution": N_("resolution")}
BREACH_TITLE = N_("SLA breached (%(target)s): conversation #%(id)s")
WARNING_TITLE = N_("SLA about to be breached (%(target)s): conversation #%(id)s")


def escalate_due(hub: Hub, *, limit: int = BATCH) -> int:
    """Escalate every threshold passed by now; how many escalations happened."""
    now = clock.now()
    settings = hub.extensions["inbox"].settings
    count = 0
    with hub.session() as session:
        with session.begin():
            ids = list(session.scalars(select(Conversation.id).where(Conversation.check_at <= now)
                                       .order_by(Conversation.check_at).limit(limit)))
            for conv_id in ids:
                count += _escalate(session, conv_id, now=now, settings=settings)
    return count


def _escalate(session: Session, conv_id: int, *, now: datetime, settings: InboxSettings) -> int:
    conv = service.get(session, conv_id, lock=True)
    clock_ = sla.clock_for(session, settings, conv)
    done = sla.escalated(session, conv_id)
    count = 0
    for target, level, due, moment in sorted(sla.thresholds(conv, clock_), key=lambda t: t[3]):
        if moment > now or (target, level, due) in done:
            continue
        new_id = insert_ignore(session, Escalation, dict(conversation_id=conv_id, target=target, level=level, due_at=due,
                                                          actions={}, occurred_at=now),
                               ["conversation_id", "target", "level", "due_at"])
        done.add((target, level, due))
        if new_id is None:
            continue  # another tick did it
        actions = _act(session, conv, target=target, level=level, due=due, settings=settings)
        escalation = session.get(Escalation, new_id)
        if escalation is not None:
            escalation.actions = actions
        audit.record(session, actor=SYSTEM, action=f"conversation.sla_{level}", entity="conversation",
                     entity_id=conv.id, contact_id=conv.contact_id,
                     changes={"target": target, "due_at": due.isoformat(), **actions})
        count += 1
    sla.refresh(conv, clock_, done=done)
    return count


def _lead_of(session: Session, conv: Conversation) -> int | None:
    if conv.team_id is None:
        return None
    return session.scalar(select(Team.lead_id).where(Team.id == conv.team_id))


def _act(session: Session, conv: Conversation, *, target: str, level: str, due: datetime,
         settings: InboxSettings) -> dict[str, Any]:
    """Notify the lead (a task), and on a breach raise the priority and hand it to someone online."""
    actions: dict[str, Any] = {}
    lead = _lead_of(session, conv)
    notify = lead or conv.assignee_id
    if notify is not None:
        # The task is written once, in the language of the person it is for.
        _ = package_translations(_locale_of(session, notify), "inbox").gettext
        wording = BREACH_TITLE if level == "breach" else WARNING_TITLE
        title = _(wording) % {"target": _(TARGET_LABELS[target]), "id": conv.id}
        task = Task(contact_id=conv.contact_id, title=title[:500], assignee_id=notify, created_by="inbox", due_at=due)
        session.add(task)
        session.flush()
        actions["task_id"], actions["notified"] = task.id, notify
    if level == "breach":
        conv.breached = True
        if settings.breach_raises_priority:
            before, conv.priority = conv.priority, service.raise_priority(conv.priority)
            if before != conv.priority:
                actions["priority"] = [before, conv.priority]
        if settings.breach_reassigns and conv.status != Status.RESOLVED and not _online(session, conv.assignee_id):
            from inbox import assignment

            previous = conv.assignee_id
            if previous is not None:
                assignment.release_slot(session, previous)
                conv.assignee_id = None
            if service.auto_assign(session, conv, settings=settings, exclude=previous) is None and previous is not None:
                # nobody else can take it: it stays with its agent
                if assignment.take_slot(session, previous, default_cap=10**6, online_only=False):
                    conv.assignee_id = previous
            if conv.assignee_id != previous:
                actions["assignee_id"] = [previous, conv.assignee_id]
        events.sla_breached(session, conv, target=target, due_at=due)
    else:
        events.changed(session, conv, what="sla_warning")
    conv.version += 1
    return actions


def _locale_of(session: Session, user_id: int) -> str:
    from hub.models import User

    locale = session.scalar(select(User.locale).where(User.id == user_id))
    default = session.info["hub"].settings.default_locale if "hub" in session.info else "ru"
    return locale if locale in ("ru", "en") else default


def _online(session: Session, user_id: int | None) -> bool:
    if user_id is None:
        return False
    from inbox.models import AgentState

    return session.scalar(select(AgentState.presence).where(AgentState.user_id == user_id)) == Presence.ONLINE


def wake_snoozed(hub: Hub, *, limit: int = BATCH) -> int:
    """Open again every conversation whose snooze has ended; how many."""
    now = clock.now()
    settings = hub.extensions["inbox"].settings
    woken = 0
    with hub.session() as session:
        with session.begin():
            ids = list(session.scalars(select(Conversation.id).where(
                Conversation.status == Status.SNOOZED, Conversation.snoozed_until <= now).limit(limit)))
            for conv_id in ids:
                conv = service.get(session, conv_id, lock=True)
                if conv.status != Status.SNOOZED or conv.snoozed_until is None or conv.snoozed_until > now:
                    continue  # an agent or a message changed it meanwhile
                until = conv.snoozed_until
                conv.status, conv.snoozed_until = Status.OPEN.value, None
                conv.version += 1
                sla.refresh(conv, sla.clock_for(session, settings, conv), done=sla.escalated(session, conv_id))
                audit.record(session, actor=SYSTEM, action="conversation.status", entity="conversation",
                             entity_id=conv.id, contact_id=conv.contact_id,
                             changes={"status": [Status.SNOOZED.value, Status.OPEN.value], "because": "snooze ended",
                                      "until": until.isoformat()})
                events.changed(session, conv, what="status")
                woken += 1
    return woken


# A call's event is posted when it starts ringing and learns later that nobody answered (the voice
# webhooks update it; triggers fire only for new events), so missed calls are swept up here.
CALL_WINDOW = timedelta(days=2)


def missed_calls(hub: Hub, *, limit: int = BATCH) -> int:
    """Open (or join) a conversation for each recent missed call or voicemail not yet in one."""
    from hub.models import Contact, TimelineEvent
    from inbox.models import ConversationEvent

    settings = hub.extensions["inbox"].settings
    if ("phone", "call") not in {tuple(p) for p in settings.answerable}:
        return 0
    answerable = {tuple(p) for p in settings.answerable}
    since = clock.now() - CALL_WINDOW
    opened = 0
    with hub.session() as session:
        with session.begin():
            rows = session.scalars(
                select(TimelineEvent).outerjoin(ConversationEvent, ConversationEvent.event_id == TimelineEvent.id)
                .where(TimelineEvent.channel == "phone", TimelineEvent.kind == "call", TimelineEvent.direction == "in",
                       TimelineEvent.occurred_at >= since, ConversationEvent.id.is_(None))
                .order_by(TimelineEvent.occurred_at).limit(limit)).all()
            for event in rows:
                if service.expects_answer(event, answerable):  # type: ignore[arg-type]
                    contact = session.get(Contact, event.contact_id)
                    service.inbound(session, event=event, contact=contact, settings=settings)  # type: ignore[arg-type]
                    opened += 1
    return opened


def assign_waiting(hub: Hub, *, limit: int = BATCH) -> int:
    """Give unassigned open conversations, due first, to agents now available (someone came online,
    or a slot freed up); how many were assigned. Each is locked and checked again before it moves."""
    from hub.models import Contact

    settings = hub.extensions["inbox"].settings
    assigned = 0
    with hub.session() as session:
        with session.begin():
            ids = list(session.scalars(select(Conversation.id).where(
                Conversation.status == Status.OPEN, Conversation.assignee_id.is_(None))
                .order_by(Conversation.due_at, Conversation.id).limit(limit)))
            for conv_id in ids:
                conv = service.get(session, conv_id, lock=True)
                if conv.assignee_id is not None or conv.status != Status.OPEN:
                    continue
                if service.auto_assign(session, conv, session.get(Contact, conv.contact_id), settings=settings):
                    assigned += 1
    return assigned
