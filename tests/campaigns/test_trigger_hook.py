"""The campaigns' trigger hook asks for running triggered campaigns once per transaction, not once per
event; the answer is kept across transactions until a campaign's status or trigger changes anywhere
(hub.memo): a campaign started or paused elsewhere, or earlier in the same transaction, is seen by
the next event."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event

from campaigns import service
from campaigns.extension import triggering_kinds
from campaigns.models import Campaign
from hub.db import Database
from hub.ingest import IdentityRef, InboundEvent, post_event
from hub.models import Direction, IdentityKind
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.conftest import test_registry
from tests.campaigns.helpers import act, email_set_up, make_campaign, make_template, run_count


def _form(n: int) -> InboundEvent:
    return InboundEvent(channel="forms", kind="form.submitted", direction=Direction.IN, external_id=f"form-{n}",
                        identities=[IdentityRef(kind=IdentityKind.EMAIL, value=f"f{n}@example.org")])


def test_events_of_one_transaction_ask_for_triggered_campaigns_once(hub):
    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted")

    def post() -> None:
        with hub.session() as s, s.begin():
            for n in range(3):
                post_event(s, event=_form(n))

    # Once; twice only if this process hears its own NOTIFY of the campaign's insert mid-transaction.
    assert _kinds_reads(hub, post) in (1, 2)
    assert run_count(hub, cid) == 3


def test_a_campaign_started_or_paused_between_transactions_is_seen_by_the_next_event(hub):
    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted", schedule=False)
    email_set_up(hub)
    with hub.session() as s:  # one session across transactions, as a worker holds one
        with s.begin():
            post_event(s, event=_form(1))
        assert run_count(hub, cid) == 0
        with hub.session() as other, other.begin():  # started by another session (another process alike)
            service.schedule(other, campaign=other.get(Campaign, cid))
        with s.begin():
            post_event(s, event=_form(2))
        assert run_count(hub, cid) == 1
        act(hub, cid, "pause")
        with s.begin():
            post_event(s, event=_form(3))
        assert run_count(hub, cid) == 1


def test_a_campaign_started_earlier_in_the_same_transaction_is_seen(hub):
    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted", schedule=False)
    email_set_up(hub)
    with hub.session() as s, s.begin():
        post_event(s, event=_form(1))  # reads the kinds: none yet
        service.schedule(s, campaign=s.get(Campaign, cid))
        post_event(s, event=_form(2))
    assert run_count(hub, cid) == 1


def _kinds_reads(hub, work) -> int:  # type: ignore[no-untyped-def]
    reads = []

    def count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM campaign" in statement and "DISTINCT" in statement:
            reads.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", count)
    return len(reads)


def _listening(hub) -> None:  # type: ignore[no-untyped-def]
    """Until the process's memo listens (PostgreSQL): before, every transaction reads (hub.memo)."""
    deadline = time.monotonic() + 30
    while not hub.db.memo.listening and hub.db.engine.dialect.name == "postgresql":
        assert time.monotonic() < deadline, "the memo's listener never connected"
        with hub.session() as s, s.begin():
            triggering_kinds(s)
        time.sleep(0.01)
    with hub.session() as s, s.begin():
        triggering_kinds(s)  # read while listening: kept from now on


@pytest.fixture
def other(hub):  # type: ignore[no-untyped-def]
    """A second runtime on the same store with its own engine and memo, as another process has."""
    other_db = Database(hub.db.settings)
    runtime = Hub(hub.settings, registry=test_registry(), triggers=TriggerRegistry(), db=other_db)
    yield runtime
    other_db.dispose()
    runtime.broker.stop()


def test_the_kinds_are_kept_across_transactions_until_a_campaign_changes_anywhere(hub, other):
    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted", schedule=False)
    email_set_up(hub)
    email_set_up(other)
    _listening(hub)

    def events(*numbers: int):  # type: ignore[no-untyped-def]
        def post() -> None:
            for n in numbers:
                with hub.session() as s, s.begin():
                    post_event(s, event=_form(n))
        return post

    kept = hub.db.memo.listening  # SQLite: read once per transaction, as before
    # At most one read when kept: this process hears its own earlier NOTIFYs (the campaign's insert)
    # whenever PostgreSQL delivers them, which may be after the warm read.
    reads = _kinds_reads(hub, events(1, 2, 3, 4, 5))
    assert reads <= 1 if kept else reads == 5
    assert run_count(hub, cid) == 0

    before = hub.db.memo.generation
    with other.session() as s, s.begin():  # started in the other process
        service.schedule(s, campaign=s.get(Campaign, cid))
    deadline = time.monotonic() + 30
    while kept and hub.db.memo.generation == before:  # its NOTIFY reaching this process
        assert time.monotonic() < deadline, "the change was never heard"
        time.sleep(0.01)
    assert _kinds_reads(hub, events(6, 7)) == (1 if kept else 2)
    assert run_count(hub, cid) == 2

    with other.session() as s, s.begin():  # a write that changes none of the kinds' columns tells nobody
        s.get(Campaign, cid).name = "Renamed"
    assert _kinds_reads(hub, events(8)) == (0 if kept else 1)
    assert run_count(hub, cid) == 3


def test_a_batch_of_events_through_post_events_triggers_the_campaign_in_its_transaction(hub):
    """post_events hands its triggers read-only rows, not ORM objects: the campaign's run is still
    created, one per new event, in the batch's transaction (rolled back with it), and a replay adds none."""
    from hub.ingest import ingest, post_events

    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted")
    contact = ingest(hub, _form(0)).contact.id
    assert run_count(hub, cid) == 1

    def batch(*numbers: int) -> list[InboundEvent]:
        return [InboundEvent(channel="forms", kind="form.submitted", direction=Direction.IN, contact_id=contact,
                             external_id=f"batch-{n}") for n in numbers]

    with hub.session() as s:
        post_events(s, events=batch(1, 2))
        s.rollback()
    assert run_count(hub, cid) == 1
    with hub.session() as s, s.begin():
        post_events(s, events=batch(1, 2))
    assert run_count(hub, cid) == 3
    with hub.session() as s, s.begin():
        post_events(s, events=batch(2, 3))  # a replay and a new one
    assert run_count(hub, cid) == 4
