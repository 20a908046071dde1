"""Polling a real Dovecot: each message once, across crashes, restarts and a recreated mailbox."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from channels.email.models import EmailMailboxState
from hub.models import TimelineEvent
from tests import forked
from tests.channels.email.conftest import configure
from tests.channels.email.test_inbound import _write_big_message
from tests.channels.email.test_parse import msg


def mail(n: int, subject: str | None = None) -> bytes:
    return msg(f"""
From: Customer {n} <customer{n}@example.org>
To: support@hub.example.com
Subject: {subject or f"question {n}"}
Message-ID: <imap-{n}-{os.urandom(4).hex()}@example.org>
Date: Thu, 15 Jan 2026 10:0{n % 10}:00 +0300
""", f"Question number {n}\r\n")


def events(hub) -> list[TimelineEvent]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return list(s.scalars(select(TimelineEvent).where(TimelineEvent.channel == "email").order_by(TimelineEvent.id)))


def state(hub) -> EmailMailboxState:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.scalars(select(EmailMailboxState)).one()


def test_poll_reads_each_message_once(hub, dovecot):
    user = dovecot.user()
    channel = configure(hub, imap=[dovecot.mailbox(user)])
    uids = [dovecot.append(user, mail(n)) for n in range(3)]
    (result,) = channel.poll()
    assert (result.fetched, result.created, result.error) == (3, 3, None)
    assert [e.subject for e in events(hub)] == ["question 0", "question 1", "question 2"]
    assert all(e.kind == "message" and e.direction == "in" for e in events(hub))
    assert events(hub)[0].data["message_id"].startswith("imap-0-")
    assert state(hub).last_uid == max(uids)

    (again,) = channel.poll()
    assert (again.fetched, again.created) == (0, 0)
    dovecot.append(user, mail(3))
    (later,) = channel.poll()
    assert (later.fetched, later.created) == (1, 1)
    assert len(events(hub)) == 4


def test_the_periodic_job_polls(hub, dovecot):
    user = dovecot.user()
    channel = configure(hub, imap=[dovecot.mailbox(user)], poll_seconds=30)
    (job,) = channel.jobs()
    assert (job.id, job.seconds, job.once) == ("email.poll_imap", 30, True)
    dovecot.append(user, mail(1))
    job.func(hub)
    assert len(events(hub)) == 1


def test_a_failure_between_fetch_and_commit_loses_and_doubles_nothing(hub, dovecot):
    user = dovecot.user()
    channel = configure(hub, imap=[dovecot.mailbox(user)])
    for n in range(4):
        dovecot.append(user, mail(n))
    failures = {"question 2": 1}

    def flaky(session, *, event, contact):  # type: ignore[no-untyped-def]
        if failures.get(event.subject):
            failures[event.subject] -= 1
            raise RuntimeError("the store went away mid-transaction")

    hub.triggers.register("message", flaky)
    (first,) = channel.poll()
    assert first.created == 2 and "the store went away" in first.error
    assert [e.subject for e in events(hub)] == ["question 0", "question 1"]
    assert state(hub).failed_attempts == 1

    (second,) = channel.poll()
    assert second.created == 2 and second.error is None
    assert [e.subject for e in events(hub)] == ["question 0", "question 1", "question 2", "question 3"]
    assert state(hub).failed_uid is None


def test_a_process_killed_between_fetch_and_commit_restarts_without_loss_or_duplicates(hub, dovecot):
    user = dovecot.user()
    section = {"from_address": "support@hub.example.com", "imap": [dovecot.mailbox(user)]}
    channel = configure(hub, **section)
    for n in range(3):
        dovecot.append(user, mail(n, subject="crash here" if n == 1 else None))
    # A process of its own, forked ready-imported (tests/forked.py); it dies with status 3 mid-message.
    log = Path(hub.settings.data_dir) / "poll_proc.log"
    proc = forked.start("tests.channels.email.poll_proc:main", "--url", hub.settings.database_url,
                        "--data-dir", str(hub.settings.data_dir), "--settings", json.dumps(section),
                        "--crash-on", "crash here", log=log)
    assert proc.wait(timeout=120) == 3, log.read_text() if log.exists() else ""
    assert [e.subject for e in events(hub)] == ["question 0"]  # the message in flight was not committed

    (restart,) = channel.poll()  # the restarted hub (no crash trigger this time)
    assert restart.error is None and restart.created == 2
    subjects = [e.subject for e in events(hub)]
    assert subjects == ["question 0", "crash here", "question 2"]
    (again,) = channel.poll()
    assert again.fetched == 0 and len(events(hub)) == 3


def test_a_recreated_mailbox_is_read_again_without_duplicates(hub, dovecot):
    user = dovecot.user()
    conn = dovecot.connect(user)
    assert conn.create("Support")[0] == "OK"
    conn.logout()
    channel = configure(hub, imap=[dovecot.mailbox(user, folder="Support")])
    old = [mail(n) for n in range(2)]
    for raw in old:
        dovecot.append(user, raw, folder="Support")
    channel.poll()
    before = state(hub).uidvalidity

    conn = dovecot.connect(user)
    assert conn.delete("Support")[0] == "OK" and conn.create("Support")[0] == "OK"
    conn.logout()
    for raw in [*old, mail(7)]:  # the same two messages come back (a restore), and one new one
        dovecot.append(user, raw, folder="Support")
    (result,) = channel.poll()
    assert result.uidvalidity_reset and state(hub).uidvalidity != before
    assert (result.fetched, result.created, result.skipped) == (3, 1, 2)
    assert len(events(hub)) == 3


def test_starttls_required_but_not_offered_reads_nothing(hub, dovecot):
    user = dovecot.user()
    dovecot.append(user, mail(1))
    channel = configure(hub, imap=[dovecot.mailbox(user, security="starttls")])
    (result,) = channel.poll()
    assert "STARTTLS is required" in result.error and events(hub) == []


def test_a_wrong_password_is_reported_and_nothing_is_read(hub, dovecot):
    user = dovecot.user()
    dovecot.append(user, mail(1))
    channel = configure(hub, imap=[{**dovecot.mailbox(user), "password": "wrong"}])
    (result,) = channel.poll()
    assert result.error and "AUTHENTICATIONFAILED" in result.error.upper() and events(hub) == []


@pytest.mark.slow
def test_a_50_mb_message_is_fetched_in_chunks_and_kept_raw(hub, dovecot, tmp_path):
    user = dovecot.user()
    path = tmp_path / "big.eml"
    _write_big_message(path, 50 * 1024 * 1024)
    dovecot.append(user, path.read_bytes())
    dovecot.append(user, mail(1))
    channel = configure(hub, imap=[dovecot.mailbox(user)])
    tracemalloc.start()
    try:
        (result,) = channel.poll()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.error is None and result.created == 2
    assert peak < 16 * 1024 * 1024, f"peak Python memory {peak} bytes: the message was fetched whole"
    big, small = events(hub)
    assert big.data["oversized"] is True and "kept raw" in big.text and big.subject == "huge scan"
    assert channel.files.raw.path(
        __import__("hashlib").sha256(path.read_bytes()).hexdigest()).stat().st_size == path.stat().st_size
    assert small.subject == "question 1"


def test_a_message_over_the_raw_limit_stays_on_the_server_with_an_event(hub, dovecot):
    user = dovecot.user()
    big = msg("From: a@example.org\nSubject: too big to keep\nMessage-ID: <keep-out@example.org>", "x" * 200_000)
    uid = dovecot.append(user, big)
    channel = configure(hub, imap=[dovecot.mailbox(user)], max_message_bytes=65536, max_raw_bytes=65536)
    (result,) = channel.poll()
    assert result.created == 1 and result.fetched == 0
    (event,) = events(hub)
    assert event.subject == "too big to keep" and "left on the server" in event.text and f"UID {uid}" in event.text
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(EmailMailboxState)) == 1


def test_a_message_that_never_records_is_passed_over_after_five_polls(hub, dovecot):
    user = dovecot.user()
    channel = configure(hub, imap=[dovecot.mailbox(user)])
    poison_uid = dovecot.append(user, msg("From: a@example.org\nSubject: poison\nMessage-ID: <poison@example.org>",
                                          "poison body\r\n"))
    dovecot.append(user, mail(1))

    def refuse(session, *, event, contact):  # type: ignore[no-untyped-def]
        if "poison body" in (event.text or ""):
            raise RuntimeError("this body always breaks something")

    hub.triggers.register("message", refuse)
    for attempt in range(1, 5):
        (result,) = channel.poll()
        assert result.created == 0 and state(hub).failed_attempts == attempt
    (last,) = channel.poll()
    assert last.created == 2
    passed, after = events(hub)
    assert passed.subject == "poison" and "after 5 attempts" in passed.text and f"UID {poison_uid}" in passed.text
    assert after.subject == "question 1"
    assert state(hub).failed_uid is None
    # Its bytes are kept all the same, where admins find them.
    from channels.email.models import EmailRawMessage

    with hub.session(read_only=True) as s:
        kept = s.scalars(select(EmailRawMessage)).one()
    assert kept.event_id == passed.id and kept.reason == "unrecorded" and kept.origin["uid"] == poison_uid
    assert b"poison body" in channel.files.raw.read(kept.sha256)


def test_a_message_no_parser_reads_whole_is_salvaged_and_kept_raw(hub, dovecot):
    from channels.email.models import EmailRawMessage
    from tests.channels.email.test_webhooks import BAD_FIRST_LINE

    user = dovecot.user()
    channel = configure(hub, imap=[dovecot.mailbox(user)])
    dovecot.append(user, BAD_FIRST_LINE)
    dovecot.append(user, b"no headers at all, just words\r\n")
    dovecot.append(user, mail(1))
    (result,) = channel.poll()
    assert (result.fetched, result.created, result.error) == (3, 3, None)
    salvaged, unreadable, ordinary = events(hub)
    assert salvaged.subject == "Счёт не пришёл" and salvaged.data["raw"]["reason"] == "malformed"
    assert unreadable.data["unreadable"] is True and unreadable.data["raw"]["reason"] == "malformed"
    assert ordinary.subject == "question 1" and "raw" not in ordinary.data
    with hub.session(read_only=True) as s:
        kept = s.scalars(select(EmailRawMessage).order_by(EmailRawMessage.id)).all()
    assert [k.event_id for k in kept] == [salvaged.id, unreadable.id]
    assert all(k.origin["mailbox"] == channel.settings.imap[0].key for k in kept)
