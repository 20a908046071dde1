"""The endpoints each process keeps (hub.memo): a change made in one process takes effect for the
next event in another, on both stores; while nothing changes, a notice reads no endpoints."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, func, select

from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.db import Database
from webhooks import service
from webhooks.models import EndpointStatus, WebhookDelivery, WebhookEndpoint
from tests.webhooks.conftest import make_hub


def _heard(memo, before: int) -> None:
    """Wait (a condition, not a duration) until the other process's NOTIFY has reached this memo."""
    if not memo.listening:
        return  # SQLite: nothing is kept across transactions, so there is nothing to hear
    deadline = time.monotonic() + 30
    while memo.generation == before:
        assert time.monotonic() < deadline, "the change was never heard"
        time.sleep(0.01)


def _warm(hub) -> None:
    """One notice in its own transaction, so the process has read (and may keep) the endpoints."""
    deadline = time.monotonic() + 30
    while True:
        _event(hub)
        if hub.db.memo.listening or hub.db.engine.dialect.name != "postgresql" or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _event(hub) -> int:
    with hub.session() as session, session.begin():
        return create_contact(session, actor=SYSTEM, region="RU", display_name="Анна").id


def _deliveries(hub, endpoint_id: int) -> int:
    with hub.session() as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery)
                              .where(WebhookDelivery.endpoint_id == endpoint_id))


@pytest.fixture
def two(database, tmp_path):
    """Two runtimes on one store, each with its own engine and memo, as two processes have."""
    other_db = Database(database.settings)
    here, there = make_hub(database, tmp_path), make_hub(other_db, tmp_path)
    yield here, there
    other_db.dispose()
    there.broker.stop()
    from tests.conftest import _wipe

    _wipe(database)
    here.broker.stop()


def test_an_endpoint_changed_in_one_process_is_seen_by_the_next_event_in_another(two):
    here, there = two
    _warm(there)
    before = there.db.memo.generation
    with here.session() as session, session.begin():
        endpoint, _secret = service.create_endpoint(session, hub=here, actor=SYSTEM, url="https://8.8.8.8/hook",
                                                    event_types=["contact.created"])
        endpoint_id = endpoint.id
    _heard(there.db.memo, before)
    _event(there)
    assert _deliveries(here, endpoint_id) == 1  # created there: queued here

    for status, queued in ((EndpointStatus.PAUSED, 1), (EndpointStatus.ACTIVE, 2)):  # paused: nothing more queued
        before = there.db.memo.generation
        with here.session() as session, session.begin():
            service.set_status(session, actor=SYSTEM, endpoint=service.get_endpoint(session, endpoint_id),
                               status=status)
        _heard(there.db.memo, before)
        _event(there)
        assert _deliveries(here, endpoint_id) == queued

    before = there.db.memo.generation
    with here.session() as session, session.begin():
        service.delete_endpoint(session, actor=SYSTEM, endpoint=service.get_endpoint(session, endpoint_id))
    _heard(there.db.memo, before)
    _event(there)  # would fail on the deleted endpoint's foreign key if it were still kept
    with here.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_an_endpoint_written_past_the_service_is_seen_too(two):
    here, there = two
    _warm(there)
    before = there.db.memo.generation
    with here.session() as session, session.begin():  # a plain ORM insert, as a seed or a script does
        endpoint = WebhookEndpoint(url="https://8.8.8.8/seeded", event_types=["*"], secret="whsec_AAAA")
        session.add(endpoint)
        session.flush()
        endpoint_id = endpoint.id
    _heard(there.db.memo, before)
    _event(there)
    assert _deliveries(here, endpoint_id) == 1


def test_a_change_is_seen_by_its_own_transaction_and_at_once_by_its_process(two):
    here, _there = two
    _warm(here)
    with here.session() as session, session.begin():
        endpoint, _secret = service.create_endpoint(session, hub=here, actor=SYSTEM, url="https://8.8.8.8/hook",
                                                    event_types=["contact.created"])
        create_contact(session, actor=SYSTEM, region="RU", display_name="Борис")  # same transaction
        endpoint_id = endpoint.id
    assert _deliveries(here, endpoint_id) == 1
    _event(here)  # no waiting: the commit told this process
    assert _deliveries(here, endpoint_id) == 2


def test_while_nothing_changes_a_notice_reads_no_endpoints(two):
    here, _there = two
    with here.session() as session, session.begin():
        service.create_endpoint(session, hub=here, actor=SYSTEM, url="https://8.8.8.8/hook", event_types=["*"])
    _warm(here)
    _event(here)
    reads = []

    def count(_conn, _cursor, statement, *_args):
        if "FROM webhook_endpoint" in statement:
            reads.append(statement)

    event.listen(here.db.engine, "before_cursor_execute", count)
    try:
        _event(here)
        _event(here)
    finally:
        event.remove(here.db.engine, "before_cursor_execute", count)
    # PostgreSQL keeps them (a NOTIFY tells of a change); SQLite reads once per transaction.
    assert len(reads) == (0 if here.db.engine.dialect.name == "postgresql" else 2)


def test_a_change_made_while_the_listener_was_down_is_seen_after_it(two):
    """A lost listener connection keeps nothing from before: a change whose NOTIFY it missed is seen."""
    from sqlalchemy import text

    here, there = two
    if here.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps nothing across transactions and runs no listener")
    _warm(there)
    before = there.db.memo.generation
    with here.db.engine.begin() as conn:  # what a restarted PostgreSQL or a dropped network does
        ended = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND query = 'LISTEN hub_memo'")).all()
    assert ended
    _heard(there.db.memo, before)  # the lost connection moved the generation on
    with here.session() as session, session.begin():
        endpoint, _secret = service.create_endpoint(session, hub=here, actor=SYSTEM, url="https://8.8.8.8/hook",
                                                    event_types=["contact.created"])
        endpoint_id = endpoint.id
    _event(there)  # listening again or not: read after the change either way
    assert _deliveries(here, endpoint_id) == 1
