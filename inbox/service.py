"""Conversations: opened or joined by inbound events that expect an answer, answered by agents'
replies on the same channel, assigned, snoozed, resolved and reopened. Every function takes the
session first and does not commit; every change is on the audit log and announced (inbox.events)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.auth import SYSTEM, Principal
from hub.models import Account, Contact, Direction, TimelineEvent, User
from hub.translatable import N_, TranslatableError
from inbox import assignment, events, sla
from inbox.models import PRIORITY_RANK, Conversation, ConversationEvent, Priority, Status, Team

if TYPE_CHECKING:
    from inbox.settings import InboxSettings

# An SMS keyword (STOP, START, HELP) is answered by the provider or the hub itself, not a person.
_SMS_AUTOMATED = {"opt_out", "opt_in", "help"}
# Call outcomes (channels.phone.calls.CallOutcome) that leave the caller waiting for a call back.
_UNANSWERED_CALLS = {"missed", "voicemail", "busy"}


class ConversationNotFound(LookupError):
    pass


class ChangeRefused(TranslatableError):
    """A change that cannot be made in the conversation's state; `status` is the HTTP answer.
    Pages show it in the agent's language, the API in English (hub.translatable)."""

    def __init__(self, message: str, *, status: int = 409, **params: Any) -> None:
        super().__init__(message, **params)
        self.status = status


def settings_of(session: Session) -> InboxSettings:
    return session.info["hub"].extensions["inbox"].settings


def expects_answer(event: TimelineEvent, answerable: set[tuple[str, str]]) -> bool:
    """Whether a new inbound event is one a person must answer: never an auto-reply, a bounce or an opt-out."""
    if event.direction != Direction.IN or (event.channel, event.kind) not in answerable:
        return False
    data = event.data or {}
    if data.get("auto_reply") or data.get("bounce") or event.kind in ("bounce", "auto_reply"):
        return False
    if data.get("keyword") in _SMS_AUTOMATED or (data.get("opt_out") or {}).get("intent") == "opt_out":
        return False
    if event.kind == "call":
        return (data.get("outcome") or event.status) in _UNANSWERED_CALLS or bool(data.get("voicemail"))
    return True


def on_event(session: Session, *, event: TimelineEvent, contact: Contact) -> None:
    """The trigger (inside the new event's transaction): inbound opens or joins, an agent's reply answers."""
    settings = settings_of(session)
    if event.direction == Direction.IN:
        if expects_answer(event, {tuple(p) for p in settings.answerable}):  # type: ignore[misc]
            inbound(session, event=event, contact=contact, settings=settings)
    elif event.direction == Direction.OUT and event.actor_user_id is not None:
        agent_reply(session, event=event, contact=contact, settings=settings)


def get(session: Session, conv_id: int, *, lock: bool = False) -> Conversation:
    query = select(Conversation).where(Conversation.id == conv_id)
    # Locked, the row read earlier in this session may be stale after the wait: the locked read
    # overwrites it (populate_existing) instead of a refresh's second SELECT.
    conv = session.scalars(query.with_for_update().execution_options(populate_existing=True) if lock else query).first()
    if conv is None:
        raise ConversationNotFound(f"conversation {conv_id} does not exist")
    return conv


def _locked_open(session: Session, contact_id: int, channel: str) -> Conversation | None:
    """The contact's unresolved conversation on this channel, row-locked until commit."""
    return session.scalars(_LOCKED_OPEN, {"contact_id": contact_id, "open_key": channel}).first()


# Built once: every inbound message asks it, and building the statement and its cache key cost more
# than the read itself (issue 24). populate_existing: a row this session read before the lock is
# overwritten by the locked read, which a refresh (a second SELECT) would otherwise have to do.
_LOCKED_OPEN = (select(Conversation).where(Conversation.contact_id == bindparam("contact_id"),
                                           Conversation.open_key == bindparam("open_key"))
                .with_for_update().execution_options(populate_existing=True))


def team_for(session: Session, channel: str) -> int | None:
    """The team answering this channel: one that lists it, else the first team, else none."""
    teams = session.execute(select(Team.id, Team.channels).order_by(Team.id)).all()
    for team_id, channels in teams:
        if channel in (channels or []):
            return team_id
    return teams[0][0] if teams else None


