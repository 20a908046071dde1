"""record_outcomes: a whole batch's outcomes in one transaction, with the per-row semantics."""

from __future__ import annotations

import pytest

from hub.channel import SendResult
from hub import outbox
from tests.fakes.channel import PermanentSendError, TransientSendError
from tests.test_outbox import event_of, get, make_contact, queue


def test_a_batch_records_each_row_as_the_single_row_functions_would(hub, frozen_clock):
    contact = make_contact(hub)
    ids = [queue(hub, f"k{i}", contact_id=contact) for i in range(4)]
    claimed = {m.delivery_id: m for m in outbox.claim_due(hub, worker="w", limit=10)}
    assert set(claimed) == set(ids)
    sent, dead, retry, stolen = ids
    statuses = outbox.record_outcomes(hub, [
        (sent, claimed[sent].attempt, SendResult(provider_id="p-1")),
        (dead, claimed[dead].attempt, PermanentSendError("bad address")),
        (retry, claimed[retry].attempt, TransientSendError("busy")),
        (stolen, claimed[stolen].attempt + 1, SendResult(provider_id="p-4")),  # not this attempt: not held
    ], worker="w")
    assert statuses == ["sent", "dead", "queued", None]
    assert (get(hub, sent).status, get(hub, sent).provider_id, event_of(hub, sent).status) == ("sent", "p-1", "sent")
    assert get(hub, dead).status == "dead" and event_of(hub, dead).status == "dead"
    assert get(hub, retry).status == "queued" and get(hub, retry).send_after > frozen_clock.current
    assert get(hub, stolen).status == "sending" and get(hub, stolen).provider_id is None  # nothing written


def test_another_workers_batch_writes_nothing(hub, frozen_clock):
    delivery_id = queue(hub)
    [message] = outbox.claim_due(hub, worker="w", limit=10)
    assert outbox.record_outcomes(hub, [(delivery_id, message.attempt, SendResult(provider_id="x"))],
                                  worker="intruder") == [None]
    assert get(hub, delivery_id).status == "sending"


# --- enqueue_many: a campaign's batch, with enqueue's rules per item ------------------------------

def _outgoing(key: str, contact: int | None, **kw):  # type: ignore[no-untyped-def]
    return outbox.Outgoing(channel="fake", address=kw.pop("address", "+79161234567"),
                           content=kw.pop("content", {"text": f"Hello {key}"}), idempotency_key=key,
                           contact_id=contact, **kw)


def test_enqueue_many_writes_each_delivery_with_its_own_event_and_keeps_the_order(hub):
    from hub.models import Delivery, TimelineEvent
    from tests.test_outbox import count

    contact = make_contact(hub)
    earlier = queue(hub, "b-1", contact_id=contact)  # already queued: given back, not doubled
    items = [_outgoing("b-0", contact), _outgoing("b-1", contact), _outgoing("b-2", None),
             _outgoing("b-0", contact),  # the same key twice in one batch: one delivery
             _outgoing("b-3", contact, content={"text": "x" * 5000}),  # too long for the channel
             _outgoing("b-4", contact, address=" "),  # no address
             _outgoing("b-5", contact, purpose="marketing", event_kind="campaign.message", event_data={"step": 2})]
    with hub.session() as s, s.begin():
        queued = outbox.enqueue_many(s, items)
    ids = [q.delivery_id for q in queued]
    assert ids[1] == earlier and ids[0] == ids[3] and ids[4] is None and ids[5] is None
    assert len({ids[0], ids[1], ids[2], ids[6]}) == 4
    assert "characters" in (queued[4].refused or "") and "address" in (queued[5].refused or "")
    assert count(hub, Delivery) == 4 and count(hub, TimelineEvent, TimelineEvent.direction == "out") == 3
    for index in (0, 6):
        event = event_of(hub, ids[index])
        delivery = get(hub, ids[index])
        assert event.data["delivery_id"] == delivery.id and event.external_id == f"delivery:{delivery.idempotency_key}"
        assert event.text == delivery.content["text"] and event.status == "queued" and event.contact_id == contact
    assert event_of(hub, ids[6]).kind == "campaign.message" and event_of(hub, ids[6]).data["step"] == 2
    assert get(hub, ids[2]).event_id is None  # no contact: nothing on a timeline


def test_enqueue_many_sends_a_merged_contacts_deliveries_to_the_survivor(hub):
    from hub.models import Contact

    kept, merged = make_contact(hub, "+79160000001"), make_contact(hub, "+79160000002")
    with hub.session() as s, s.begin():
        s.get(Contact, merged).merged_into = kept
    with hub.session() as s, s.begin():
        [queued] = outbox.enqueue_many(s, [_outgoing("m-1", merged)])
    assert get(hub, queued.delivery_id).contact_id == kept and event_of(hub, queued.delivery_id).contact_id == kept


