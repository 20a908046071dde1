"""The outbox: enqueue with the cause, claim, send, retry with backoff, dead, forward-only status."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.channel import SendResult, StatusUpdate
from hub import outbox
from hub.ingest import ContactNotFound, IdentityRef, InboundEvent, ingest
from hub.live import MemoryBroker
from hub.models import Delivery, DeliveryStatus, Direction, IdentityKind, PendingStatus, TimelineEvent
from hub.worker import Worker
from tests.fakes.channel import FakeChannel, PermanentSendError, TransientSendError

S = DeliveryStatus


class RecordingBroker(MemoryBroker):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        self.published.append((topic, message))
        super().publish(topic, message)


def make_contact(hub, phone: str = "+79161234567") -> int:  # type: ignore[no-untyped-def]
    event = InboundEvent(channel="fake", kind="message", external_id=f"in-{phone}",
                         identities=[IdentityRef(kind=IdentityKind.PHONE, value=phone)], text="hi")
    return ingest(hub, event).contact.id  # type: ignore[return-value]


def queue(hub, key: str = "k1", *, contact_id: int | None = None, address: str = "+79161234567",  # type: ignore[no-untyped-def]
          **kw: Any) -> int:
    with hub.session() as s, s.begin():
        delivery = outbox.enqueue(s, channel="fake", address=address, content=kw.pop("content", {"text": "Hello"}),
                                  idempotency_key=key, contact_id=contact_id, **kw)
        return delivery.id


def get(hub, delivery_id: int) -> Delivery:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.get(Delivery, delivery_id)


def event_of(hub, delivery_id: int) -> TimelineEvent:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.get(TimelineEvent, s.get(Delivery, delivery_id).event_id)


def count(hub, model, *where: Any) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


# --- enqueue -----------------------------------------------------------------------------------

def test_enqueue_writes_the_delivery_and_its_outbound_event(hub):
    contact = make_contact(hub)
    delivery_id = queue(hub, contact_id=contact, content={"subject": "Re: order", "text": "Hello", "thread_key": "t-1"})
    row = get(hub, delivery_id)
    assert (row.status, row.attempts, row.channel, row.contact_id, row.purpose) == ("queued", 0, "fake", contact, "transactional")
    event = event_of(hub, delivery_id)
    assert (event.direction, event.kind, event.status, event.external_id) == (Direction.OUT, "message", "queued", "delivery:k1")
    assert (event.contact_id, event.subject, event.text, event.thread_key) == (contact, "Re: order", "Hello", "t-1")
    assert event.data["delivery_id"] == delivery_id


def test_enqueue_is_idempotent_on_the_key(hub):
    contact = make_contact(hub)
    first = queue(hub, "same", contact_id=contact)
    again = queue(hub, "same", contact_id=contact, content={"text": "Different words"})
    assert again == first
    assert count(hub, Delivery) == 1
    assert count(hub, TimelineEvent, TimelineEvent.direction == "out") == 1
    assert get(hub, first).content == {"text": "Hello"}


def test_a_rolled_back_cause_leaves_neither_delivery_nor_event(hub):
    contact = make_contact(hub)
    woken: list[int] = []
    unsubscribe = outbox.on_enqueued(hub, lambda: woken.append(1))
    with pytest.raises(RuntimeError, match="the cause failed"):
        with hub.session() as s, s.begin():
            outbox.enqueue(s, channel="fake", address="+79161234567", content={"text": "x"}, idempotency_key="r",
                           contact_id=contact)
            raise RuntimeError("the cause failed")
    unsubscribe()
    assert count(hub, Delivery) == 0
    assert count(hub, TimelineEvent, TimelineEvent.direction == "out") == 0
    assert woken == []


def test_enqueue_wakes_the_local_worker_after_commit_for_due_rows_only(hub, frozen_clock):
    woken: list[int] = []
    unsubscribe = outbox.on_enqueued(hub, lambda: woken.append(1))
    with hub.session() as s, s.begin():
        outbox.enqueue(s, channel="fake", address="+1", content={"text": "now"}, idempotency_key="now")
        assert woken == []  # not before the commit
    assert woken == [1]
    queue(hub, "later", send_after=frozen_clock.current + timedelta(hours=1))
    assert woken == [1]
    unsubscribe()
    queue(hub, "after-unsubscribe")
    assert woken == [1]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"channel": "nope"}, LookupError, "no channel named 'nope'"),
        ({"channel": "note"}, ValueError, "cannot send"),
        ({"content": {"text": "x" * 1001}}, ValueError, "limited to 1000"),
        ({"content": {"text": "x", "html": "<b>x</b>"}}, ValueError, "cannot carry HTML"),
        ({"address": "  "}, ValueError, "address"),
        ({"idempotency_key": ""}, ValueError, "idempotency_key"),
        ({"purpose": "spam"}, ValueError, "spam"),
        ({"contact_id": 999_999}, ContactNotFound, "999999"),
        ({"send_after": datetime(2026, 1, 1, 10, 0)}, ValueError, "time zone"),
    ],
)
def test_enqueue_refuses_bad_input_and_writes_nothing(hub, kwargs, error, match):
    args: dict[str, Any] = dict(channel="fake", address="+79161234567", content={"text": "ok"}, idempotency_key="bad")
    args.update(kwargs)
    with pytest.raises(error, match=match):
        with hub.session() as s, s.begin():
            outbox.enqueue(s, **args)
    assert count(hub, Delivery) == 0


# --- claim, send, record -----------------------------------------------------------------------

def test_claim_send_records_sent_with_the_provider_id_and_mirrors_the_event(hub, frozen_clock):
    hub.broker = RecordingBroker()
    contact = make_contact(hub)
    delivery_id = queue(hub, contact_id=contact)
    assert Worker(hub, "w").tick() == 1
    assert [m.delivery_id for m in FakeChannel.sent] == [delivery_id]
    assert FakeChannel.sent[0].content == {"text": "Hello"} and FakeChannel.sent[0].attempt == 1
    row = get(hub, delivery_id)
    assert (row.status, row.provider_id, row.attempts) == ("sent", f"fake-{delivery_id}-1", 1)
    assert (row.claimed_by, row.claimed_until, row.sent_at) == (None, None, frozen_clock.current)
    event = event_of(hub, delivery_id)
    assert event.status == "sent" and event.data["provider_id"] == f"fake-{delivery_id}-1"
    updates = [m for topic, m in hub.broker.published if m["type"] == "event.updated"]
    # The one shape of an event's change (hub.event_updates), with the delivery it mirrors.
    assert updates == [{"type": "event.updated", "contact_id": contact, "event_id": event.id, "channel": "fake",
                        "kind": event.kind, "delivery_id": delivery_id, "status": "sent"}]
    assert hub.broker.published[-1][0] == f"contact:{contact}"
    assert Worker(hub, "w2").tick() == 0  # nothing left


def test_claim_due_takes_due_rows_in_order_up_to_the_limit(hub, frozen_clock):
    now = frozen_clock.current
    later = queue(hub, "later", send_after=now + timedelta(minutes=5))
    second = queue(hub, "second", send_after=now - timedelta(minutes=1))
    first = queue(hub, "first", send_after=now - timedelta(minutes=2))
    third = queue(hub, "third")
    claimed = outbox.claim_due(hub, worker="w", limit=2)
    assert [m.delivery_id for m in claimed] == [first, second]
    assert outbox.claim_due(hub, worker="w", limit=10, channels=["other"]) == []
    assert outbox.claim_due(hub, worker="w", limit=10, channels=[]) == []
    assert [m.delivery_id for m in outbox.claim_due(hub, worker="w", limit=10)] == [third]
    row = get(hub, first)
    assert (row.status, row.claimed_by, row.attempts) == ("sending", "w", 1)
    assert row.claimed_until == now + timedelta(seconds=hub.settings.outbox.lease_seconds)
    frozen_clock.advance(minutes=5)
    assert [m.delivery_id for m in outbox.claim_due(hub, worker="w", limit=10)] == [later]


def test_a_claim_reads_the_content_back_as_json_loads_reads_it(hub):
    """The claim reads each content with hub.db.loads_json on both stores: the values are
    json.loads's, whatever the content (long integers exact, floats as floats)."""
    import json

    contents = [{"text": "привет \u2028 😀", "n": 12345678901234567890, "b": [True, None]},
                {"text": "x", "long": 123456789012345678901234567890, "neg": -9223372036854775809},
                {"text": "x", "nested": {"f": [1.5, {"e": 1e-7, "z": -0.0}], "big": 10 ** 30}},
                {"text": "x", "list": [[[2 ** 70]]]}]
    keys = [queue(hub, f"c{i}", content=content) for i, content in enumerate(contents)]
    claimed = {m.delivery_id: m.content for m in outbox.claim_due(hub, worker="w", limit=10)}
    for key, content in zip(keys, contents):
        assert claimed[key] == json.loads(json.dumps(content))
        assert {k: type(v) for k, v in claimed[key].items()} == {k: type(v) for k, v in content.items()}