def _is_key(session: Session, contact: Contact) -> bool:
    if contact.account_id is None:
        return False
    return bool(session.scalar(select(Account.is_key).where(Account.id == contact.account_id)))


def _touch(conv: Conversation) -> None:
    conv.version += 1
    conv.updated_at = clock.now()


def _link(session: Session, conv: Conversation, event: TimelineEvent) -> None:
    # A plain INSERT, not an ORM object: nothing reads the link back in this transaction, and the
    # object, its validation and the flush's RETURNING of its id were a fifth of the inbox's CPU on
    # each inbound message (issue 24).
    session.execute(_LINK, {"conversation_id": conv.id, "event_id": event.id, "direction": str(event.direction),
                            "occurred_at": event.occurred_at})


_LINK = insert(ConversationEvent.__table__)  # type: ignore[arg-type]


def inbound(session: Session, *, event: TimelineEvent, contact: Contact, settings: InboxSettings) -> Conversation:
    """Join the contact's unresolved conversation on this channel, reopen a recent one, or open one."""
    key = event.channel
    at = event.occurred_at
    conv = _locked_open(session, contact.id, key)  # type: ignore[arg-type]
    if conv is not None:
        _link(session, conv, event)
        woke = conv.status in (Status.WAITING, Status.SNOOZED)
        if woke:
            audit.record(session, actor=SYSTEM, action="conversation.status", entity="conversation", entity_id=conv.id,
                         contact_id=conv.contact_id, changes={"status": [conv.status, Status.OPEN.value],
                                                              "because": "customer wrote"})
            conv.status, conv.snoozed_until = Status.OPEN.value, None
        conv.last_inbound_at = max(conv.last_inbound_at or at, at)
        sla.customer_wrote(conv, sla.clock_for(session, settings, conv), at=at)
        _touch(conv)
        events.changed(session, conv, what="message")
        _after_inbound(session, conv, event, contact, settings)
        return conv
    conv = _reopen(session, key=key, contact=contact, channel=event.channel, settings=settings)
    reopened = conv is not None
    if conv is None:
        conv = _create(session, key=key, contact=contact, event=event, settings=settings)
        if conv.last_inbound_at is not None:  # another process opened it first: join theirs
            return inbound(session, event=event, contact=contact, settings=settings)
    _link(session, conv, event)
    conv.last_inbound_at = at
    clock_ = sla.clock_for(session, settings, conv)
    sla.start_cycle(conv, clock_, at=at, first=conv.first_response_at is None)
    if conv.assignee_id is not None and not assignment.take_slot(session, conv.assignee_id,
                                                                 default_cap=settings.default_cap, online_only=False):
        conv.assignee_id = None  # its agent is at the cap now: it goes round again
    session.flush()
    audit.record(session, actor=SYSTEM, action="conversation.reopened" if reopened else "conversation.opened",
                 entity="conversation", entity_id=conv.id, contact_id=conv.contact_id,
                 changes={"channel": conv.channel, "event_id": event.id, "team_id": conv.team_id,
                          "policy": conv.policy, "priority": conv.priority})
    events.opened(session, conv, reopened=reopened)
    if conv.assignee_id is None:
        auto_assign(session, conv, contact, settings=settings)
    _after_inbound(session, conv, event, contact, settings)
    return conv


def _after_inbound(session: Session, conv: Conversation, event: TimelineEvent, contact: Contact,
                   settings: InboxSettings) -> None:
    from inbox.autoreply import maybe_reply

    maybe_reply(session, conv=conv, event=event, contact=contact, settings=settings)


def _create(session: Session, *, key: str, contact: Contact, event: TimelineEvent, settings: InboxSettings) -> Conversation:
    key_account = _is_key(session, contact)
    conv = Conversation(contact_id=contact.id, channel=event.channel, open_key=key, status=Status.OPEN.value,
                        priority=(Priority.HIGH if key_account else Priority.NORMAL).value,
                        team_id=team_for(session, event.channel), key_account=key_account,
                        subject=(event.subject or (event.text or "")[:120] or None), opened_at=event.occurred_at)
    # A savepoint: on PostgreSQL a concurrent first message for the same contact and channel waits
    # on the unique open_key and then fails here; the caller joins the winner's conversation.
    savepoint = session.begin_nested()
    try:
        session.add(conv)
        session.flush()
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        winner = _locked_open(session, contact.id, key)  # type: ignore[arg-type]
        if winner is None:
            raise
        return winner
    return conv


