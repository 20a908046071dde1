"""Receiving mail into the store (both backends): the corpus, attachments, raw keeping, big messages."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from channels.email.inbound import receive
from channels.email.models import EmailAttachment, EmailRawMessage
from channels.email.store import hash_file
from hub.models import Contact, Identity, TimelineEvent
from tests.channels.email.conftest import CORPUS, configure
from tests.channels.email.test_parse import CORPUS_FILES, msg


def receive_raw(hub, raw: bytes, **kwargs):  # type: ignore[no-untyped-def]
    channel = hub.channel("email")
    with hub.session() as session, session.begin():
        return receive(session, channel=channel, raw=raw, origin={"test": True}, **kwargs)


def count(hub, model) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))


def event(hub, event_id: int) -> TimelineEvent:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.get(TimelineEvent, event_id)


def test_every_corpus_message_ingests_and_a_replay_changes_nothing(hub):
    configure(hub)
    ids = []
    for path in CORPUS_FILES:
        received = receive_raw(hub, path.read_bytes())
        assert received.created and received.event_id, path
        ids.append(received.event_id)
    events = count(hub, TimelineEvent)
    assert events == len(CORPUS_FILES)
    for path in CORPUS_FILES:
        again = receive_raw(hub, path.read_bytes())
        assert not again.created
    assert count(hub, TimelineEvent) == events
    # A message with a broken structure is kept raw for inspection.
    broken = receive_raw(hub, (CORPUS / "thirdparty" / "005.eml").read_bytes())
    stored = event(hub, broken.event_id)
    assert stored.data["raw"]["reason"] == "malformed"


def test_sender_is_matched_by_address_in_any_case(hub):
    configure(hub)
    first = receive_raw(hub, msg("From: Anna <Anna@Example.ORG>\nSubject: one\nMessage-ID: <m1@example.org>"))
    second = receive_raw(hub, msg("From: anna@example.org\nSubject: two\nMessage-ID: <m2@example.org>"))
    assert event(hub, first.event_id).contact_id == event(hub, second.event_id).contact_id
    with hub.session(read_only=True) as s:
        contact = s.get(Contact, event(hub, first.event_id).contact_id)
        assert contact.display_name == "Anna"
        assert s.scalars(select(Identity.value)).all() == ["anna@example.org"]


def test_attachments_are_stored_under_content_names_and_listed_on_the_event(hub):
    channel = configure(hub)
    raw = (CORPUS / "thirdparty" / "019.eml").read_bytes()
    received = receive_raw(hub, raw)
    stored = event(hub, received.event_id)
    listed = stored.data["attachments"]
    assert listed and all("id" in a for a in listed)
    with hub.session(read_only=True) as s:
        rows = s.scalars(select(EmailAttachment).where(EmailAttachment.event_id == stored.id)).all()
    assert {r.id for r in rows} == {a["id"] for a in listed}
    for row in rows:
        path = channel.files.attachments.path(row.sha256)
        assert path.name == row.sha256 and path.is_file()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256 and path.stat().st_size == row.size


def test_an_attachment_over_the_cap_is_not_stored_but_the_raw_message_is(hub):
    channel = configure(hub, max_attachment_bytes=2048)
    raw = msg("""
From: a@example.org
Subject: big file
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"
""", "--b\r\nContent-Type: text/plain\r\n\r\nhere\r\n--b\r\nContent-Type: application/octet-stream\r\n"
         "Content-Disposition: attachment; filename=big.bin\r\n\r\n" + "x" * 5000 + "\r\n--b--\r\n")
    stored = event(hub, receive_raw(hub, raw).event_id)
    (info,) = stored.data["attachments"]
    assert "id" not in info and "larger than 2048" in info["skipped"]
    assert count(hub, EmailAttachment) == 0
    assert stored.data["raw"]["reason"] == "attachment_too_large"
    with hub.session(read_only=True) as s:
        kept = s.scalars(select(EmailRawMessage)).one()
    assert channel.files.raw.read(kept.sha256) == raw


def test_bytes_that_are_no_message_are_refused_when_strict_and_kept_otherwise(hub):
    configure(hub)
    with pytest.raises(ValueError):
        receive_raw(hub, b"this is not an email", strict=True)
    assert count(hub, TimelineEvent) == 0
    kept = receive_raw(hub, b"this is not an email")
    stored = event(hub, kept.event_id)
    assert "not a readable email" in stored.text and stored.data["raw"]["reason"] == "malformed"


def _write_big_message(path: Path, size: int) -> None:
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n"
    with path.open("wb") as out:
        out.write(b"From: Big Sender <big@example.org>\r\nTo: support@hub.example.com\r\nSubject: huge scan\r\n"
                  b"Message-ID: <huge-1@example.org>\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\n"
                  b"see the scan\r\n--z\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                  b"Content-Disposition: attachment; filename=scan.pdf\r\n\r\n")
        block = line * 16384
        while out.tell() < size:
            out.write(block)
        out.write(b"--z--\r\n")


@pytest.mark.slow
def test_a_50_mb_message_is_kept_raw_without_being_read_into_memory(hub, tmp_path):
    channel = configure(hub)  # max_message_bytes: 25 MB
    path = tmp_path / "big.eml"
    _write_big_message(path, 50 * 1024 * 1024)
    digest, size = hash_file(path)
    tracemalloc.start()
    try:
        with hub.session() as session, session.begin():
            received = receive(session, channel=channel, path=path, origin={"test": "big"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"peak Python memory {peak} bytes: the message was read whole"
    stored = event(hub, received.event_id)
    assert stored.external_id == "huge-1@example.org" and stored.subject == "huge scan"
    assert "over the 25 MB limit" in stored.text and stored.data["oversized"] is True
    assert stored.data["raw"] == {"id": received.raw_id, "reason": "too_large", "size": size}
    assert hash_file(channel.files.raw.path(digest)) == (digest, size)
    with hub.session(read_only=True) as s:
        assert s.get(EmailRawMessage, received.raw_id).sha256 == digest
    # The same message again (a retried pipe, a re-polled mailbox) changes nothing.
    with hub.session() as session, session.begin():
        assert not receive(session, channel=channel, path=path, origin={}).created


def test_a_message_with_thousands_of_references_ingests_with_a_bounded_lookup(hub):
    configure(hub, max_references=50)
    refs = " ".join(f"<r{i}@example.org>" for i in range(5000))
    received = receive_raw(hub, msg(f"From: a@example.org\nSubject: long\nMessage-ID: <long@example.org>\nReferences: {refs}"))
    stored = event(hub, received.event_id)
    assert len(stored.data["references"]) == 50 and stored.data["references"][0] == "r4950@example.org"
    assert stored.thread_key == "email:r4950@example.org"