def test_a_transient_failure_requeues_with_backoff_then_succeeds(hub, frozen_clock):
    delivery_id = queue(hub)
    FakeChannel.failures["+79161234567"] = [TransientSendError("provider busy")]
    worker = Worker(hub, "w")
    start = frozen_clock.current
    assert worker.tick() == 1
    row = get(hub, delivery_id)
    assert (row.status, row.attempts, row.last_error, row.claimed_by) == ("queued", 1, "provider busy", None)
    base = hub.settings.outbox.backoff_base_seconds
    assert start + timedelta(seconds=base * 0.5) <= row.send_after <= start + timedelta(seconds=base * 1.5)
    assert worker.tick() == 0  # not due yet
    frozen_clock.current = row.send_after
    assert worker.tick() == 1
    row = get(hub, delivery_id)
    assert (row.status, row.attempts, row.provider_id, row.last_error) == ("sent", 2, f"fake-{delivery_id}-2", None)


def test_backoff_doubles_per_attempt_and_is_capped(hub):
    hub.settings.outbox.backoff_base_seconds = 10
    hub.settings.outbox.backoff_max_seconds = 100
    for attempts, expected in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (30, 100)]:
        delays = [outbox.backoff_seconds(hub, attempts) for _ in range(50)]
        assert all(expected * 0.5 <= d <= expected * 1.5 for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_retry_after_from_the_provider_is_honoured(hub, frozen_clock):
    delivery_id = queue(hub)
    FakeChannel.failures["+79161234567"] = [TransientSendError("429", retry_after=120)]
    Worker(hub).tick()
    assert get(hub, delivery_id).send_after == frozen_clock.current + timedelta(seconds=120)


def test_transient_failures_retry_until_max_attempts_then_dead_with_the_reason(hub, frozen_clock):
    hub.settings.outbox.max_attempts = 3
    contact = make_contact(hub)
    delivery_id = queue(hub, contact_id=contact)
    FakeChannel.failures["+79161234567"] = [TransientSendError(f"timeout {i}") for i in range(5)]
    worker = Worker(hub)
    statuses = []
    for _ in range(4):
        worker.tick()
        statuses.append(get(hub, delivery_id).status)
        frozen_clock.advance(hours=7)
    assert statuses == ["queued", "queued", "dead", "dead"]
    row = get(hub, delivery_id)
    assert (row.attempts, row.last_error) == (3, "gave up after 3 attempts: timeout 2")
    assert FakeChannel.sent == []
    event = event_of(hub, delivery_id)
    assert event.status == "dead" and event.data["error"] == row.last_error


def test_a_permanent_failure_is_dead_at_once(hub):
    delivery_id = queue(hub)
    FakeChannel.failures["+79161234567"] = [PermanentSendError("number opted out")]
    Worker(hub).tick()
    row = get(hub, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 1, "number opted out")


def test_an_unexpected_error_is_logged_with_its_traceback_and_retried(hub, caplog):
    delivery_id = queue(hub)
    FakeChannel.failures["+79161234567"] = [KeyError("adapter bug")]
    with caplog.at_level(logging.ERROR, logger="hub.outbox"):
        Worker(hub).tick()
    row = get(hub, delivery_id)
    assert (row.status, row.last_error) == ("queued", "KeyError: 'adapter bug'")
    logged = [r for r in caplog.records if r.name == "hub.outbox" and r.exc_info]
    assert logged and isinstance(logged[0].exc_info[1], KeyError)


def test_only_the_holder_of_the_claim_records(hub, frozen_clock):
    delivery_id = queue(hub)
    [first] = outbox.claim_due(hub, worker="a", limit=1)
    lease = hub.settings.outbox.lease_seconds
    frozen_clock.advance(seconds=lease + 1)
    assert outbox.reap_expired(hub) == 1
    [second] = outbox.claim_due(hub, worker="b", limit=1)
    assert (first.attempt, second.attempt) == (1, 2)
    # The late first worker must not overwrite the row the second one now holds.
    late = SendResult(provider_id="late")
    assert not outbox.record_sent(hub, delivery_id=delivery_id, worker="a", result=late, attempt=1)
    assert outbox.record_failure(hub, delivery_id=delivery_id, worker="a", error=PermanentSendError("x"), attempt=1) is None
    assert get(hub, delivery_id).status == "sending"
    assert outbox.record_sent(hub, delivery_id=delivery_id, worker="b", result=SendResult(provider_id="p2"), attempt=2)
    row = get(hub, delivery_id)
    assert (row.status, row.provider_id) == ("sent", "p2")
    assert not outbox.record_sent(hub, delivery_id=delivery_id, worker="b", result=SendResult(provider_id="p3"))


def test_a_late_holder_can_still_record_a_reaped_row_nobody_reclaimed(hub, frozen_clock):
    delivery_id = queue(hub)
    outbox.claim_due(hub, worker="slow", limit=1)
    frozen_clock.advance(seconds=hub.settings.outbox.lease_seconds + 1)
    outbox.reap_expired(hub)
    assert outbox.record_sent(hub, delivery_id=delivery_id, worker="slow", result=SendResult(provider_id="p"), attempt=1)
    assert get(hub, delivery_id).status == "sent"
    assert outbox.claim_due(hub, worker="other", limit=5) == []  # so it is not sent twice


def test_reap_requeues_only_expired_claims_and_gives_up_after_max_attempts(hub, frozen_clock):
    hub.settings.outbox.max_attempts = 2
    delivery_id = queue(hub)
    lease = hub.settings.outbox.lease_seconds
    outbox.claim_due(hub, worker="crashed", limit=1)
    assert outbox.reap_expired(hub) == 0
    frozen_clock.advance(seconds=lease - 1)
    assert outbox.reap_expired(hub) == 0
    frozen_clock.advance(seconds=2)
    assert outbox.reap_expired(hub) == 1
    assert get(hub, delivery_id).status == "queued"
    outbox.claim_due(hub, worker="crashed-again", limit=1)
    frozen_clock.advance(seconds=lease + 1)
    assert outbox.reap_expired(hub) == 1
    row = get(hub, delivery_id)
    assert row.status == "dead" and "stopped answering" in row.last_error


def test_release_claims_puts_back_only_this_workers_rows_without_counting_an_attempt(hub):
    mine = [queue(hub, f"m{i}") for i in range(2)]
    outbox.claim_due(hub, worker="me", limit=2)
    theirs = queue(hub, "t")
    outbox.claim_due(hub, worker="them", limit=1)
    assert outbox.release_claims(hub, worker="me") == 2
    for delivery_id in mine:
        row = get(hub, delivery_id)
        assert (row.status, row.attempts, row.claimed_by) == ("queued", 0, None)
    assert get(hub, theirs).status == "sending"
    assert outbox.release_claims(hub, worker="me") == 0


def test_cancel_only_touches_queued_rows(hub):
    contact = make_contact(hub)
    a = queue(hub, "a", contact_id=contact)
    b = queue(hub, "b", contact_id=contact)
    c = queue(hub, "c", contact_id=contact)
    with hub.session() as s, s.begin():
        assert outbox.cancel(s, delivery_id=a)
        assert not outbox.cancel(s, delivery_id=a)
    assert get(hub, a).status == "cancelled" and event_of(hub, a).status == "cancelled"
    outbox.claim_due(hub, worker="w", limit=10)
    with hub.session() as s, s.begin():
        assert outbox.cancel_where(s, ids=select(Delivery.id).where(Delivery.id.in_([b, c]))) == 0  # on their way
        with pytest.raises(ValueError):
            outbox.cancel_where(s)
    assert (get(hub, b).status, get(hub, c).status) == ("sending", "sending")
    d = queue(hub, "d", contact_id=contact)
    with hub.session() as s, s.begin():
        assert outbox.cancel_where(s, ids=select(Delivery.id).where(Delivery.id.in_([b, c, d]))) == 1
    assert get(hub, d).status == "cancelled" and event_of(hub, d).status == "cancelled"


# --- provider status -----------------------------------------------------------------------------

def _status(hub, provider_id: str, status: S) -> bool:  # type: ignore[no-untyped-def]
    with hub.session() as s, s.begin():
        return outbox.apply_status(s, channel="fake", update=StatusUpdate(provider_id=provider_id, status=status))


def test_status_only_moves_forward_and_repeats_change_nothing(hub):
    hub.broker = RecordingBroker()
    contact = make_contact(hub)
    delivery_id = queue(hub, contact_id=contact)
    Worker(hub).tick()
    pid = get(hub, delivery_id).provider_id
    steps = [(S.DELIVERED, True), (S.DELIVERED, False), (S.SENT, False), (S.QUEUED, False),
             (S.READ, True), (S.DELIVERED, False), (S.FAILED, False), (S.READ, False)]
    assert [_status(hub, pid, status) for status, _ in steps] == [changed for _, changed in steps]
    assert get(hub, delivery_id).status == "read"
    assert event_of(hub, delivery_id).status == "read"
    pushed = [m["status"] for _, m in hub.broker.published if m["type"] == "event.updated"]
    assert pushed == ["sent", "delivered", "read"]


def test_out_of_order_callbacks_keep_the_furthest_status(hub):
    delivery_id = queue(hub)
    Worker(hub).tick()
    pid = get(hub, delivery_id).provider_id
    assert _status(hub, pid, S.READ)
    assert not _status(hub, pid, S.DELIVERED)
    assert get(hub, delivery_id).status == "read"


def test_failure_callbacks_record_the_providers_reason(hub):
    delivery_id = queue(hub)
    Worker(hub).tick()
    pid = get(hub, delivery_id).provider_id
    with hub.session() as s, s.begin():
        assert outbox.apply_status(s, channel="fake", update=StatusUpdate(pid, S.UNDELIVERED, detail="30003 Unreachable"))
    row = get(hub, delivery_id)
    assert (row.status, row.last_error) == ("undelivered", "30003 Unreachable")
    assert not _status(hub, pid, S.DELIVERED)  # same rank: the first word stands
    with pytest.raises(ValueError):
        _status(hub, pid, S.DEAD)


def test_a_callback_before_the_send_commits_is_applied_when_the_send_is_recorded(hub):
    delivery_id = queue(hub)
    outbox.claim_due(hub, worker="w", limit=1)
    # The provider answers before the worker has committed the provider id.
    assert not _status(hub, "early-1", S.DELIVERED)
    assert not _status(hub, "early-1", S.DELIVERED)
    assert not _status(hub, "early-1", S.SENT)
    assert count(hub, PendingStatus) == 2
    assert get(hub, delivery_id).status == "sending"
    assert outbox.record_sent(hub, delivery_id=delivery_id, worker="w", result=SendResult(provider_id="early-1"))
    assert get(hub, delivery_id).status == "delivered"
    assert count(hub, PendingStatus) == 0
    assert not _status(hub, "early-1", S.SENT)


def test_a_callback_racing_the_sends_commit_waits_for_it_and_is_applied(hub):
    """PostgreSQL: the callback's first UPDATE cannot see the send's uncommitted provider id, so it
    must wait for the send (the provider id's lock) and look again, not file a pending status the
    send has already passed (it would never be applied)."""
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the send and the callback cannot interleave")
    import threading

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    delivery_id = queue(hub)
    outbox.claim_due(hub, worker="w", limit=1)
    sender = threading.current_thread()
    holding, release = threading.Event(), threading.Event()

    def hold(session):  # type: ignore[no-untyped-def]
        if threading.current_thread() is sender and not holding.is_set():
            holding.set()  # the send's provider id is written and locked, not yet committed
            assert release.wait(30)

    event.listen(Session, "before_commit", hold)
    applied: list[bool] = []
    callback = threading.Thread(target=lambda: (holding.wait(30), applied.append(_status(hub, "race-1", S.DELIVERED))))
    callback.start()
    try:
        threading.Timer(1.0, release.set).start()  # the callback reaches its lock meanwhile
        assert outbox.record_sent(hub, delivery_id=delivery_id, worker="w", result=SendResult(provider_id="race-1"))
    finally:
        release.set()
        event.remove(Session, "before_commit", hold)
        callback.join(30)
    assert applied == [True]
    assert get(hub, delivery_id).status == "delivered"
    assert count(hub, PendingStatus) == 0


def test_stale_pending_statuses_are_purged(hub, frozen_clock):
    _status(hub, "never-ours", S.DELIVERED)
    assert outbox.purge_pending(hub, older_than=timedelta(days=1)) == 0
    frozen_clock.advance(days=2)
    assert outbox.purge_pending(hub, older_than=timedelta(days=1)) == 1


def test_an_event_the_timeline_would_refuse_leaves_no_half_written_delivery(hub):
    contact = make_contact(hub)
    with hub.session() as s, s.begin():
        with pytest.raises(ValueError, match="subject"):
            outbox.enqueue(s, channel="fake", address="+79161234567", content={"text": "x", "subject": "s" * 1001},
                           idempotency_key="long-subject", contact_id=contact)
        queue_in_same_transaction = outbox.enqueue(s, channel="fake", address="+79161234567", content={"text": "ok"},
                                                   idempotency_key="fine", contact_id=contact)
    assert count(hub, Delivery) == 1 and get(hub, queue_in_same_transaction.id).idempotency_key == "fine"


def test_the_queue_indexes_hold_only_the_rows_their_queries_look_for(hub):
    """Partial indexes (migration 0007): a queued row is in the due index, a sending one in the
    claimed index, a sent one in the provider and frequency-cap indexes; none of them takes an
    entry for every version the queue writes of a row."""
    from sqlalchemy import text

    if hub.db.engine.dialect.name == "postgresql":
        sql = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'delivery'"
    else:
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'delivery'"
    with hub.session(read_only=True) as s:
        # Written out as each store prints it: without quotes, casts and parentheses.
        indexes = {name: " ".join(re.sub(r"::\w+|[()\"]", "", (definition or "").lower()).split())
                   for name, definition in s.execute(text(sql)).all()}
    expected = {"ix_delivery_due": "where status = 'queued'", "ix_delivery_claimed": "where status = 'sending'",
                "ix_delivery_provider": "where provider_id is not null",
                "ix_delivery_contact_sent": "where sent_at is not null"}
    for name, condition in expected.items():
        assert indexes[name].endswith(condition), indexes.get(name)