def _reopen(session: Session, *, key: str, contact: Contact, channel: str, settings: InboxSettings) -> Conversation | None:
    if settings.reopen_days <= 0:
        return None
    since = clock.now() - timedelta(days=settings.reopen_days)
    conv = session.scalars(select(Conversation).where(
        Conversation.contact_id == contact.id, Conversation.channel == channel, Conversation.status == Status.RESOLVED,
        Conversation.resolved_at >= since).order_by(Conversation.resolved_at.desc()).limit(1).with_for_update()
        .execution_options(populate_existing=True)).first()  # the row as it is once locked, in one SELECT
    if conv is None:
        return None
    if conv.status != Status.RESOLVED:  # a concurrent message reopened it while we waited
        return _locked_open(session, contact.id, key)  # type: ignore[arg-type]
    savepoint = session.begin_nested()
    try:
        conv.open_key, conv.status, conv.resolved_at, conv.reopened = key, Status.OPEN.value, None, conv.reopened + 1
        _touch(conv)
        session.flush()
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        session.refresh(conv)
        return _locked_open(session, contact.id, key)  # type: ignore[arg-type]
    return conv


def agent_reply(session: Session, *, event: TimelineEvent, contact: Contact, settings: InboxSettings) -> Conversation | None:
    """An agent's message on the conversation's channel: its first (or next) response."""
    if (event.data or {}).get("auto_reply"):
        return None
    conv = _locked_open(session, contact.id, event.channel)  # type: ignore[arg-type]
    if conv is None:
        return None
    _link(session, conv, event)
    first = conv.first_response_at is None
    # Two replies racing for the row lock: the one that locks second may have been written first,
    # so the first response is the earliest reply, not the first to commit.
    if first or event.occurred_at < conv.first_response_at:  # type: ignore[operator]
        conv.first_response_at = event.occurred_at
    if conv.last_outbound_at is None or event.occurred_at > conv.last_outbound_at:
        conv.last_outbound_at = event.occurred_at
    sla.agent_answered(conv, sla.clock_for(session, settings, conv))
    _touch(conv)
    audit.record(session, actor=_user_actor(session, event.actor_user_id), action="conversation.replied", entity="conversation",
                 entity_id=conv.id, contact_id=conv.contact_id,
                 changes={"event_id": event.id, "first_response": first})
    events.changed(session, conv, what="reply")
    return conv


def _user_actor(session: Session, user_id: int | None) -> Principal:
    if user_id is None:
        return SYSTEM
    from hub.auth import user_principal

    user = session.get(User, user_id)
    return user_principal(user) if user is not None else SYSTEM


def auto_assign(session: Session, conv: Conversation, contact: Contact | None = None, *, settings: InboxSettings,
                exclude: int | None = None, actor: Principal = SYSTEM) -> int | None:
    """Give an unassigned conversation to the best available agent (inbox.assignment); who, or None."""
    contact = contact or session.get(Contact, conv.contact_id)
    user_id, rule = assignment.choose(session, conv, contact, default_cap=settings.default_cap, exclude=exclude)  # type: ignore[arg-type]
    if user_id is None:
        return None
    previous, conv.assignee_id = conv.assignee_id, user_id
    _touch(conv)
    audit.record(session, actor=actor, action="conversation.assigned", entity="conversation", entity_id=conv.id,
                 contact_id=conv.contact_id, changes={"assignee_id": [previous, user_id], "rule": rule})
    events.assigned(session, conv, previous_id=previous, rule=rule)
    return user_id


