"""The outbox and the pollers against providers that fail: after each fault the outbox drains,
nothing is lost, duplicates stay within the bound (deliveries in flight when the fault hit), and the
error says what happened on the delivery (what the campaign and contact pages show) and in the log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from hub import outbox
from hub.models import Contact, Delivery, DeliveryStatus, Identity, TimelineEvent
from hub.worker import Worker
from tests.channels.email.conftest import configure
from tests.channels.email.test_imap import events, mail
from tests.channels.sms.harness import make_world
from tests.faults.proxy import Cuttable

pytestmark = pytest.mark.faults
S = DeliveryStatus


def queue_emails(hub: Any, count: int, *, prefix: str) -> list[int]:
    ids = []
    with hub.session() as s, s.begin():
        for n in range(count):
            contact = Contact(display_name=f"Клиент {n}", search_name=f"клиент {n}")
            s.add(contact)
            s.flush()
            address = f"{prefix}{n}@example.org"
            s.add(Identity(contact_id=contact.id, kind="email", value=address, is_primary=True))
            delivery = outbox.enqueue(s, channel="email", address=address, idempotency_key=f"{prefix}-{n}",
                                      contact_id=contact.id, content={"subject": f"Заказ {n}", "text": "Спасибо!"})
            ids.append(delivery.id)
    return ids


def statuses(hub: Any, ids: list[int]) -> dict[int, Delivery]:
    with hub.session(read_only=True) as s:
        return {d.id: d for d in s.scalars(select(Delivery).where(Delivery.id.in_(ids)))}


def drain(hub: Any, clock: Any, *, rounds: int = 12) -> None:
    """Tick, then jump past any backoff, until nothing is queued any more."""
    for _ in range(rounds):
        Worker(hub).tick()
        with hub.session(read_only=True) as s:
            waiting = s.scalar(select(func.max(Delivery.send_after)).where(Delivery.status == S.QUEUED))
        if waiting is None:
            return
        clock.current = max(clock.current, waiting)
    raise AssertionError("the outbox did not drain")


def test_smtp_server_down_then_back(hub, faulty_smtp, frozen_clock, caplog):
    configure(hub, **faulty_smtp.settings())
    ids = queue_emails(hub, 12, prefix="down")
    faulty_smtp.stop()
    with caplog.at_level(logging.INFO):
        Worker(hub).tick()
    after = statuses(hub, ids)
    assert {d.status for d in after.values()} == {S.QUEUED}
    assert all("127.0.0.1" in (d.last_error or "") or "onnect" in (d.last_error or "") for d in after.values()), \
        [d.last_error for d in after.values()]
    assert all(d.send_after > frozen_clock.current for d in after.values())  # backoff, not a hot loop

    faulty_smtp.start()
    drain(hub, frozen_clock)
    assert {d.status for d in statuses(hub, ids).values()} == {S.SENT}
    arrived = faulty_smtp.message_ids()
    assert len(arrived) == 12 and set(arrived.values()) == {1}  # nothing lost, nothing twice


def test_smtp_421_defers_and_the_outbox_drains_once_it_recovers(hub, faulty_smtp, frozen_clock):
    configure(hub, **faulty_smtp.settings())
    ids = queue_emails(hub, 8, prefix="busy")
    faulty_smtp.set("421")
    Worker(hub).tick()
    after = statuses(hub, ids)
    assert {d.status for d in after.values()} == {S.QUEUED}
    assert all("421" in (d.last_error or "") for d in after.values()), [d.last_error for d in after.values()]
    assert not faulty_smtp.message_ids()

    faulty_smtp.set("ok")
    drain(hub, frozen_clock)
    assert {d.status for d in statuses(hub, ids).values()} == {S.SENT}
    assert set(faulty_smtp.message_ids().values()) == {1} and len(faulty_smtp.message_ids()) == 8


def test_smtp_554_is_final_with_the_servers_reason_and_never_retried(hub, faulty_smtp, frozen_clock):
    configure(hub, **faulty_smtp.settings())
    ids = queue_emails(hub, 3, prefix="policy")
    faulty_smtp.set("554")
    Worker(hub).tick()
    after = statuses(hub, ids)
    assert {d.status for d in after.values()} == {S.DEAD}
    assert all("554 5.7.1 Message rejected by policy" in (d.last_error or "") for d in after.values())
    with hub.session(read_only=True) as s:  # the timeline shows it too
        shown = s.scalars(select(TimelineEvent.status).where(TimelineEvent.id.in_([d.event_id for d in after.values()])))
        assert set(shown) == {"dead"}

    faulty_smtp.set("ok")
    frozen_clock.advance(seconds=86_400)
    Worker(hub).tick()
    assert not faulty_smtp.message_ids()  # a refusal is not retried


def test_a_slow_smtp_server_times_out_and_only_messages_in_flight_can_arrive_twice(hub, faulty_smtp, frozen_clock):
    configure(hub, **faulty_smtp.settings(smtp_timeout=1))
    ids = queue_emails(hub, 6, prefix="slow")
    faulty_smtp.set("slow:2")
    Worker(hub).tick()  # the server keeps each message but answers after the client gave up
    in_flight = {d.id for d in statuses(hub, ids).values() if "Timeout" in (d.last_error or "")}
    assert in_flight, "the slow answers should have timed out"

    faulty_smtp.set("ok")
    drain(hub, frozen_clock)
    final = statuses(hub, ids)
    assert {d.status for d in final.values()} == {S.SENT}
    arrived = faulty_smtp.message_ids()
    assert len(arrived) == 6  # nothing lost
    # The bound: only a message whose answer was lost (in flight at the fault) can arrive twice.
    twice = {message_id for message_id, times in arrived.items() if times > 1}
    assert twice <= {"<" + (final[i].provider_id or "").strip("<>") + ">" for i in in_flight}
    assert max(arrived.values()) <= 2


def test_twilio_timeouts_429_and_500_in_one_burst_end_with_every_sms_sent(hub, frozen_clock):
    with make_world(hub, sms={"timeout_seconds": 1}) as world:
        with world.hub.session() as s, s.begin():
            contact = Contact(display_name="Иван", search_name="иван")
            s.add(contact)
            s.flush()
            ids = [outbox.enqueue(s, channel="sms", address=f"+7916555{n:04d}", content={"text": f"Код {n}"},
                                  idempotency_key=f"sms-fault-{n}", contact_id=contact.id).id for n in range(6)]
        world.server.stall_next(2.5)
        world.server.fail_next(429, retry_after="3")
        world.server.fail_next(500)
        drain(world.hub, frozen_clock)
        final = statuses(world.hub, ids)
        assert {d.status for d in final.values()} == {S.SENT}
        created = [m for m in world.server.messages.values()]
        per_number: dict[str, int] = {}
        for message in created:
            per_number[message["to"]] = per_number.get(message["to"], 0) + 1
        assert len(per_number) == 6  # nothing lost
        assert sum(per_number.values()) - 6 <= 1  # only the stalled call's message can repeat


def test_imap_server_away_for_a_while_loses_and_doubles_nothing(hub, dovecot, caplog):
    user = dovecot.user()
    mailbox = dovecot.mailbox(user)
    link = Cuttable(mailbox["port"]).up()
    try:
        channel = configure(hub, imap=[{**mailbox, "port": link.port}])
        dovecot.append(user, mail(1))
        (first,) = channel.poll()
        assert first.created == 1

        link.down()
        dovecot.append(user, mail(2))
        with caplog.at_level(logging.ERROR, logger="channels.email"):
            (job,) = channel.jobs()
            job.func(hub)  # the periodic job logs and carries on; it does not crash the scheduler
        assert any("polling" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
        assert len(events(hub)) == 1

        link.up()
        (back,) = channel.poll()
        assert (back.created, back.error) == (1, None)
        assert [e.subject for e in events(hub)] == ["question 1", "question 2"]
    finally:
        link.down()
