"""record_outcomes: a whole batch's outcomes in one transaction, with the per-row semantics."""

from __future__ import annotations

from channels.base import SendResult
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
