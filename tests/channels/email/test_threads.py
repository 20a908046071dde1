"""Conversations end to end: an agent's mail goes out over SMTP, the customer's reply, auto-reply or
bounce comes back in, and each lands in the right thread with the right effect."""

from __future__ import annotations

import email
import email.policy

from sqlalchemy import select

from channels.email.compose import EmailDraft, compose_email
from channels.email.models import EmailBounce
from channels.email.suppression import get_suppression, suppressions_for_contact, unsuppress
from hub.auth import SYSTEM
from hub.models import Delivery, TimelineEvent
from hub.worker import Worker
from tests.channels.email.conftest import configure
from tests.channels.email.test_inbound import receive_raw
from tests.channels.email.test_parse import dsn, msg
from tests.channels.email.test_send import delivery, make_contact, queue


def send_from_agent(hub, smtp_server, contact_id: int, **draft) -> tuple[Delivery, email.message.EmailMessage]:  # type: ignore[no-untyped-def]
    with hub.session() as s, s.begin():
        queued = compose_email(s, draft=EmailDraft(contact_id=contact_id, **draft), actor=SYSTEM)
    Worker(hub).tick()
    sent = delivery(hub, queued.id)
    assert sent.status == "sent", sent.last_error
    raw = smtp_server.received()[-1][1]
    return sent, email.message_from_bytes(raw, policy=email.policy.default)


def event(hub, event_id: int) -> TimelineEvent:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.get(TimelineEvent, event_id)


def test_a_customer_reply_joins_the_conversation_the_agent_started(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "anna@example.org")
    sent, wire = send_from_agent(hub, smtp_server, contact, subject="Доставка заказа", text="Когда удобно?")
    outbound = event(hub, sent.event_id)
    assert outbound.thread_key == f"email:{sent.provider_id}" and wire["Message-ID"] == f"<{sent.provider_id}>"

    reply = receive_raw(hub, msg(f"""
From: Anna <anna@example.org>
To: support@hub.example.com
Subject: Re: Доставка заказа
Message-ID: <reply-1@example.org>
In-Reply-To: {wire["Message-ID"]}
References: {wire["Message-ID"]}
""", "В четверг.\r\n\r\nOn Thu, Hub Support wrote:\r\n> Когда удобно?\r\n"))
    answer = event(hub, reply.event_id)
    assert answer.thread_key == outbound.thread_key and answer.contact_id == contact
    assert answer.kind == "message" and answer.text == "В четверг." and "> Когда удобно?" in answer.data["quoted_text"]

    # The agent answers from the timeline: the reply keeps the thread and the headers say so.
    sent2, wire2 = send_from_agent(hub, smtp_server, contact, text="Хорошо, привезём.", reply_to_event_id=answer.id)
    assert wire2["Subject"] == "Re: Доставка заказа"
    assert wire2["In-Reply-To"] == "<reply-1@example.org>"
    assert wire2["References"].split() == [f"<{sent.provider_id}>", "<reply-1@example.org>"]
    assert event(hub, sent2.event_id).thread_key == outbound.thread_key


