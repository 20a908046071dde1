"""RFC 3834 both ways on email: the out-of-hours reply leaves marked `Auto-Submitted: auto-replied`
(read off the real SMTP server the email tests use), and mail marked anything but `no` never
opens or reopens a conversation (received through the email channel's own inbound path)."""

from __future__ import annotations

import email
import email.policy

import pytest
from sqlalchemy import select

from channels.email.inbound import receive
from hub.auth import SYSTEM
from hub.models import Delivery, TimelineEvent
from hub.worker import Worker
from inbox import service
from inbox.models import Status
from tests.channels.email.conftest import configure, smtp_server  # noqa: F401
from tests.channels.email.test_parse import msg
from tests.inbox.conftest import conversations, one

SETTINGS = {"auto_reply_enabled": True}


def receive_mail(hub, headers: str) -> TimelineEvent:  # type: ignore[no-untyped-def]
    with hub.session() as session, session.begin():
        received = receive(session, channel=hub.channel("email"), raw=msg(headers, "Здравствуйте!\r\n"),
                           origin={"test": True})
    with hub.session(read_only=True) as session:
        return session.get(TimelineEvent, received.event_id)


def test_the_out_of_hours_email_reply_says_it_was_auto_replied(make_hub, clock_at, smtp_server):  # noqa: F811
    hub = make_hub(**SETTINGS)
    configure(hub, **smtp_server.settings())
    clock_at.advance(hours=10)  # Monday 20:00 in Moscow: closed
    receive_mail(hub, "From: Анна <anna@example.org>\nTo: support@hub.example.com\nSubject: Заказ\n"
                      "Message-ID: <q1@example.org>")
    [conv] = conversations(hub)
    assert Worker(hub).tick() == 1
    [(meta, raw)] = smtp_server.received()
    assert meta["rcpt_tos"] == ["anna@example.org"]
    sent = email.message_from_bytes(raw, policy=email.policy.default)
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["In-Reply-To"] == "<q1@example.org>"
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Delivery.idempotency_key)).all() == [f"inbox.out_of_hours:{conv.id}:2026-12-07"]


@pytest.mark.parametrize("value", ["auto-replied", "auto-generated", "auto-notified", "Auto-Replied; owner-email=a@b.c"])
def test_mail_marked_automatic_neither_opens_nor_reopens(make_hub, clock_at, value):
    hub = make_hub(**SETTINGS)
    configure(hub)
    first = receive_mail(hub, f"From: robot@example.org\nSubject: Re: Заказ\nMessage-ID: <a1@example.org>\n"
                              f"Auto-Submitted: {value}")
    assert first.kind == "auto_reply" and conversations(hub) == []
    # A person's message opens one; resolved, an automatic answer to the agent's mail does not reopen it.
    person = receive_mail(hub, "From: anna@example.org\nSubject: Заказ\nMessage-ID: <p1@example.org>")
    [conv] = conversations(hub)
    with hub.session() as s, s.begin():
        service.set_status(s, conv_id=conv.id, status=Status.RESOLVED, actor=SYSTEM)
    clock_at.advance(minutes=5)
    receive_mail(hub, f"From: anna@example.org\nSubject: Re: Заказ\nMessage-ID: <a2@example.org>\n"
                      f"Auto-Submitted: {value}")
    assert one(hub, conv.id).status == Status.RESOLVED and len(conversations(hub)) == 1
    assert person.contact_id == conv.contact_id


def test_mail_marked_no_is_a_person_and_reopens(make_hub, clock_at):
    hub = make_hub(**SETTINGS)
    configure(hub)
    receive_mail(hub, "From: anna@example.org\nSubject: Заказ\nMessage-ID: <p1@example.org>")
    [conv] = conversations(hub)
    with hub.session() as s, s.begin():
        service.set_status(s, conv_id=conv.id, status=Status.RESOLVED, actor=SYSTEM)
    again = receive_mail(hub, "From: anna@example.org\nSubject: Re: Заказ\nMessage-ID: <p2@example.org>\n"
                              "Auto-Submitted: no (a person wrote this)")
    assert again.kind == "message"
    assert one(hub, conv.id).status == Status.OPEN
