"""Conversations on both stores: what opens one (and what never does), joining, the first response,
resolving and reopening, owner-first assignment, and the contact's timeline left whole."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from hub.auth import SYSTEM
from hub.models import AuditEntry, Contact, TimelineEvent
from inbox import service
from inbox.models import AgentState, ConversationEvent, Status
from tests.inbox.conftest import conversations, inbound, one, reply, user


def test_an_inbound_message_opens_a_conversation_that_later_messages_join(ihub, clock_at):
    first = inbound(ihub, text="Где заказ?")
    clock_at.advance(minutes=5)
    second = inbound(ihub, text="Ау?")
    [conv] = conversations(ihub)
    assert conv.contact_id == first.contact.id == second.contact.id and conv.channel == "fake"
    assert conv.status == Status.OPEN and conv.open_key == "fake"
    # the default policy: first response within 60 business minutes of the first message (Monday 10:00)
    assert conv.first_response_due_at == first.event.occurred_at + timedelta(minutes=60)
    with ihub.session(read_only=True) as s:
        linked = s.scalars(select(ConversationEvent.event_id).where(ConversationEvent.conversation_id == conv.id)).all()
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.entity == "conversation")).all()
    assert sorted(linked) == sorted([first.event.id, second.event.id])
    assert "conversation.opened" in actions


def test_auto_replies_bounces_and_opt_outs_open_nothing(ihub, clock_at):
    inbound(ihub, channel="email", email="a@example.com", kind="auto_reply", data={"auto_reply": True})
    inbound(ihub, channel="email", email="b@example.com", kind="bounce")
    inbound(ihub, channel="email", email="c@example.com", data={"auto_reply": True})
    inbound(ihub, channel="sms", phone="+79160000001", text="STOP", data={"keyword": "opt_out"})
    inbound(ihub, channel="sms", phone="+79160000002", text="не пишите мне больше",
            data={"keyword": "opt_out", "opt_out": {"intent": "opt_out"}})
    inbound(ihub, channel="sms", phone="+79160000003", text="HELP", data={"keyword": "help"})
    inbound(ihub, channel="phone", phone="+79160000004", kind="call", data={"outcome": "answered"})
    inbound(ihub, channel="fake", phone="+79160000005", kind="note")
    assert conversations(ihub) == []
    # …while a message that only might be an opt-out is a person's to read
    inbound(ihub, channel="sms", phone="+79160000006", text="can you stop by tomorrow?",
            data={"opt_out": {"intent": "possible_opt_out"}})
    inbound(ihub, channel="phone", phone="+79160000007", kind="call", data={"outcome": "missed"})
    assert sorted(c.channel for c in conversations(ihub)) == ["phone", "sms"]


def test_an_agents_reply_on_the_channel_is_the_first_response(ihub, clock_at):
    agent = user(ihub, "anna@example.com")
    result = inbound(ihub)
    clock_at.advance(minutes=20)
    reply(ihub, contact_id=result.contact.id, user_id=agent)
    [conv] = conversations(ihub)
    assert conv.first_response_at == clock_at() and conv.first_response_due_at is None
    clock_at.advance(minutes=10)
    inbound(ihub, text="Спасибо, а когда доставка?")
    conv = one(ihub, conv.id)
    assert conv.next_response_due_at == clock_at() + timedelta(minutes=120)
    # a reply on another channel answers nothing here
    reply(ihub, contact_id=result.contact.id, user_id=agent, channel="email")
    assert one(ihub, conv.id).next_response_due_at is not None


def test_resolve_then_a_new_message_reopens_the_same_conversation(ihub, clock_at):
    agent = user(ihub, "anna@example.com")
    result = inbound(ihub)
    [conv] = conversations(ihub)
    assert conv.assignee_id == agent  # the only agent online: round-robin
    with ihub.session() as s, s.begin():
        service.set_status(s, conv_id=conv.id, status=Status.RESOLVED, actor=SYSTEM)
    resolved = one(ihub, conv.id)
    assert resolved.open_key is None and resolved.resolved_at == clock_at()
    with ihub.session(read_only=True) as s:
        assert s.get(AgentState, agent).open_count == 0
    clock_at.advance(hours=1)
    inbound(ihub, contact_id=result.contact.id, text="Снова я")
    [again] = conversations(ihub)
    assert again.id == conv.id and again.status == Status.OPEN and again.reopened == 1
    with ihub.session(read_only=True) as s:
        assert s.get(AgentState, agent).open_count == 1


def test_a_message_after_the_reopen_window_opens_a_new_conversation(ihub, clock_at):
    result = inbound(ihub)
    [conv] = conversations(ihub)
    with ihub.session() as s, s.begin():
        service.set_status(s, conv_id=conv.id, status=Status.RESOLVED, actor=SYSTEM)
    clock_at.advance(days=8)
    inbound(ihub, contact_id=result.contact.id)
    assert [c.status for c in conversations(ihub)] == [Status.RESOLVED, Status.OPEN]


def test_the_owner_gets_it_first_and_round_robin_respects_the_cap(ihub, clock_at):
    owner = user(ihub, "owner@example.com")
    busy = user(ihub, "busy@example.com", cap=1)
    other = user(ihub, "other@example.com")
    away = user(ihub, "away@example.com", presence=None)
    result = inbound(ihub, phone="+79161110000")
    with ihub.session() as s, s.begin():
        s.get(Contact, result.contact.id).owner_id = owner
    inbound(ihub, phone="+79161110000", channel="sms")  # a second channel of the same contact
    owned = [c for c in conversations(ihub) if c.channel == "sms"][0]
    assert owned.assignee_id == owner
    # strangers go round the online agents under their caps; the offline one never gets any
    for n in range(6):
        inbound(ihub, phone=f"+7916222000{n}")
    with ihub.session(read_only=True) as s:
        counts = dict(s.execute(select(AgentState.user_id, AgentState.open_count)).all())
        true_counts = service.assignment.open_counts(s)
    assert counts[busy] == 1 and counts.get(away, 0) == 0
    assert sum(counts.values()) == len(conversations(ihub)) == 8
    assert true_counts == {k: v for k, v in counts.items() if v} and counts[other] >= 2


def test_the_contact_timeline_keeps_every_event(ihub, clock_at):
    result = inbound(ihub)
    inbound(ihub, contact_id=result.contact.id)
    with ihub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(TimelineEvent)
                        .where(TimelineEvent.contact_id == result.contact.id)) == 2


def test_merging_two_contacts_never_leaves_two_open_conversations_on_a_channel(ihub, clock_at):
    from hub.merge import merge_contacts

    a = inbound(ihub, phone="+79160000011").contact.id
    b = inbound(ihub, phone="+79160000012").contact.id
    inbound(ihub, channel="email", email="b@example.com", contact_id=None)
    with ihub.session() as s, s.begin():
        merge_contacts(s, survivor_id=a, merged_id=b, actor=SYSTEM)
    survivor_open = [c for c in conversations(ihub, a) if c.status == Status.OPEN]
    assert sorted(c.channel for c in survivor_open) == ["fake"]  # b's fake one stayed behind
    inbound(ihub, contact_id=a)
    assert len([c for c in conversations(ihub, a) if c.channel == "fake" and c.status == Status.OPEN]) == 1


def test_conversation_changes_are_notices_for_webhooks_in_the_same_transaction(ihub, clock_at):
    seen = []
    ihub.notices.listen(lambda session, notice: seen.append((notice.type, notice.subject, notice.data)))
    first = inbound(ihub, text="Где заказ?")
    [conv] = conversations(ihub)
    opened = [data for kind, _subject, data in seen if kind == "conversation.opened"]
    assert opened and opened[0]["conversation_id"] == conv.id and opened[0]["contact_id"] == first.contact.id
    assert ("conversation.opened", f"contact:{first.contact.id}") in [(k, s) for k, s, _d in seen]
    with ihub.session() as session:
        service.set_status(session, conv_id=conv.id, status=Status.RESOLVED, actor=SYSTEM)
        session.commit()
    resolved = [data for kind, _subject, data in seen if kind == "conversation.resolved"]
    assert resolved and resolved[-1]["status"] == "resolved"


def test_joining_an_open_conversation_reads_it_once(ihub, clock_at):
    """The row lock's read is the read: no refresh after the SELECT … FOR UPDATE."""
    from sqlalchemy import event as sa_event

    inbound(ihub, text="Где заказ?")
    reads: list[str] = []

    def seen(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM inbox_conversation " in statement + " ":
            reads.append(statement)

    sa_event.listen(ihub.db.engine, "before_cursor_execute", seen)
    try:
        inbound(ihub, text="Ау?")
    finally:
        sa_event.remove(ihub.db.engine, "before_cursor_execute", seen)
    [conv] = conversations(ihub)
    assert conv.status == Status.OPEN and len(reads) == 1, reads


def test_the_link_to_a_conversation_is_a_plain_insert(ihub, clock_at):
    """No ORM object per linked event (its validation and the flush's RETURNING were a fifth of the
    inbox's CPU on an inbound message, issue 24), and every event still lands in its conversation."""
    from sqlalchemy import event as sa_event

    built: list[object] = []

    def made(target, *_args):  # type: ignore[no-untyped-def]
        built.append(target)

    sa_event.listen(ConversationEvent, "init", made)
    try:
        first = inbound(ihub, text="Где заказ?")
        second = inbound(ihub, text="Ау?")
        agent = user(ihub, "agent@example.com")
        answer = reply(ihub, contact_id=first.contact.id, user_id=agent)
    finally:
        sa_event.remove(ConversationEvent, "init", made)
    assert built == []
    [conv] = conversations(ihub)
    with ihub.session(read_only=True) as s:
        linked = s.execute(select(ConversationEvent.event_id, ConversationEvent.direction, ConversationEvent.occurred_at)
                           .where(ConversationEvent.conversation_id == conv.id).order_by(ConversationEvent.id)).all()
    assert [(e, d) for e, d, _at in linked] == [(first.event.id, "in"), (second.event.id, "in"), (answer.event.id, "out")]
    assert linked[0].occurred_at == first.event.occurred_at