def test_a_reply_goes_to_the_customers_reply_to_address(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    got = receive_raw(hub, msg("""
From: Boris <boris@example.org>
Reply-To: Boris at work <boris.work@example.org>
Subject: Question
Message-ID: <q-1@example.org>
"""))
    inbound = event(hub, got.event_id)
    assert inbound.thread_key == "email:q-1@example.org"
    sent, wire = send_from_agent(hub, smtp_server, inbound.contact_id, text="Answer", reply_to_event_id=inbound.id)
    assert sent.address == "boris.work@example.org" and wire["To"].addresses[0].addr_spec == "boris.work@example.org"
    assert event(hub, sent.event_id).thread_key == "email:q-1@example.org"


def test_a_tagged_reply_address_threads_even_without_references(hub, smtp_server):
    configure(hub, **smtp_server.settings(), reply_to="reply@hub.example.com", reply_to_tagged=True)
    contact = make_contact(hub, "vera@example.org")
    sent, wire = send_from_agent(hub, smtp_server, contact, subject="Hello", text="Hi")
    tagged = wire["Reply-To"].addresses[0].addr_spec
    assert tagged.startswith("reply+") and tagged.endswith("@hub.example.com")
    got = receive_raw(hub, msg(f"From: vera@example.org\nTo: {tagged}\nSubject: answer\nMessage-ID: <v-1@example.org>"))
    assert event(hub, got.event_id).thread_key == event(hub, sent.event_id).thread_key


def test_a_reply_to_a_campaign_message_joins_it(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "gleb@example.org")
    delivery_id = queue(hub, contact, "gleb@example.org", "campaign:1:gleb", purpose="marketing", subject="Sale")
    Worker(hub).tick()
    sent = delivery(hub, delivery_id)
    assert event(hub, sent.event_id).thread_key is None
    got = receive_raw(hub, msg(f"From: gleb@example.org\nSubject: Re: Sale\nMessage-ID: <g-1@example.org>\n"
                               f"In-Reply-To: <{sent.provider_id}>"))
    assert event(hub, got.event_id).thread_key == f"email:{sent.provider_id}"
    assert event(hub, sent.event_id).thread_key == f"email:{sent.provider_id}"


def test_an_auto_reply_is_recorded_in_the_thread_but_is_not_a_customer_reply(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "olga@example.org")
    sent, wire = send_from_agent(hub, smtp_server, contact, subject="Invoice", text="Attached")
    got = receive_raw(hub, msg(f"""
From: olga@example.org
Subject: Автоответ: Invoice
Auto-Submitted: auto-replied
Message-ID: <ooo-1@example.org>
In-Reply-To: {wire["Message-ID"]}
""", "Я в отпуске до 20 января."))
    auto = event(hub, got.event_id)
    assert auto.kind == "auto_reply" and auto.data["auto_reply"] is True
    assert auto.thread_key == event(hub, sent.event_id).thread_key
    with hub.session(read_only=True) as s:
        replies = s.scalars(select(TimelineEvent).where(
            TimelineEvent.contact_id == contact, TimelineEvent.direction == "in", TimelineEvent.kind == "message")).all()
    assert replies == []


def test_a_hard_bounce_marks_the_delivery_and_suppresses_the_address_at_once(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "lost@example.org")
    sent, _ = send_from_agent(hub, smtp_server, contact, subject="Order", text="Hi")
    got = receive_raw(hub, dsn([("lost@example.org", "failed", "5.1.1")], original=f"<{sent.provider_id}>"))

    bounce = event(hub, got.event_id)
    assert bounce.kind == "bounce" and bounce.contact_id == contact
    assert bounce.thread_key == event(hub, sent.event_id).thread_key
    after = delivery(hub, sent.id)
    assert after.status == "bounced" and "5.1.1" in after.last_error
    assert event(hub, sent.event_id).status == "bounced"
    with hub.session(read_only=True) as s:
        row = get_suppression(s, address="lost@example.org")
        assert row is not None and row.reason == "hard_bounce" and "5.1.1" in row.detail
        assert [r.address for r in suppressions_for_contact(s, contact_id=contact)] == ["lost@example.org"]
        note = s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "suppressed")).one()
    assert note.contact_id == contact and "permanently" in note.text

    # The same report read again (another mailbox, a re-poll) changes nothing.
    again = receive_raw(hub, dsn([("lost@example.org", "failed", "5.1.1")], original=f"<{sent.provider_id}>"))
    assert not again.created


def test_soft_bounces_are_counted_once_each_and_suppress_at_the_threshold(hub, smtp_server):
    configure(hub, **smtp_server.settings(), soft_bounce_threshold=2)
    contact = make_contact(hub, "full@example.org")
    first, _ = send_from_agent(hub, smtp_server, contact, subject="One", text="1")
    report = dsn([("full@example.org", "failed", "4.2.2")], original=f"<{first.provider_id}>")
    receive_raw(hub, report)
    receive_raw(hub, report)  # a replay is not a second bounce
    assert delivery(hub, first.id).status == "bounced"
    with hub.session(read_only=True) as s:
        assert get_suppression(s, address="full@example.org") is None

    # A delayed notice is a report, not a bounce.
    second, _ = send_from_agent(hub, smtp_server, contact, subject="Two", text="2")
    receive_raw(hub, dsn([("full@example.org", "delayed", "4.4.7")], original=f"<{second.provider_id}>"))
    assert delivery(hub, second.id).status == "sent"
    with hub.session(read_only=True) as s:
        assert get_suppression(s, address="full@example.org") is None

    receive_raw(hub, dsn([("full@example.org", "failed", "4.2.2"), ("other@example.org", "failed", "4.2.2")],
                         original=f"<{second.provider_id}>"))
    assert delivery(hub, second.id).status == "bounced"
    with hub.session(read_only=True) as s:
        row = get_suppression(s, address="full@example.org")
        assert row is not None and row.reason == "soft_bounces" and row.detail.startswith("2 soft bounces")
        assert get_suppression(s, address="other@example.org") is None  # one soft bounce so far

    # Taken off the list, the address starts counting from zero.
    with hub.session() as s, s.begin():
        assert unsuppress(s, address="full@example.org", actor=SYSTEM)
    with hub.session(read_only=True) as s:
        assert all(b.cleared for b in s.scalars(select(EmailBounce).where(EmailBounce.address == "full@example.org")))
        assert get_suppression(s, address="full@example.org") is None


def test_a_delivered_notice_moves_the_delivery_forward(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "ok@example.org")
    sent, _ = send_from_agent(hub, smtp_server, contact, subject="Hi", text="Hi")
    receive_raw(hub, dsn([("ok@example.org", "delivered", "2.0.0")], original=f"<{sent.provider_id}>"))
    assert delivery(hub, sent.id).status == "delivered"


def test_the_hubs_own_message_coming_back_is_not_recorded_as_inbound(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "copy@example.org")
    sent, _ = send_from_agent(hub, smtp_server, contact, subject="Copy", text="Hi")
    looped = receive_raw(hub, smtp_server.received()[-1][1])  # e.g. a Bcc to the polled mailbox
    assert looped.skipped == "the hub's own message" and looped.event_id is None
    with hub.session(read_only=True) as s:
        assert s.scalars(select(TimelineEvent).where(TimelineEvent.direction == "in")).all() == []
