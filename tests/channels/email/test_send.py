"""Sending through the outbox and aiosmtplib to a real SMTP server (aiosmtpd in its own process)."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.channel import OutboundMessage
from channels.email.compose import EmailDraft, compose_email
from channels.email.mime import message_token
from channels.email.suppression import suppress
from hub import outbox
from hub.auth import SYSTEM
from hub.models import Contact, Delivery, Identity, TimelineEvent
from hub.worker import Worker
from tests.channels.email.conftest import configure


def make_contact(hub, address: str, name: str = "Анна Смирнова") -> int:  # type: ignore[no-untyped-def]
    with hub.session() as s, s.begin():
        contact = Contact(display_name=name, search_name=name.casefold())
        s.add(contact)
        s.flush()
        s.add(Identity(contact_id=contact.id, kind="email", value=address, is_primary=True))
    return contact.id  # type: ignore[return-value]


def queue(hub, contact_id: int, address: str, key: str, purpose: str = "transactional", **content) -> int:  # type: ignore[no-untyped-def]
    body = {"subject": "Ваш заказ", "text": "Здравствуйте!", **content}
    with hub.session() as s, s.begin():
        delivery = outbox.enqueue(s, channel="email", address=address, content=body, idempotency_key=key,
                                  contact_id=contact_id, purpose=purpose)
    return delivery.id  # type: ignore[return-value]


def delivery(hub, delivery_id: int) -> Delivery:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.get(Delivery, delivery_id)


def upload(hub, data: bytes, filename: str, content_type: str) -> dict:  # type: ignore[no-untyped-def]
    channel = hub.channel("email")
    sha = channel.files.attachments.put_bytes(data)
    return {"filename": filename, "content_type": content_type, "size": len(data), "sha256": sha}


def test_the_exact_mime_the_server_receives(hub, smtp_server, frozen_clock):
    channel = configure(hub, **smtp_server.settings(), reply_to="reply@hub.example.com", reply_to_tagged=True)
    contact = make_contact(hub, "anna@example.org", "Анна Смирнова")
    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
    key = "test:exact-mime"
    delivery_id = queue(
        hub, contact, "anna@example.org", key,
        subject="Счёт №7781 — оплата до пятницы",
        text="Здравствуйте, Анна!\nСчёт во вложении.",
        html="<p>Здравствуйте, <b>Анна</b>!</p>",
        to_name="Анна Смирнова",
        in_reply_to="<parent-1@example.org>",
        references=["<root-0@example.org>", "<parent-1@example.org>"],
        attachments=[upload(hub, pdf, "Счёт №7781.pdf", "application/pdf")],
    )
    assert Worker(hub).tick() == 1

    sent = delivery(hub, delivery_id)
    token = message_token(key)
    message_id = f"{token}@hub.example.com"
    assert (sent.status, sent.provider_id, sent.attempts) == ("sent", message_id, 1)
    ((meta, raw),) = smtp_server.received()
    assert meta["mail_from"] == "support@hub.example.com" and meta["rcpt_tos"] == ["anna@example.org"]

    # Byte for byte what the adapter builds for this delivery (same key, same frozen clock)…
    message = OutboundMessage(delivery_id=delivery_id, channel="email", address="anna@example.org",
                              content=sent.content, idempotency_key=key, purpose="transactional",
                              contact_id=contact, attempt=1)
    assert raw == channel._prepare(message)[1]
    # …and that is this message:
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert head.decode("ascii").split("\r\n") == [
        "From: Hub Support <support@hub.example.com>",
        "To: =?utf-8?b?0JDQvdC90LAg0KHQvNC40YDQvdC+0LLQsA==?= <anna@example.org>",
        "Subject: =?utf-8?b?0KHRh9GR0YIg4oSWNzc4MSDigJQg0L7Qv9C70LDRgtCwINC00L4g0L8=?=",
        " =?utf-8?b?0Y/RgtC90LjRhtGL?=",
        "Date: Thu, 15 Jan 2026 09:00:00 +0000",
        f"Message-ID: <{message_id}>",
        f"Reply-To: Hub Support <reply+{token}@hub.example.com>",
        "In-Reply-To: <parent-1@example.org>",
        "References: <root-0@example.org> <parent-1@example.org>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="=_hub_{token[:20]}_0"',
    ]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Счёт №7781 — оплата до пятницы"
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf"]
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain["Content-Transfer-Encoding"] == "quoted-printable" and plain.get_content_charset() == "utf-8"
    assert plain.get_content() == "Здравствуйте, Анна!\r\nСчёт во вложении.\r\n"
    assert html.get_content() == "<p>Здравствуйте, <b>Анна</b>!</p>\r\n"
    (attachment,) = parsed.iter_attachments()
    assert (b"Content-Disposition: attachment;\r\n"
            b" filename*=utf-8''%D0%A1%D1%87%D1%91%D1%82%20%E2%84%967781.pdf\r\n") in raw  # RFC 2231
    assert attachment.get_filename() == "Счёт №7781.pdf" and attachment.get_content() == pdf
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78 and raw.isascii()

    with hub.session(read_only=True) as s:
        out = s.get(TimelineEvent, sent.event_id)
    assert out.status == "sent" and out.data["provider_id"] == message_id and out.direction == "out"


def test_a_batch_goes_over_one_connection_and_each_reply_maps_to_retry_or_dead(hub, smtp_server):
    configure(hub, **smtp_server.settings(), smtp_connections=1)
    addresses = ["one@example.org", "defer@example.org", "reject@example.org", "datafail@example.org",
                 "two@example.org"]
    ids = {}
    for n, address in enumerate(addresses):
        ids[address] = queue(hub, make_contact(hub, address, f"C{n}"), address, f"test:batch:{n}")
    assert Worker(hub).tick() == len(addresses)

    received = smtp_server.received()
    assert sorted(m["rcpt_tos"][0] for m, _ in received) == ["one@example.org", "two@example.org"]
    assert len({m["peer_port"] for m, _ in received}) == 1, "the batch should reuse one connection"

    deferred = delivery(hub, ids["defer@example.org"])
    assert deferred.status == "queued" and deferred.attempts == 1
    assert deferred.last_error.startswith("the SMTP server deferred the message: 451 4.2.0")
    assert deferred.send_after > deferred.updated_at - timedelta(seconds=1)
    rejected = delivery(hub, ids["reject@example.org"])
    assert rejected.status == "dead"
    assert "550 5.1.1 <reject@example.org>: Recipient address rejected: User unknown" in rejected.last_error
    content_refused = delivery(hub, ids["datafail@example.org"])
    assert content_refused.status == "dead" and "554 5.6.0 Message content rejected" in content_refused.last_error
    with hub.session(read_only=True) as s:
        dead_event = s.get(TimelineEvent, rejected.event_id)
    assert dead_event.status == "dead" and "550 5.1.1" in dead_event.data["error"]


def test_a_dropped_connection_is_transient_and_the_rest_of_the_batch_still_goes(hub, smtp_server):
    configure(hub, **smtp_server.settings(), smtp_connections=1)
    first = queue(hub, make_contact(hub, "hangup@example.org", "H"), "hangup@example.org", "test:drop:1")
    second = queue(hub, make_contact(hub, "after@example.org", "A"), "after@example.org", "test:drop:2")
    Worker(hub).tick()
    dropped = delivery(hub, first)
    assert dropped.status == "queued" and "SMTP connection problem" in dropped.last_error
    assert delivery(hub, second).status == "sent"
    assert [m["rcpt_tos"] for m, _ in smtp_server.received()] == [["after@example.org"]]


def test_an_unreachable_server_is_transient(hub):
    from tests.channels.email.conftest import free_port

    configure(hub, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none", smtp_timeout=5)
    delivery_id = queue(hub, make_contact(hub, "x@example.org"), "x@example.org", "test:down")
    Worker(hub).tick()
    row = delivery(hub, delivery_id)
    assert row.status == "queued" and "cannot connect" in row.last_error


def test_starttls_required_but_not_offered_sends_nothing_in_plain_text(hub, smtp_server):
    configure(hub, **{**smtp_server.settings(), "smtp_security": "starttls"})
    delivery_id = queue(hub, make_contact(hub, "x@example.org"), "x@example.org", "test:no-starttls")
    Worker(hub).tick()
    row = delivery(hub, delivery_id)
    assert row.status == "queued" and "STARTTLS" in row.last_error and "plain text" in row.last_error
    assert smtp_server.received() == []


def test_starttls_with_a_trusted_certificate_and_auth(hub, smtp_factory, tls_files):
    server = smtp_factory(mode="starttls", tls=tls_files, login="hub:s3cret-pass")
    configure(hub, **server.settings(smtp_ca_file=str(tls_files[0]), smtp_username="hub", smtp_password="s3cret-pass"))
    delivery_id = queue(hub, make_contact(hub, "x@example.org"), "x@example.org", "test:starttls")
    Worker(hub).tick()
    assert delivery(hub, delivery_id).status == "sent"
    ((meta, _),) = server.received()
    assert meta["tls"] is True and meta["login"] == "hub"


def test_a_certificate_the_hub_does_not_trust_stops_the_send(hub, smtp_factory, tls_files):
    server = smtp_factory(mode="starttls", tls=tls_files)
    configure(hub, **server.settings())  # no smtp_ca_file: the self-signed certificate is not trusted
    delivery_id = queue(hub, make_contact(hub, "x@example.org"), "x@example.org", "test:untrusted")
    Worker(hub).tick()
    row = delivery(hub, delivery_id)
    assert row.status == "queued" and "CERTIFICATE_VERIFY_FAILED" in row.last_error
    assert server.received() == []


def test_implicit_tls(hub, smtp_factory, tls_files):
    server = smtp_factory(mode="tls", tls=tls_files)
    configure(hub, **server.settings(smtp_ca_file=str(tls_files[0])))
    delivery_id = queue(hub, make_contact(hub, "x@example.org"), "x@example.org", "test:tls")
    Worker(hub).tick()
    assert delivery(hub, delivery_id).status == "sent"
    assert server.received()[0][0]["tls"] is True


def test_header_injection_through_a_contact_name_or_a_subject_never_makes_a_header(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    evil = "Bob\r\nBcc: victim@evil.example"
    contact = make_contact(hub, "bob@example.org", evil)
    with hub.session() as s, s.begin():
        with pytest.raises(ValueError, match="subject"):
            outbox.enqueue(s, channel="email", address="bob@example.org", idempotency_key="test:inj:subject",
                           content={"subject": "Hi\r\nBcc: victim@evil.example", "text": "x"}, contact_id=contact)
        with pytest.raises(ValueError):
            outbox.enqueue(s, channel="email", address="bob@example.org", idempotency_key="test:inj:refs",
                           content={"subject": "Hi", "text": "x", "references": ["<a@b>\r\nBcc: v@evil.example"]},
                           contact_id=contact)
    with hub.session() as s, s.begin():
        queued = compose_email(s, draft=EmailDraft(contact_id=contact, subject="Hello", text="Hi Bob"), actor=SYSTEM)
    Worker(hub).tick()
    assert delivery(hub, queued.id).status == "sent"
    ((meta, raw),) = smtp_server.received()
    assert meta["rcpt_tos"] == ["bob@example.org"]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and b"\r\nBcc:" not in raw
    assert parsed["To"].addresses[0].display_name == "Bob Bcc: victim@evil.example"
    assert parsed["To"].addresses[0].addr_spec == "bob@example.org"


def test_a_suppressed_address_gets_no_marketing_mail_but_still_transactional(hub, smtp_server):
    configure(hub, **smtp_server.settings())
    contact = make_contact(hub, "gone@example.org")
    with hub.session() as s, s.begin():
        suppress(s, address="Gone@Example.org", reason="hard_bounce", source="test")
    marketing = queue(hub, contact, "gone@example.org", "test:mkt", purpose="marketing")
    service = queue(hub, contact, "gone@example.org", "test:txn")
    Worker(hub).tick()
    blocked = delivery(hub, marketing)
    # Skipped for good by the channel's send gate, before any SMTP conversation (as a do-not-contact
    # address is): cancelled, with the reason.
    assert blocked.status == "cancelled" and "is suppressed (hard_bounce since" in blocked.last_error
    assert delivery(hub, service).status == "sent"
    assert [m["rcpt_tos"] for m, _ in smtp_server.received()] == [["gone@example.org"]]


def test_content_the_channel_cannot_carry_is_refused_at_enqueue(hub):
    configure(hub, smtp_host="127.0.0.1")
    contact = make_contact(hub, "x@example.org")
    bad = [
        {"text": "no subject"},
        {"subject": "no body"},
        {"subject": "x", "text": "y", "attachments": [{"filename": "a.pdf", "content_type": "application/pdf",
                                                       "size": 3, "sha256": "0" * 64}]},
        {"subject": "x", "text": "y", "list_unsubscribe": "javascript:alert(1)"},
        {"subject": "x", "text": "y", "surprise": True},
    ]
    for n, content in enumerate(bad):
        with hub.session() as s, s.begin():
            with pytest.raises(ValueError):
                outbox.enqueue(s, channel="email", address="x@example.org", content=content,
                               idempotency_key=f"test:bad:{n}", contact_id=contact)
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Delivery)).all() == []
