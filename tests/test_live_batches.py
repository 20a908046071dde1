"""Live messages a transaction publishes go out together after its commit (hub.live.publish_after_commit):
one publish_many per transaction, and on PostgreSQL one NOTIFY statement for a whole campaign batch."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from hub import outbox
from hub.live import MAX_PAYLOAD, MemoryBroker, PostgresBroker, make_broker
from hub.worker import Worker
from tests.api.test_live import listeners
from tests.test_outbox import make_contact


class BatchRecorder(MemoryBroker):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[tuple[str, dict[str, Any]]]] = []

    def publish_many(self, items: Any) -> None:
        self.batches.append(list(items))
        super().publish_many(items)


def enqueue_three(hub: Any, contact_id: int, *, prefix: str) -> None:
    with hub.session() as session, session.begin():
        outbox.enqueue_many(session, [outbox.Outgoing(channel="fake", address="+79161234567", content={"text": "Hi"},
                                                      idempotency_key=f"{prefix}{n}", contact_id=contact_id)
                                      for n in range(3)])


def test_a_transactions_live_messages_go_out_together_after_commit_and_never_after_rollback(hub):
    contact = make_contact(hub)
    hub.broker = BatchRecorder()
    enqueue_three(hub, contact, prefix="k")
    [created] = hub.broker.batches
    assert [(m["type"], m["contact_id"]) for _, m in created] == [("event.created", contact)] * 3
    assert {topic for topic, _ in created} == {f"contact:{contact}"}

    class Boom(Exception):
        pass

    with pytest.raises(Boom), hub.session() as session, session.begin():
        outbox.enqueue(session, channel="fake", address="+79161234567", content={"text": "Hi"},
                       idempotency_key="gone", contact_id=contact)
        raise Boom
    assert len(hub.broker.batches) == 1  # the rolled-back event told no one

    assert Worker(hub, "w").tick() == 3  # the batch's sends are recorded in one transaction: one publish
    [updated] = hub.broker.batches[1:]
    assert [(m["type"], m["status"]) for _, m in updated] == [("event.updated", "sent")] * 3

    enqueue_three(hub, contact, prefix="again")  # the same session machinery starts a fresh batch
    assert len(hub.broker.batches) == 3 and len(hub.broker.batches[2]) == 3


def test_postgres_publish_many_packs_messages_into_few_notifies_delivered_in_order(hub):
    if not hub.settings.is_postgres:
        pytest.skip("NOTIFY is PostgreSQL's")
    received: list[dict[str, Any]] = []
    done = threading.Event()

    def deliver(message: dict[str, Any]) -> None:
        received.append(message)
        if len(received) == 600:
            done.set()

    receiver, sender = (make_broker("postgres", hub.settings.sqlalchemy_url) for _ in range(2))
    assert isinstance(sender, PostgresBroker)
    receiver._deliver = deliver  # type: ignore[method-assign]
    receiver.start()
    notifies: list[int] = []
    original = sender._notify
    sender._notify = lambda payloads: (notifies.append(len(payloads)), original(payloads))  # type: ignore[method-assign]
    try:
        deadline = time.monotonic() + 15
        while listeners(hub) < 1:
            assert time.monotonic() < deadline, "the receiver never listened"
            time.sleep(0.02)
        sender.publish_many([(f"contact:{n}", {"type": "event.created", "event_id": n, "text": "é" * 40})
                             for n in range(600)])
        assert done.wait(15), f"received {len(received)} of 600"
    finally:
        receiver.stop()
    assert [m["event_id"] for m in received] == list(range(600))
    assert received[7] == {"topic": "contact:7", "type": "event.created", "event_id": 7, "text": "é" * 40}
    # One statement, far fewer payloads than messages, each one under PostgreSQL's limit.
    assert len(notifies) == 1 and 1 < notifies[0] < 60
    with pytest.raises(ValueError):
        sender.publish_many([("contact:1", {"text": "x" * MAX_PAYLOAD})])
