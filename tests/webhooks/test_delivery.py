"""Delivery to a real receiver in its own process: signed, retried, Retry-After, disabled, rotated, replayed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub import clock
from hub.auth import SYSTEM
from hub.contacts import create_contact, update_contact
from hub.models import AuditEntry, Task
from webhooks import delivery, service
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def add_endpoint(hub, receiver, path, *, types=("contact.created",), mode="ok", **rule):
    with hub.session() as session, session.begin():
        endpoint, secret = service.create_endpoint(session, hub=hub, actor=SYSTEM, url=receiver.url(path),
                                                   event_types=list(types))
        endpoint_id = endpoint.id
    receiver.set(path, mode, secrets=[secret], **rule)
    return endpoint_id, secret


def new_contact(hub, name="Анна Петрова"):
    with hub.session() as session, session.begin():
        contact = create_contact(session, actor=SYSTEM, region="RU", display_name=name)
        return contact.id


def drain(hub):
    hub.extensions["webhooks"].dispatcher().drain(timeout=30)


def deliveries(hub, endpoint_id):
    with hub.session(read_only=True) as session:
        return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                                    .order_by(WebhookDelivery.id)))


def test_a_notice_reaches_the_receiver_signed_once(whub, fresh_receiver, frozen_clock):
    endpoint_id, _secret = add_endpoint(whub, fresh_receiver, "/ok")
    contact_id = new_contact(whub)
    drain(whub)
    [got] = fresh_receiver.received("/ok")
    assert got["verified"] == [0], "standardwebhooks verifies the signature with the endpoint's secret"
    assert got["body"]["type"] == "contact.created" and got["body"]["data"]["contact_id"] == contact_id
    assert got["body"]["subject"] == f"contact:{contact_id}" and got["id"] == got["body"]["id"]
    assert got["host"] == f"127.0.0.1:{fresh_receiver.port}"
    [row] = deliveries(whub, endpoint_id)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    with whub.session() as session:
        [attempt] = session.scalars(select(WebhookAttempt)).all()
    assert attempt.status_code == 200 and attempt.latency_ms is not None and attempt.response == '{"ok":true}'


def test_only_subscribed_types_and_active_endpoints_get_deliveries(whub, fresh_receiver, frozen_clock):
    created, _ = add_endpoint(whub, fresh_receiver, "/created")
    updated, _ = add_endpoint(whub, fresh_receiver, "/updated", types=("contact.updated",))
    everything, _ = add_endpoint(whub, fresh_receiver, "/all", types=("*",))
    paused, _ = add_endpoint(whub, fresh_receiver, "/paused", types=("*",))
    with whub.session() as session, session.begin():
        service.set_status(session, actor=SYSTEM, endpoint=session.get(WebhookEndpoint, paused), status="paused")
    contact_id = new_contact(whub)
    with whub.session() as session, session.begin():
        from hub.models import Contact

        update_contact(session, contact=session.get(Contact, contact_id), actor=SYSTEM, changes={"lifecycle_stage": "customer"})
    drain(whub)
    assert [e["body"]["type"] for e in fresh_receiver.received("/created")] == ["contact.created"]
    assert [e["body"]["type"] for e in fresh_receiver.received("/updated")] == ["contact.updated"]
    assert [e["body"]["data"].get("changes") for e in fresh_receiver.received("/updated")] == [
        {"lifecycle_stage": ["lead", "customer"]}]
    assert sorted(e["body"]["type"] for e in fresh_receiver.received("/all")) == ["contact.created", "contact.updated"]
    assert fresh_receiver.received("/paused") == [] and deliveries(whub, paused) == []


def test_a_rolled_back_cause_emits_nothing(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/rollback")
    with whub.session() as session:
        session.begin()
        create_contact(session, actor=SYSTEM, region="RU", display_name="Никто")
        assert len(deliveries(whub, endpoint_id)) == 0  # not visible outside the transaction
        session.rollback()
    drain(whub)
    assert deliveries(whub, endpoint_id) == [] and fresh_receiver.received("/rollback") == []


@pytest.mark.parametrize("failure", ["500", "hang", "refused"])
def test_a_failed_try_is_retried_with_backoff_until_it_succeeds(whub, fresh_receiver, frozen_clock, failure):
    from tests.channels.email.conftest import free_port

    path = f"/flaky-{failure}"
    endpoint_id, secret = add_endpoint(whub, fresh_receiver, path, mode="ok" if failure == "refused" else failure,
                                       seconds=30)
    if failure == "refused":  # nothing listens on that port
        with whub.session() as session, session.begin():
            session.get(WebhookEndpoint, endpoint_id).url = f"http://127.0.0.1:{free_port()}{path}"
    new_contact(whub)
    new_contact(whub, "Второй")  # same endpoint: waits behind the failure, not counted as an attempt
    drain(whub)
    first, second = deliveries(whub, endpoint_id)
    assert (first.status, first.attempts) == ("queued", 1) and first.last_error
    assert (second.status, second.attempts) == ("queued", 0), "the rest of the batch is handed back uncounted"
    delay = (first.next_attempt_at - clock.now()).total_seconds()
    assert 15 <= delay <= 45, "30 s base with jitter"
    drain(whub)  # not due yet: nothing is tried
    assert deliveries(whub, endpoint_id)[0].attempts == 1
    if failure == "refused":
        with whub.session() as session, session.begin():
            session.get(WebhookEndpoint, endpoint_id).url = fresh_receiver.url(path)
    fresh_receiver.set(path, "ok")
    frozen_clock.advance(seconds=delay + 1)
    drain(whub)
    first, second = deliveries(whub, endpoint_id)
    assert (first.status, first.attempts, second.status) == ("delivered", 2, "delivered")
    ids = [e["id"] for e in fresh_receiver.received(path)]
    if failure == "refused":
        assert len(ids) == len(set(ids)) == 2
    else:  # the failed try, then the same webhook-id again (the receiver deduplicates on it), then the second
        assert len(ids) == 3 and ids[0] == ids[1] != ids[2], "the retry keeps its webhook-id"
    with whub.session(read_only=True) as session:
        log = session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == first.id)
                              .order_by(WebhookAttempt.id)).all()
    assert [a.status_code for a in log] == [500 if failure == "500" else None, 200]
    assert log[0].error and (failure != "500" or log[0].response.startswith("internal error"))
    with whub.session(read_only=True) as session:
        assert session.get(WebhookEndpoint, endpoint_id).failing_since is None, "a success ends the failing streak"


def test_backoff_grows_and_gives_up_after_the_retry_period(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/down", mode="500")
    new_contact(whub)
    started = clock.now()
    delays = []
    while True:
        drain(whub)
        [row] = deliveries(whub, endpoint_id)
        if row.status != "queued":
            break
        delays.append((row.next_attempt_at - clock.now()).total_seconds())
        frozen_clock.current = row.next_attempt_at
    assert row.status == "failed"
    assert clock.now() - started >= timedelta(hours=24), "retried for at least a day"
    assert delays[3] > delays[0] * 2 and max(delays) <= 4 * 3600 * 1.5, "capped at 4 h (±50% jitter)"
    assert row.attempts == len(delays) + 1 >= 8


def test_retry_after_is_honoured(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/busy", mode="retry-after", seconds=600)
    new_contact(whub)
    drain(whub)
    [row] = deliveries(whub, endpoint_id)
    assert row.status == "queued" and row.last_status_code == 503
    assert (row.next_attempt_at - clock.now()).total_seconds() == pytest.approx(600, abs=1)


def test_an_endpoint_failing_for_days_is_disabled_and_its_admin_told(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/dead", mode="500")
    new_contact(whub)
    drain(whub)
    with whub.session(read_only=True) as session:
        assert session.get(WebhookEndpoint, endpoint_id).failing_since == clock.now()
    frozen_clock.advance(hours=73)
    new_contact(whub, "После")
    drain(whub)
    with whub.session(read_only=True) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint.status == "disabled" and "HTTP 500" in endpoint.disabled_reason
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook.disable")).one()
        assert entry.actor_kind == "system" and entry.entity_id == str(endpoint_id)
        task = session.scalars(select(Task)).one()
        assert "/dead" in task.title and f"/admin/webhooks/{endpoint_id}" in task.notes
    tried = len(fresh_receiver.received("/dead"))
    frozen_clock.advance(hours=2)
    new_contact(whub, "Потом")
    drain(whub)
    assert len(fresh_receiver.received("/dead")) == tried, "nothing more is sent to a disabled endpoint"


def test_a_dead_endpoint_does_not_hold_up_the_others(whub, fresh_receiver, frozen_clock):
    dead, _ = add_endpoint(whub, fresh_receiver, "/hangs", mode="hang", seconds=30)
    alive, _ = add_endpoint(whub, fresh_receiver, "/alive")
    for n in range(5):
        new_contact(whub, f"Контакт {n}")
    dispatcher = whub.extensions["webhooks"].dispatcher()
    dispatcher.dispatch_due()
    import time

    deadline = time.monotonic() + 15
    while len(fresh_receiver.received("/alive")) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(fresh_receiver.received("/alive")) == 5, "the live endpoint got everything while the dead one hung"
    assert len(fresh_receiver.received("/hangs")) == 1, "one try at the dead endpoint, the rest handed back"
    drain(whub)
    assert [d.status for d in deliveries(whub, dead)] == ["queued"] * 5


def test_secret_rotation_signs_with_both_during_the_overlap(whub, fresh_receiver, frozen_clock):
    endpoint_id, old = add_endpoint(whub, fresh_receiver, "/rotate")
    with whub.session() as session, session.begin():
        new = service.rotate_secret(session, hub=whub, actor=SYSTEM, endpoint=session.get(WebhookEndpoint, endpoint_id),
                                    overlap_hours=24)
    assert new != old and new.startswith("whsec_")
    fresh_receiver.set("/rotate", "ok", secrets=[old, new])
    new_contact(whub)
    drain(whub)
    [during] = fresh_receiver.received("/rotate")
    assert during["verified"] == [0, 1] and during["signatures"] == 2, "a receiver holding either secret verifies"
    frozen_clock.advance(hours=25)
    new_contact(whub, "После ротации")
    drain(whub)
    after = fresh_receiver.received("/rotate")[-1]
    assert after["verified"] == [1] and after["signatures"] == 1, "after the overlap only the new secret signs"


def test_replay_one_and_since_a_time(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/replay")
    new_contact(whub, "Раз")
    frozen_clock.advance(hours=1)
    mark = clock.now()
    new_contact(whub, "Два")
    new_contact(whub, "Три")
    drain(whub)
    assert len(fresh_receiver.received("/replay")) == 3
    first = deliveries(whub, endpoint_id)[0]
    with whub.session() as session, session.begin():
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert service.replay_delivery(session, hub=whub, actor=SYSTEM, endpoint=endpoint, delivery_id=first.id)
    drain(whub)
    got = fresh_receiver.received("/replay")
    assert len(got) == 4 and got[-1]["id"] == got[0]["id"], "a replay keeps the webhook-id"
    with whub.session() as session, session.begin():
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert service.replay_since(session, hub=whub, actor=SYSTEM, endpoint=endpoint, since=mark) == 2
    drain(whub)
    names = [e["body"]["data"]["display_name"] for e in fresh_receiver.received("/replay")]
    assert names[4:] == ["Два", "Три"]


def test_replay_since_sends_what_a_paused_endpoint_missed(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/missed")
    with whub.session() as session, session.begin():
        service.set_status(session, actor=SYSTEM, endpoint=session.get(WebhookEndpoint, endpoint_id), status="paused")
    mark = clock.now()
    new_contact(whub, "Пропущенный")
    drain(whub)
    assert fresh_receiver.received("/missed") == []
    with whub.session() as session, session.begin():
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        service.set_status(session, actor=SYSTEM, endpoint=endpoint, status="active")
        assert service.replay_since(session, hub=whub, actor=SYSTEM, endpoint=endpoint, since=mark) == 1
    drain(whub)
    assert [e["body"]["data"]["display_name"] for e in fresh_receiver.received("/missed")] == ["Пропущенный"]


def test_no_redirect_is_followed_and_big_answers_are_cut(whub, fresh_receiver, frozen_clock):
    redirecting, _ = add_endpoint(whub, fresh_receiver, "/redirect", mode="redirect")
    big, _ = add_endpoint(whub, fresh_receiver, "/big", mode="big")
    new_contact(whub)
    drain(whub)
    [r] = deliveries(whub, redirecting)
    assert r.status == "queued" and r.last_status_code == 302 and "redirects are not followed" in r.last_error
    [b] = deliveries(whub, big)
    assert b.status == "delivered"
    with whub.session(read_only=True) as session:
        attempt = session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == b.id)).one()
    assert len(attempt.response) == 500


def test_a_test_event_goes_to_one_endpoint(whub, fresh_receiver, frozen_clock):
    one, _ = add_endpoint(whub, fresh_receiver, "/test-one")
    other, _ = add_endpoint(whub, fresh_receiver, "/test-other", types=("*",))
    with whub.session() as session, session.begin():
        service.send_test(session, hub=whub, actor=SYSTEM, endpoint=session.get(WebhookEndpoint, one))
    drain(whub)
    [got] = fresh_receiver.received("/test-one")
    assert got["body"]["type"] == "webhook.test" and got["verified"] == [0]
    assert fresh_receiver.received("/test-other") == []


def test_expired_claims_are_reaped(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/reap")
    new_contact(whub)
    jobs, _ = delivery.claim(whub, worker="gone", per_endpoint=10)
    assert len(jobs) == 1
    assert delivery.reap(whub) == 0
    frozen_clock.advance(seconds=11)
    assert delivery.reap(whub) == 1
    drain(whub)
    assert [d.status for d in deliveries(whub, endpoint_id)] == ["delivered"]
    assert delivery.record(whub, [delivery.Outcome(jobs[0].delivery_id, jobs[0].attempt, status_code=500)],
                           worker="gone") == {}, "the dead worker's late outcome is not recorded"


def test_an_address_that_became_unsafe_is_refused_at_send_time(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/rebound")
    with whub.session() as session, session.begin():  # as if DNS now answered with another address
        session.get(WebhookEndpoint, endpoint_id).url = f"http://0x7f000002:{fresh_receiver.port}/rebound"
    new_contact(whub)
    drain(whub)
    [row] = deliveries(whub, endpoint_id)
    assert row.status == "queued" and "loopback" in row.last_error and row.last_status_code is None
    assert fresh_receiver.received("/rebound") == []


def test_an_ordered_endpoint_never_sends_a_subjects_later_notice_first(whub, fresh_receiver, frozen_clock):
    from hub.models import Contact

    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/ordered", types=("contact.created", "contact.updated"),
                                  mode="500")
    with whub.session() as session, session.begin():
        session.get(WebhookEndpoint, endpoint_id).ordered = True
    contact_id = new_contact(whub)
    with whub.session() as session, session.begin():
        update_contact(session, contact=session.get(Contact, contact_id), actor=SYSTEM, changes={"display_name": "Анна К."})
    other = new_contact(whub, "Другой")
    drain(whub)  # created fails; the update waits for it; the other subject is tried on its own
    first, update, third = deliveries(whub, endpoint_id)
    assert (first.attempts, update.attempts) == (1, 0)
    fresh_receiver.set("/ordered", "ok")
    frozen_clock.advance(hours=1)
    drain(whub)
    got = [(e["body"]["subject"], e["body"]["type"]) for e in fresh_receiver.received("/ordered") if e["verified"]]
    mine = [t for s, t in got if s == f"contact:{contact_id}"]
    # The failed first try of contact.created, its retry, and only then the update.
    assert mine == ["contact.created", "contact.created", "contact.updated"]
    assert (f"contact:{other}", "contact.created") in got


def test_a_batch_of_outcomes_is_recorded_in_a_few_statements_whatever_its_size(whub, fresh_receiver, frozen_clock):
    from sqlalchemy import event

    from hub import notices

    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/batch")
    with whub.session() as session, session.begin():
        for n in range(30):
            notices.emit(session, "contact.created", subject=f"contact:{n}", data={"contact_id": n})
    jobs, _ = delivery.claim(whub, worker="w", per_endpoint=30)
    assert len(jobs) == 30
    sent, failed, untried = jobs[:20], jobs[20], jobs[21:]
    outcomes = [delivery.Outcome(j.delivery_id, j.attempt, status_code=200, latency_ms=5, response="ok") for j in sent]
    outcomes.append(delivery.Outcome(failed.delivery_id, failed.attempt, status_code=503, latency_ms=7, retry_after=60))
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0].upper())

    event.listen(whub.db.engine, "before_cursor_execute", seen)
    try:
        statuses = delivery.record(whub, outcomes, worker="w", released=[(j.delivery_id, j.attempt) for j in untried])
    finally:
        event.remove(whub.db.engine, "before_cursor_execute", seen)
    # The delivered rows in one statement, the retried one in another, the handed-back rest in a third,
    # and the endpoint's failing streak: not a statement per delivery.
    assert statements.count("UPDATE") <= 4 and len(statements) <= 10, statements
    assert statuses == {**{j.delivery_id: "delivered" for j in sent}, failed.delivery_id: "queued",
                        **{j.delivery_id: "queued" for j in untried}}
    rows = {d.id: d for d in deliveries(whub, endpoint_id)}
    assert all(rows[j.delivery_id].delivered_at is not None and rows[j.delivery_id].last_status_code == 200
               and rows[j.delivery_id].claimed_by is None for j in sent)
    retried = rows[failed.delivery_id]
    assert (retried.attempts, retried.last_status_code, retried.delivered_at) == (1, 503, None)
    assert retried.next_attempt_at == clock.now() + timedelta(seconds=60), "Retry-After honoured"
    assert all((rows[j.delivery_id].attempts, rows[j.delivery_id].next_attempt_at) == (0, retried.next_attempt_at)
               for j in untried), "the untried rest is handed back uncounted, due with the retry"
    with whub.session(read_only=True) as session:
        log = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
        assert session.get(WebhookEndpoint, endpoint_id).failing_since is None, "a success in the batch ends the streak"
    assert [(a.delivery_id, a.status_code) for a in log] == [(o.delivery_id, o.status_code) for o in outcomes]


def test_a_batch_of_sends_tells_endpoints_in_one_insert_per_table(whub, fresh_receiver, frozen_clock):
    """A worker's recorded batch emits its `message.sent` notices together: each is stored once and
    queued for every active endpoint, in one INSERT per table rather than two per delivery."""
    from sqlalchemy import event

    from hub import outbox
    from hub.worker import Worker
    from webhooks.models import WebhookMessage

    first, _ = add_endpoint(whub, fresh_receiver, "/sent-a", types=("message.sent",))
    second, _ = add_endpoint(whub, fresh_receiver, "/sent-b", types=("*",))
    with whub.session() as session, session.begin():
        contact = create_contact(session, actor=SYSTEM, region="RU", display_name="Вера")
        contact_id = contact.id
        for n in range(12):
            outbox.enqueue(session, channel="fake", address=f"+7916000{n:04d}", content={"text": f"m{n}"},
                           idempotency_key=f"batch-{n}", contact_id=contact.id)
    inserts: list[str] = []

    def seen(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_"):
            inserts.append(statement.split()[2])

    event.listen(whub.db.engine, "before_cursor_execute", seen)
    try:
        Worker(whub, "w").tick()
    finally:
        event.remove(whub.db.engine, "before_cursor_execute", seen)
    assert sorted(inserts) == ["webhook_delivery", "webhook_message"], inserts
    with whub.session(read_only=True) as session:
        messages = session.scalars(select(WebhookMessage).where(WebhookMessage.type == "message.sent")
                                   .order_by(WebhookMessage.id)).all()
    assert len(messages) == 12 and len({m.message_id for m in messages}) == 12
    assert all(m.contact_id == contact_id and m.payload["data"]["status"] == "sent" for m in messages)
    assert sorted(m.payload["data"]["delivery_id"] for m in messages) == sorted(
        {m.payload["data"]["delivery_id"] for m in messages})
    for endpoint_id in (first, second):
        rows = [d for d in deliveries(whub, endpoint_id) if d.message_id in {m.id for m in messages}]
        assert len(rows) == 12 and {d.message_id for d in rows} == {m.id for m in messages}