def assign(session: Session, *, conv_id: int, assignee_id: int | None, actor: Principal,
           expected_version: int | None = None) -> Conversation:
    """Assign, reassign or unassign by hand; the new assignee's cap holds (ChangeRefused if full)."""
    settings = settings_of(session)
    conv = get(session, conv_id, lock=True)
    _expect(conv, expected_version)
    if conv.status == Status.RESOLVED:
        raise ChangeRefused(N_("A resolved conversation cannot be assigned; reopen it first."))
    if assignee_id == conv.assignee_id:
        return conv
    if assignee_id is not None:
        user = session.get(User, assignee_id)
        if user is None or not user.is_active:
            raise ChangeRefused(N_("There is no active user %(id)s."), status=422, id=assignee_id)
        if not assignment.take_slot(session, assignee_id, default_cap=settings.default_cap, online_only=False):
            raise ChangeRefused(N_("%(name)s already has the most open conversations allowed."), name=user.display_name)
    assignment.release_slot(session, conv.assignee_id)
    previous, conv.assignee_id = conv.assignee_id, assignee_id
    _touch(conv)
    audit.record(session, actor=actor, action="conversation.assigned", entity="conversation", entity_id=conv.id,
                 contact_id=conv.contact_id, changes={"assignee_id": [previous, assignee_id], "rule": "manual"})
    events.assigned(session, conv, previous_id=previous, rule="manual")
    return conv


def _expect(conv: Conversation, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != conv.version:
        raise ChangeRefused(N_("The conversation changed meanwhile (version %(now)s, not %(sent)s); read it again."),
                            status=412, now=conv.version, sent=expected_version)


def set_status(session: Session, *, conv_id: int, status: Status, actor: Principal, until: datetime | None = None,
               expected_version: int | None = None, at: datetime | None = None) -> Conversation:
    """Open, wait on the customer, snooze until a time, or resolve; `at` is when (now unless a
    history is being recorded, as the demo does)."""
    settings = settings_of(session)
    at = at or clock.now()
    conv = get(session, conv_id, lock=True)
    _expect(conv, expected_version)
    before = conv.status
    changes: dict[str, Any] = {"status": [before, status.value]}
    if status == Status.SNOOZED:
        if until is None or until <= clock.now():
            raise ChangeRefused(N_("Snooze needs a time in the future."), status=422)
        conv.snoozed_until = until
        changes["until"] = until.isoformat()
    elif status == before:
        return conv
    else:
        conv.snoozed_until = None
    if before == Status.RESOLVED:  # reopening by hand
        key = conv.channel
        if _locked_open(session, conv.contact_id, key) is not None:
            raise ChangeRefused(N_("This contact already has an open conversation on this channel."))
        conv.open_key, conv.resolved_at, conv.reopened = key, None, conv.reopened + 1
        if conv.assignee_id is not None and not assignment.take_slot(session, conv.assignee_id,
                                                                     default_cap=settings.default_cap, online_only=False):
            changes["assignee_id"] = [conv.assignee_id, None]
            conv.assignee_id = None
        sla.start_cycle(conv, sla.clock_for(session, settings, conv), at=at, first=conv.first_response_at is None)
    conv.status = status.value
    if status == Status.RESOLVED:
        conv.open_key, conv.resolved_at = None, at
        assignment.release_slot(session, conv.assignee_id)
    sla.refresh(conv, sla.clock_for(session, settings, conv), done=sla.escalated(session, conv.id))  # type: ignore[arg-type]
    _touch(conv)
    audit.record(session, actor=actor, action="conversation.status", entity="conversation", entity_id=conv.id,
                 contact_id=conv.contact_id, changes=changes)
    (events.resolved if status == Status.RESOLVED else lambda s, c: events.changed(s, c, what="status"))(session, conv)
    return conv


def set_priority(session: Session, *, conv_id: int, priority: Priority, actor: Principal) -> Conversation:
    conv = get(session, conv_id, lock=True)
    if conv.priority == priority:
        return conv
    before, conv.priority = conv.priority, priority.value
    _touch(conv)
    audit.record(session, actor=actor, action="conversation.priority", entity="conversation", entity_id=conv.id,
                 contact_id=conv.contact_id, changes={"priority": [before, priority.value]})
    events.changed(session, conv, what="priority")
    return conv


def raise_priority(priority: str) -> str:
    rank = min(PRIORITY_RANK[Priority(priority)] + 1, 3)
    return next(p.value for p, r in PRIORITY_RANK.items() if r == rank)


def for_contact(session: Session, contact_id: int, *, limit: int = 10) -> list[Conversation]:
    """The contact's conversations, unresolved first, then the latest."""
    return list(session.scalars(select(Conversation).where(Conversation.contact_id == contact_id)
                                .order_by((Conversation.status == Status.RESOLVED), Conversation.opened_at.desc())
                                .limit(limit)))
