"""The one write path: identities resolve to one contact, replays and races give one event."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from hub.identities import InvalidIdentity
from hub.ingest import IdentityRef, InboundEvent, ingest, post_event
from hub.models import Contact, Identity, IdentityKind, TimelineEvent


def sms(external_id: str = "SM1", phone: str = "+7 916 123-45-67", **kw: object) -> InboundEvent:
    return InboundEvent(
        channel="fake",
        kind="message",
        external_id=external_id,
        identities=[IdentityRef(kind=IdentityKind.PHONE, value=phone)],
        text="Здравствуйте",
        **kw,  # type: ignore[arg-type]
    )


def count(hub, model) -> int:  # type: ignore[no-untyped-def]
    with hub.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_new_identity_creates_contact_and_event(hub):
    result = ingest(hub, sms(display_name="Иван Петров"))
    assert result.created and result.contact_created
    assert result.contact.display_name == "Иван Петров"
    with hub.session() as s:
        ident = s.scalars(select(Identity)).one()
    assert (ident.kind, ident.value, ident.is_primary) == ("phone", "+79161234567", True)


def test_same_phone_in_another_notation_finds_the_same_contact(hub):
    first = ingest(hub, sms("SM1", "+79161234567"))
    second = ingest(hub, sms("SM2", "8 (916) 123 45 67"))
    assert second.contact.id == first.contact.id and not second.contact_created
    assert count(hub, Contact) == 1 and count(hub, TimelineEvent) == 2


def test_replayed_event_changes_nothing(hub):
    fired = []
    hub.triggers.register("message", lambda s, *, event, contact: fired.append(event.id))
    first = ingest(hub, sms())
    for _ in range(5):
        again = ingest(hub, sms())
        assert not again.created and again.event.id == first.event.id
    assert count(hub, TimelineEvent) == 1 and count(hub, Contact) == 1
    assert fired == [first.event.id]


def test_concurrent_replays_give_one_event_and_one_contact(hub):
    def go(_: int) -> bool:
        return ingest(hub, sms("SM-race", "+7 916 000 11 22")).created

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(go, range(24)))
    assert created.count(True) == 1
    assert count(hub, TimelineEvent) == 1 and count(hub, Contact) == 1 and count(hub, Identity) == 1


def test_concurrent_distinct_events_for_a_new_person_give_one_contact(hub):
    def go(i: int) -> int:
        return ingest(hub, sms(f"SM-{i}", "+7 916 000 33 44")).contact.id

    with ThreadPoolExecutor(max_workers=8) as pool:
        contact_ids = set(pool.map(go, range(16)))
    assert len(contact_ids) == 1
    assert count(hub, TimelineEvent) == 16 and count(hub, Contact) == 1


def test_extra_identities_attach_to_the_found_contact(hub):
    first = ingest(hub, sms("SM1"))
    ev = InboundEvent(
        channel="fake", kind="message", external_id="E1",
        identities=[IdentityRef(kind="email", value="Ivan@Example.com"), IdentityRef(kind="phone", value="+79161234567")],
    )
    result = ingest(hub, ev)
    assert result.contact.id == first.contact.id
    with hub.session() as s:
        values = set(s.scalars(select(Identity.value).where(Identity.contact_id == first.contact.id)))
    assert values == {"+79161234567", "ivan@example.com"}


def test_invalid_identity_writes_nothing(hub):
    with pytest.raises(InvalidIdentity):
        ingest(hub, sms(phone="not a phone"))
    assert count(hub, Contact) == 0 and count(hub, TimelineEvent) == 0


def test_event_needs_someone():
    with pytest.raises(ValueError, match="contact_id or at least one identity"):
        InboundEvent(channel="fake", kind="message")


def test_rolled_back_event_publishes_nothing_and_committed_one_does(hub):
    seen: list[dict] = []
    hub.broker.publish = lambda topic, message: seen.append({"topic": topic, **message})  # type: ignore[method-assign]
    with hub.session() as s:
        with pytest.raises(RuntimeError):
            with s.begin():
                post_event(s, event=sms("SM-rollback"))
                raise RuntimeError("boom")
    assert seen == [] and count(hub, TimelineEvent) == 0
    result = ingest(hub, sms("SM-ok"))
    assert seen == [{"topic": f"contact:{result.contact.id}", "type": "event.created", "contact_id": result.contact.id,
                     "event_id": result.event.id, "channel": "fake", "kind": "message", "direction": "in"}]


def test_an_event_committed_by_the_callers_own_transaction_is_still_published(hub):
    # The commit expires the ORM rows before the after-commit callbacks run; they must not need them.
    seen: list[dict] = []
    hub.broker.publish = lambda topic, message: seen.append({"topic": topic, **message})  # type: ignore[method-assign]
    with hub.session() as s, s.begin():
        result = post_event(s, event=sms("SM-own-transaction"))
        contact_id = result.contact.id
    assert [m["topic"] for m in seen] == [f"contact:{contact_id}"]


def test_memory_broker_fans_out_by_topic(hub):
    async def scenario() -> list[dict]:
        got = []

        async def listen() -> None:
            async for message in hub.broker.subscribe({"contact:1"}):
                got.append(message)
                return

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.01)
        hub.broker.publish("contact:2", {"n": 2})
        hub.broker.publish("contact:1", {"n": 1})
        await asyncio.wait_for(task, 2)
        return got

    assert asyncio.run(scenario()) == [{"topic": "contact:1", "n": 1}]


def test_post_events_records_a_batch_once_fires_triggers_and_publishes_after_commit(hub):
    from hub.ingest import ContactNotFound, post_events
    from hub.models import Direction

    contact = ingest(hub, sms("SM-batch")).contact.id
    every, inbound_only, published = [], [], []
    hub.triggers.register("*", lambda s, *, event, contact: every.append(event.external_id))
    hub.triggers.register("*", lambda s, *, event, contact: inbound_only.append(event.external_id), outgoing=False)
    original = hub.broker.publish
    hub.broker.publish = lambda topic, message: published.append((topic, message["event_id"]))  # type: ignore[method-assign]
    try:
        def event(n: int, direction: Direction = Direction.OUT) -> InboundEvent:
            return InboundEvent(channel="fake", kind="message", direction=direction, contact_id=contact,
                                external_id=f"batch-{n}", text=f"n{n}")

        with hub.session() as s, s.begin():
            ids = post_events(s, events=[event(1), event(2, Direction.IN), event(1)])
            assert published == []  # not before the commit
        assert ids[0] == ids[2] and len(set(ids)) == 2
        with hub.session() as s, s.begin():
            again = post_events(s, events=[event(2, Direction.IN), event(3)])  # a replay and a new one
        assert again[0] == ids[1]
    finally:
        hub.broker.publish = original  # type: ignore[method-assign]
    assert sorted(every) == ["batch-1", "batch-2", "batch-3"] and inbound_only == ["batch-2"]
    assert sorted(event_id for _topic, event_id in published) == sorted({*ids, again[1]})
    with hub.session() as s, pytest.raises(ContactNotFound):
        post_events(s, events=[InboundEvent(channel="fake", kind="message", contact_id=10**9, external_id="x")])


def test_post_events_triggers_get_the_new_rows_whole_without_loading_them_into_the_session(hub):
    """The batch's triggers read every field of each new event from the insert's RETURNING, as
    read-only rows: no ORM object is built for them (~0.3 ms of CPU per batch, docs/benchmarks.md)."""
    from hub.ingest import post_events
    from hub.models import TimelineEvent

    contact = ingest(hub, sms("SM-rows")).contact.id
    at = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
    seen: list[tuple] = []
    hub.triggers.register("*", lambda s, *, event, contact: seen.append(
        (event.id, event.contact_id, event.kind, event.direction, event.occurred_at, event.data, event.subject,
         contact.id, [o for o in s.identity_map.values() if isinstance(o, TimelineEvent)])))
    with hub.session() as s, s.begin():
        ids = post_events(s, events=[InboundEvent(channel="fake", kind=kind, direction="in", contact_id=contact,
                                                  external_id=f"rows-{kind}", occurred_at=at, subject=kind,
                                                  data={"kind": [kind]}) for kind in ("first.kind", "second.kind")])
        assert not [o for o in s.identity_map.values() if isinstance(o, TimelineEvent)]
    assert [row[:8] for row in seen] == [(ids[0], contact, "first.kind", "in", at, {"kind": ["first.kind"]}, "first.kind",
                                          contact),
                                         (ids[1], contact, "second.kind", "in", at, {"kind": ["second.kind"]},
                                          "second.kind", contact)]
    assert [row[8] for row in seen] == [[], []]  # nothing loaded when the triggers ran either
    assert seen[0][4].utcoffset() == timedelta(0)


def test_a_returning_customers_event_costs_two_statements(hub):
    """The replay check and the identity's contact in one statement, then the event's insert: no
    second read of the contact and no insert of the identity that found it."""
    from sqlalchemy import event as sa_event

    first = ingest(hub, sms("SM1"))
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa_event.listen(hub.db.engine, "before_cursor_execute", seen)
    try:
        second = ingest(hub, sms("SM2", "8 (916) 123 45 67"))
    finally:
        sa_event.remove(hub.db.engine, "before_cursor_execute", seen)
    assert second.contact.id == first.contact.id and second.created and not second.contact_created
    # Only the write path's own statements: the extensions' triggers (campaigns, webhooks) add theirs.
    own = [s for s in statements if any(t in s for t in ("identity", "contact.", "INTO timeline_event"))]
    assert len(own) == 2, own
    assert count(hub, Identity) == 1


def test_a_replay_found_by_the_first_look_creates_no_contact_for_an_unknown_identity(hub):
    first = ingest(hub, sms("SM1", "+79161234567"))
    with hub.session() as s, s.begin():  # the identity is gone (erased), the event is not
        s.execute(Identity.__table__.delete())
    again = ingest(hub, sms("SM1", "+79161234567"))
    assert not again.created and again.event.id == first.event.id
    assert count(hub, Contact) == 1 and count(hub, Identity) == 0


def test_post_events_uses_the_callers_contact_row_and_follows_a_merged_one(hub):
    """A contact the caller has read (a survey answer's link) goes to the triggers as it is, with no
    read of `contact` and no ORM object; a merged one is still followed to its survivor."""
    from sqlalchemy import event

    from hub.ingest import post_events

    kept = ingest(hub, sms("SM-kept")).contact.id
    gone = ingest(hub, sms("SM-gone", phone="+7 916 999-88-77")).contact.id
    with hub.session() as s, s.begin():
        s.get(Contact, gone).merged_into = kept
    with hub.session(read_only=True) as s:
        rows = {r.id: r for r in s.execute(select(Contact.__table__).where(Contact.__table__.c.id.in_([kept, gone])))}
    given: list[object] = []
    hub.triggers.register("given.kind", lambda _s, *, event, contact: given.append(contact))
    reads: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if "FROM contact" in statement:
            reads.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", record)
    try:
        with hub.session() as s, s.begin():
            post_events(s, events=[InboundEvent(channel="fake", kind="given.kind", direction="in", contact_id=kept,
                                                external_id="given-1")], contacts={kept: rows[kept]})
            assert not [o for o in s.identity_map.values() if isinstance(o, Contact)]
        assert reads == [] and given == [rows[kept]]
        with hub.session() as s, s.begin():  # the merged one's row is not used: its survivor is read
            post_events(s, events=[InboundEvent(channel="fake", kind="given.kind", direction="in", contact_id=gone,
                                                external_id="given-2")], contacts={gone: rows[gone]})
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", record)
    assert reads and given[1].id == kept
    with hub.session(read_only=True) as s:
        assert s.scalar(select(TimelineEvent.contact_id).where(TimelineEvent.external_id == "given-2")) == kept