def test_enqueue_many_in_a_rolled_back_transaction_leaves_nothing(hub):
    from hub.models import Delivery, TimelineEvent
    from tests.test_outbox import count

    contact = make_contact(hub)
    with hub.session() as s:
        with s.begin():
            outbox.enqueue_many(s, [_outgoing(f"r-{i}", contact) for i in range(5)])
            s.rollback()
    assert count(hub, Delivery) == 0 and count(hub, TimelineEvent, TimelineEvent.direction == "out") == 0


def test_a_batch_of_sends_is_recorded_and_mirrored_row_by_row(hub, frozen_clock):
    contact = make_contact(hub)
    ids = [queue(hub, f"s{i}", contact_id=contact) for i in range(30)]
    claimed = outbox.claim_due(hub, worker="w", limit=50)
    statuses = outbox.record_outcomes(hub, [(m.delivery_id, m.attempt, SendResult(provider_id=f"p-{m.delivery_id}"))
                                            for m in claimed] + [(claimed[0].delivery_id, claimed[0].attempt,
                                                                  SendResult(provider_id="twice"))], worker="w")
    assert statuses == ["sent"] * 30 + [None]  # a delivery listed twice is recorded once
    for delivery_id in ids:
        row, event = get(hub, delivery_id), event_of(hub, delivery_id)
        assert (row.status, row.provider_id, row.claimed_by) == ("sent", f"p-{delivery_id}", None)
        assert event.status == "sent" and event.data["provider_id"] == f"p-{delivery_id}"
        assert event.data["delivery_id"] == delivery_id  # the mirror merged into the event's data


def test_on_postgresql_enqueue_many_writes_each_delivery_once_already_linked_to_its_event(hub):
    """The event's id goes in with the delivery (ids reserved from the sequence), not in an UPDATE
    of every row after the insert: one row version per delivery, so one set of index entries."""
    from sqlalchemy import text

    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no sequence to reserve the ids from; it links in a second statement")
    contact = make_contact(hub)
    # The backend's counts not yet flushed (earlier transactions on this pooled connection) are in
    # the view too: what this transaction wrote is the difference.
    counts = text("SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'delivery'")
    with hub.session() as s, s.begin():
        before = s.execute(counts).one()
        queued = outbox.enqueue_many(s, [_outgoing(f"once-{i}", contact) for i in range(5)])
        after = s.execute(counts).one()
    assert (after[0] - before[0], after[1] - before[1]) == (5, 0)
    for q in queued:
        assert get(hub, q.delivery_id).event_id == event_of(hub, q.delivery_id).id
        assert event_of(hub, q.delivery_id).data["delivery_id"] == q.delivery_id


def test_on_postgresql_a_key_another_enqueue_won_leaves_no_event_behind(hub):
    """The race enqueue_many's first lookup cannot see (a concurrent enqueue of the same key that
    wrote no event of its own): the event made for the losing delivery is taken back."""
    from hub.ingest import InboundEvent
    from hub.models import Direction, TimelineEvent
    from tests.test_outbox import count

    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("the reserved-id path is PostgreSQL's")
    contact = make_contact(hub)
    winner = queue(hub, "race-1", contact_id=None)  # written first, without an event
    now = outbox.clock.now()
    row = dict(channel="fake", contact_id=contact, address="+79161234567", purpose="transactional",
               content={"text": "late"}, idempotency_key="race-1", send_after=now, status="queued", attempts=0,
               rules=None, created_at=now, updated_at=now)
    event = InboundEvent(channel="fake", kind="message", direction=Direction.OUT, external_id="delivery:race-1",
                         contact_id=contact, text="late", status="queued", data={})
    with hub.session() as s, s.begin():
        assert outbox._insert_with_events(s, {"race-1": (row, event)}) == {}
    assert count(hub, TimelineEvent, TimelineEvent.direction == "out") == 0
    assert get(hub, winner).content == {"text": "Hello"} and get(hub, winner).event_id is None


def test_on_postgresql_a_batch_of_sends_is_recorded_with_one_statement(hub, frozen_clock):
    """Not an UPDATE per row (executemany): one UPDATE … FROM the batch as one JSON parameter."""
    from sqlalchemy import event

    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite records row by row in its one write transaction")
    contact = make_contact(hub)
    ids = [queue(hub, f"one-{i}", contact_id=contact) for i in range(5)]
    claimed = outbox.claim_due(hub, worker="w", limit=10)
    updates: list[int] = []

    def seen(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE DELIVERY"):
            updates.append(len(parameters) if executemany else 1)

    event.listen(hub.db.engine, "before_cursor_execute", seen)
    try:
        statuses = outbox.record_outcomes(hub, [(m.delivery_id, m.attempt, SendResult(provider_id=f"p-{m.delivery_id}"))
                                                for m in claimed], worker="w")
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", seen)
    assert statuses == ["sent"] * 5 and updates == [1]
    for delivery_id in ids:
        delivery = get(hub, delivery_id)
        assert (delivery.status, delivery.provider_id, delivery.claimed_by) == ("sent", f"p-{delivery_id}", None)
        assert delivery.sent_at == frozen_clock.current and event_of(hub, delivery_id).status == "sent"
