"""Merging duplicates moves everything to the survivor; undo restores the exact previous state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import or_, select

from hub.auth import SYSTEM, create_user, user_principal
from hub.contacts import IdentityIn, create_contact, update_contact
from hub.ingest import ContactNotFound, IdentityRef, InboundEvent, get_contact, ingest, post_event
from hub.merge import MergeConflict, MergeRefused, merge_contacts, preview_merge, undo_merge
from hub.models import (
    AuditEntry,
    ConsentRecord,
    Contact,
    Delivery,
    Identity,
    MergeRecord,
    Role,
    Task,
    TimelineEvent,
)

REGION = "RU"
RELATED = (Identity, TimelineEvent, Task, ConsentRecord, Delivery)


def dump(session, *contact_ids: int) -> dict[str, list[dict]]:
    """Every row of every table that belongs to these contacts, column by column."""
    out = {"contact": [dict(r._mapping) for r in session.execute(
        select(Contact.__table__).where(Contact.__table__.c.id.in_(contact_ids)).order_by(Contact.__table__.c.id))]}
    for model in RELATED:
        table = model.__table__
        out[table.name] = [dict(r._mapping) for r in session.execute(
            select(table).where(table.c.contact_id.in_(contact_ids)).order_by(table.c.id))]
    return out


def person(session, name, *idents, **fields) -> Contact:
    return create_contact(session, actor=SYSTEM, region=REGION, display_name=name,
                          identities=[IdentityIn(kind=k, value=v) for k, v in idents], **fields)


def event(session, contact_id: int, external_id: str, **kw) -> TimelineEvent:
    return post_event(session, event=InboundEvent(channel="fake", kind="message", external_id=external_id,
                                                  contact_id=contact_id, text=external_id, **kw)).event


def rich_pair(session, clock) -> tuple[int, int]:
    """A survivor and a duplicate, each with identities, events, tasks, consent and deliveries."""
    owner = create_user(session, email="owner@example.com", password="correct horse battery", role=Role.AGENT)
    keep = person(session, "Иван Петров", ("phone", "+79161234567"), ("email", "ivan@work.example"),
                  tags=["vip", "b2b"], attributes={"city": "Москва", "tier": 1})
    dupe = person(session, "Ivan P.", ("email", "ivan@home.example"), ("phone", "+79035550000"),
                  locale="en", time_zone="Europe/Berlin", owner_id=owner.id, lifecycle_stage="customer",
                  tags=["b2b", "newsletter"], attributes={"city": "Berlin", "shoe": "43"})
    for contact in (keep, dupe):
        for i in range(3):
            clock.advance(minutes=1)
            event(session, contact.id, f"{contact.id}-ev{i}")
        session.add(Task(contact_id=contact.id, title=f"call {contact.id}", due_at=clock.current + timedelta(days=1)))
        session.add(ConsentRecord(contact_id=contact.id, channel="email", status="granted", source="form"))
        session.add(Delivery(channel="fake", contact_id=contact.id, address=f"a{contact.id}",
                             idempotency_key=f"d-{contact.id}", content={"text": "hi"}))
    session.flush()
    return keep.id, dupe.id  # type: ignore[return-value]


def test_merge_moves_everything_and_fills_blank_fields(hub, frozen_clock):
    with hub.session() as s, s.begin():
        keep, dupe = rich_pair(s, frozen_clock)
        frozen_clock.advance(hours=1)
        record = merge_contacts(s, survivor_id=keep, merged_id=dupe, actor=SYSTEM)
        merge_id = record.id
    with hub.session() as s:
        survivor, merged = s.get(Contact, keep), s.get(Contact, dupe)
        assert merged.merged_into == keep
        assert survivor.display_name == "Иван Петров"  # the survivor keeps its fields
        assert (survivor.locale, survivor.time_zone, survivor.lifecycle_stage) == ("en", "Europe/Berlin", "lead")
        assert survivor.owner_id is not None
        assert survivor.tags == ["vip", "b2b", "newsletter"]
        assert survivor.attributes == {"city": "Москва", "tier": 1, "shoe": "43"}
        assert survivor.updated_at == frozen_clock.current
        for model in RELATED:
            assert s.scalars(select(model).where(model.contact_id == dupe)).all() == []
        assert len(s.scalars(select(TimelineEvent).where(TimelineEvent.contact_id == keep)).all()) == 6
        primaries = s.scalars(select(Identity.value).where(Identity.contact_id == keep, Identity.is_primary)).all()
        assert primaries == ["+79161234567"]
        assert get_contact(s, dupe).id == keep  # the merged one redirects
        moved = s.get(MergeRecord, merge_id).snapshot["moved"]
        assert {k: len(v) for k, v in moved.items() if v} == {
            "identity": 2, "timeline_event": 3, "task": 1, "consent_record": 1, "delivery": 1}
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.contact_id.in_([keep, dupe]),
                                                            AuditEntry.action.like("contact.merge%"))).all()
        assert sorted(actions) == ["contact.merge", "contact.merged_into"]
    # New events on the duplicate's identities now reach the survivor.
    result = ingest(hub, InboundEvent(channel="fake", kind="message", external_id="after",
                                      identities=[IdentityRef(kind="email", value="IVAN@home.example")]))
    assert result.contact.id == keep


def test_merge_then_undo_restores_the_exact_previous_state(hub, frozen_clock):
    with hub.session() as s, s.begin():
        keep, dupe = rich_pair(s, frozen_clock)
    with hub.session() as s:
        before = dump(s, keep, dupe)
    frozen_clock.advance(hours=1)
    with hub.session() as s, s.begin():
        merge_id = merge_contacts(s, survivor_id=keep, merged_id=dupe, actor=SYSTEM).id
    with hub.session() as s:
        assert dump(s, keep, dupe) != before
    # Life goes on after the merge: a new event, task and consent on the survivor, an edit of its name.
    frozen_clock.advance(hours=1)
    with hub.session() as s, s.begin():
        later_event = event(s, keep, "after-merge").id
        task = Task(contact_id=keep, title="after merge")
        s.add(task)
        s.flush()
        later_task = task.id
        update_contact(s, contact=s.get(Contact, keep), actor=SYSTEM, changes={"display_name": "Renamed"})
    frozen_clock.advance(hours=1)
    with hub.session() as s, s.begin():
        record = undo_merge(s, merge_id=merge_id, actor=SYSTEM)
        assert record.undone_at == frozen_clock.current
    with hub.session() as s:
        after = dump(s, keep, dupe)
        # Rows created after the merge stay with the survivor; everything else is as it was.
        assert s.get(TimelineEvent, later_event).contact_id == keep
        assert s.get(Task, later_task).contact_id == keep
    after["timeline_event"] = [r for r in after["timeline_event"] if r["id"] != later_event]
    after["task"] = [r for r in after["task"] if r["id"] != later_task]
    assert after == before
    with hub.session() as s:
        undo_entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "contact.merge.undo")).all()
        assert {e.contact_id for e in undo_entries} == {keep, dupe}
        assert next(e for e in undo_entries if e.contact_id == keep).changes["display_name"] == ["Renamed", "Иван Петров"]


def test_undo_twice_is_a_conflict(hub):
    with hub.session() as s, s.begin():
        a, b = person(s, "A").id, person(s, "B").id
        merge_id = merge_contacts(s, survivor_id=a, merged_id=b, actor=SYSTEM).id
        undo_merge(s, merge_id=merge_id, actor=SYSTEM)
    with hub.session() as s, s.begin():
        with pytest.raises(MergeConflict, match="already undone"):
            undo_merge(s, merge_id=merge_id, actor=SYSTEM)


def test_a_later_merge_must_be_undone_first(hub):
    with hub.session() as s, s.begin():
        a, b, c, d = (person(s, n).id for n in "ABCD")
        first = merge_contacts(s, survivor_id=a, merged_id=b, actor=SYSTEM).id
        second = merge_contacts(s, survivor_id=a, merged_id=c, actor=SYSTEM).id
        third = merge_contacts(s, survivor_id=d, merged_id=a, actor=SYSTEM).id  # the survivor merged on
    with hub.session() as s:
        with pytest.raises(MergeConflict, match=f"undo merge {third} first"):
            undo_merge(s, merge_id=first, actor=SYSTEM)
        s.rollback()
        assert s.get(MergeRecord, first).undone_at is None
    with hub.session() as s, s.begin():
        undo_merge(s, merge_id=third, actor=SYSTEM)
        with pytest.raises(MergeConflict, match=f"undo merge {second} first"):
            undo_merge(s, merge_id=first, actor=SYSTEM)
    with hub.session() as s, s.begin():
        undo_merge(s, merge_id=second, actor=SYSTEM)
        undo_merge(s, merge_id=first, actor=SYSTEM)
    with hub.session() as s:
        assert all(s.get(Contact, cid).merged_into is None for cid in (a, b, c, d))


def test_refused_merges_say_why_and_write_nothing(hub):
    with hub.session() as s, s.begin():
        a, b, c = (person(s, n).id for n in "ABC")
        merge_contacts(s, survivor_id=a, merged_id=b, actor=SYSTEM)
    with hub.session() as s:
        with pytest.raises(MergeRefused, match="into itself"):
            merge_contacts(s, survivor_id=a, merged_id=a, actor=SYSTEM)
        with pytest.raises(MergeConflict, match=f"already merged into contact {a}"):
            merge_contacts(s, survivor_id=b, merged_id=c, actor=SYSTEM)
        with pytest.raises(MergeConflict, match=f"use contact {a} instead"):
            merge_contacts(s, survivor_id=c, merged_id=b, actor=SYSTEM)
        with pytest.raises(ContactNotFound):
            merge_contacts(s, survivor_id=c, merged_id=9999, actor=SYSTEM)
        s.rollback()
        assert s.get(Contact, c).merged_into is None
        assert len(s.scalars(select(MergeRecord)).all()) == 1


def test_preview_shows_the_result_and_writes_nothing(hub, frozen_clock):
    with hub.session() as s, s.begin():
        keep, dupe = rich_pair(s, frozen_clock)
    with hub.session() as s:
        before = dump(s, keep, dupe)
        preview = preview_merge(s, survivor_id=keep, merged_id=dupe)
        s.rollback()
        assert dump(s, keep, dupe) == before
    assert preview.survivor.id == keep and preview.survivor.locale == "en"
    assert preview.survivor.tags == ["vip", "b2b", "newsletter"]
    assert preview.moves == {"identity": 2, "timeline_event": 3, "task": 1, "consent_record": 1, "delivery": 1}
    fields = {c["field"] for c in preview.conflicts}
    assert fields == {"display_name", "lifecycle_stage", "attributes.city"}


def test_merge_is_audited_with_the_principal(hub):
    with hub.session() as s, s.begin():
        who = user_principal(create_user(s, email="a@example.com", password="correct horse battery", role=Role.AGENT))
        a, b = person(s, "A").id, person(s, "B").id
        merge_id = merge_contacts(s, survivor_id=a, merged_id=b, actor=who).id
        undo_merge(s, merge_id=merge_id, actor=who)
    with hub.session() as s:
        rows = s.scalars(select(AuditEntry).where(
            or_(AuditEntry.action.like("contact.merge%"), AuditEntry.action == "contact.merged_into"))).all()
        assert len(rows) == 4 and {r.actor_id for r in rows} == {str(who.id)}
        assert s.get(MergeRecord, merge_id).created_by == f"user:{who.id}"


def test_rows_that_would_collide_stay_with_the_merged_contact(hub):
    """A table allowing one row per (contact, user) keeps the duplicate's row instead of failing the merge."""
    import sqlalchemy as sa

    from hub.merge import _move

    table = sa.Table("merge_probe", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("contact_id", sa.Integer, nullable=False), sa.Column("user_id", sa.Integer),
                     sa.UniqueConstraint("contact_id", "user_id"))
    table.create(hub.db.engine)
    try:
        with hub.session() as s, s.begin():
            s.execute(table.insert(), [{"id": 1, "contact_id": 10, "user_id": 1},   # survivor's
                                       {"id": 2, "contact_id": 20, "user_id": 1},   # collides: stays
                                       {"id": 3, "contact_id": 20, "user_id": 2},
                                       {"id": 4, "contact_id": 20, "user_id": None}])
            moved = s.execute(_move(table, table.c.contact_id, table.c.id, source=20, target=10)).scalars().all()
            rows = dict(s.execute(select(table.c.id, table.c.contact_id)).all())
        assert sorted(moved) == [3, 4]
        assert rows == {1: 10, 2: 20, 3: 10, 4: 10}
    finally:
        table.drop(hub.db.engine)


def test_crossing_merges_of_one_pair_give_one_merge_and_one_clear_refusal(hub):
    from concurrent.futures import ThreadPoolExecutor

    with hub.session() as s, s.begin():
        a, b = person(s, "A", ("email", "a@example.com")).id, person(s, "B", ("email", "b@example.com")).id

    def go(pair: tuple[int, int]) -> str:
        try:
            with hub.session() as s, s.begin():
                merge_contacts(s, survivor_id=pair[0], merged_id=pair[1], actor=SYSTEM)
            return "merged"
        except MergeConflict:
            return "refused"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(go, [(a, b), (b, a)] * 4))
    assert outcomes.count("merged") == 1
    with hub.session() as s:
        [record] = s.scalars(select(MergeRecord)).all()
        survivor = s.get(Contact, record.survivor_id)
        assert survivor.merged_into is None and s.get(Contact, record.merged_id).merged_into == survivor.id
        assert sorted(s.scalars(select(Identity.value).where(Identity.contact_id == survivor.id))) == [
            "a@example.com", "b@example.com"]
