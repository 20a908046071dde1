"""The contact service: edits keep search working and land in the audit log; consent keeps its history;
search finds people by part of a name (any script, any case), an email or a phone in any notation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.auth import Principal, create_user, user_principal
from hub.contacts import (
    ContactConflict,
    IdentityIn,
    InvalidField,
    add_identity,
    add_tags,
    consent_history,
    consent_status,
    contact_card,
    create_contact,
    current_consent,
    record_consent,
    remove_tag,
    search_contacts,
    set_attributes,
    set_owner,
    update_contact,
)
from hub.ingest import IdentityRef, InboundEvent, post_event
from hub.models import AuditEntry, ConsentStatus, Contact, Identity, Purpose, Role, Task
from hub.timeline import InvalidCursor

REGION = "RU"


def make(session, name="", *idents: tuple[str, str], actor: Principal | None = None, **fields) -> Contact:
    from hub.auth import SYSTEM

    return create_contact(session, actor=actor or SYSTEM, region=REGION, display_name=name,
                          identities=[IdentityIn(kind=k, value=v) for k, v in idents], **fields)


def agent(session, email="agent@example.com") -> Principal:
    return user_principal(create_user(session, email=email, password="correct horse battery", role=Role.AGENT))


def audit_rows(session, contact_id):
    return list(session.scalars(select(AuditEntry).where(AuditEntry.contact_id == contact_id).order_by(AuditEntry.id)))


def test_create_normalizes_identities_and_audits_the_actor(hub):
    with hub.session() as s, s.begin():
        who = agent(s)
        contact = make(s, "Иван Петров", ("email", "Ivan@Example.COM"), ("phone", "8 (916) 123-45-67"), actor=who,
                       tags=["vip"], locale="RU", time_zone="Europe/Moscow")
        cid = contact.id
    with hub.session() as s:
        contact = s.get(Contact, cid)
        assert contact.search_name == "иван петров" and contact.locale == "ru" and contact.tags == ["vip"]
        idents = s.scalars(select(Identity).where(Identity.contact_id == cid).order_by(Identity.id)).all()
        assert [(i.kind, i.value, i.is_primary) for i in idents] == [
            ("email", "ivan@example.com", True), ("phone", "+79161234567", False)]
        [entry] = audit_rows(s, cid)
        assert (entry.action, entry.actor_kind, entry.actor_id) == ("contact.create", "user", str(who.id))
        assert entry.changes["identities"] == [None, ["email:ivan@example.com", "phone:+79161234567"]]


def test_name_falls_back_to_the_first_identity_and_nameless_contacts_are_refused(hub):
    with hub.session() as s, s.begin():
        assert make(s, "", ("phone", "+7 916 000 00 01")).display_name == "+79160000001"
    with hub.session() as s, s.begin():
        with pytest.raises(InvalidField, match="display_name"):
            make(s, "   ")


@pytest.mark.parametrize("fields, field", [
    ({"locale": "de"}, "locale"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"tags": ["ok", "a,b"]}, "tags"),
    ({"tags": "vip"}, "tags"),
    ({"attributes": {"": 1}}, "attributes"),
    ({"attributes": {"x": float("nan")}}, "attributes"),
    ({"owner_id": 999}, "owner_id"),
    ({"lifecycle_stage": ""}, "lifecycle_stage"),
])
def test_invalid_fields_are_named(hub, fields, field):
    with hub.session() as s:
        with pytest.raises(InvalidField) as info:
            make(s, "Someone", **fields)
        assert info.value.field == field


def test_invalid_identity_names_its_entry(hub):
    with hub.session() as s:
        with pytest.raises(InvalidField) as info:
            make(s, "X", ("email", "ok@example.com"), ("phone", "12"))
        assert info.value.field == "identities.1.value"


def test_an_identity_owned_by_someone_else_is_a_conflict_and_nothing_is_written(hub):
    with hub.session() as s, s.begin():
        first = make(s, "First", ("email", "same@example.com")).id
    with hub.session() as s:
        with pytest.raises(ContactConflict, match="belongs to contact") as info:
            with s.begin():
                make(s, "Second", ("phone", "+79160000002"), ("email", "SAME@example.com"))
        assert info.value.contact_id == first
        s.rollback()
        assert s.scalar(select(func.count()).select_from(Contact)) == 1
        assert s.scalar(select(func.count()).select_from(Identity)) == 1
    with hub.session() as s, s.begin():
        other = make(s, "Other")
        with pytest.raises(ContactConflict):
            add_identity(s, contact=other, actor=agent(s), identity=IdentityIn(kind="email", value="same@example.com"),
                         region=REGION)


def test_edits_keep_search_name_and_are_audited_as_diffs(hub):
    with hub.session() as s, s.begin():
        who = agent(s)
        contact = make(s, "Old Name")
        diff = update_contact(s, contact=contact, actor=who, changes={"display_name": "Анна  СЕРГЕЕВА", "locale": "en"})
        assert diff == {"display_name": ["Old Name", "Анна СЕРГЕЕВА"], "locale": [None, "en"]}
        assert contact.search_name == "анна сергеева"
        assert update_contact(s, contact=contact, actor=who, changes={"locale": "en"}) == {}
        add_tags(s, contact=contact, actor=who, tags=["vip", "b2b", "vip"])
        remove_tag(s, contact=contact, actor=who, tag="b2b")
        set_attributes(s, contact=contact, actor=who, attributes={"city": "Москва", "n": 3})
        set_attributes(s, contact=contact, actor=who, attributes={"plan": "gold"}, replace=False)
        owner = create_user(s, email="owner@example.com", password="correct horse battery", role=Role.AGENT)
        set_owner(s, contact=contact, actor=who, owner_id=owner.id)
        cid = contact.id
        with pytest.raises(InvalidField, match="not a contact field"):
            update_contact(s, contact=contact, actor=who, changes={"merged_into": 5})
    with hub.session() as s:
        contact = s.get(Contact, cid)
        assert contact.tags == ["vip"]
        assert contact.attributes == {"city": "Москва", "n": 3, "plan": "gold"}
        entries = audit_rows(s, cid)
        assert [e.action for e in entries] == ["contact.create", "contact.update", "contact.tags", "contact.tags",
                                               "contact.attributes", "contact.attributes", "contact.owner"]
        assert all(e.actor_id == str(who.id) for e in entries[1:])
        assert entries[3].changes == {"tags": [["vip", "b2b"], ["vip"]]}


def test_consent_history_is_appended_and_the_newest_is_in_force(hub, frozen_clock):
    with hub.session() as s, s.begin():
        who = agent(s)
        contact = make(s, "Consenting")
        record_consent(s, contact=contact, actor=who, channel="email", status=ConsentStatus.GRANTED, source="form")
        frozen_clock.advance(days=1)
        record_consent(s, contact=contact, actor=who, channel="sms", status=ConsentStatus.GRANTED)
        frozen_clock.advance(days=1)
        record_consent(s, contact=contact, actor=who, channel="email", status=ConsentStatus.WITHDRAWN,
                       source="unsubscribe link")
        record_consent(s, contact=contact, actor=who, channel="email", purpose=Purpose.TRANSACTIONAL,
                       status=ConsentStatus.GRANTED, occurred_at=frozen_clock.current - timedelta(days=30))
        with pytest.raises(InvalidField, match="occurred_at"):
            record_consent(s, contact=contact, actor=who, channel="email", status=ConsentStatus.GRANTED,
                           occurred_at=frozen_clock.current + timedelta(days=1))
        with pytest.raises(InvalidField, match="channel"):
            record_consent(s, contact=contact, actor=who, channel="E MAIL", status=ConsentStatus.GRANTED)
        cid = contact.id
    with hub.session() as s:
        current = {(r.channel, r.purpose): r.status for r in current_consent(s, contact_id=cid)}
        assert current == {("email", "marketing"): "withdrawn", ("sms", "marketing"): "granted",
                           ("email", "transactional"): "granted"}
        assert consent_status(s, contact_id=cid, channel="email", purpose=Purpose.MARKETING) == "withdrawn"
        assert consent_status(s, contact_id=cid, channel="whatsapp", purpose=Purpose.MARKETING) is None
        first = consent_history(s, contact_id=cid, limit=2)
        second = consent_history(s, contact_id=cid, limit=2, cursor=first.next_cursor)
        history = [(r.channel, r.status) for r in [*first.items, *second.items]]
        assert history == [("email", "withdrawn"), ("sms", "granted"), ("email", "granted"), ("email", "granted")]
        assert second.next_cursor is None
        assert [r.source for r in second.items] == ["form", ""]
        assert sum(e.action == "contact.consent" for e in audit_rows(s, cid)) == 4


@pytest.fixture
def people(hub):
    with hub.session() as s, s.begin():
        ids = {
            "ivan": make(s, "Иван Петров", ("phone", "+79161234567"), ("email", "ivan.petrov@mail.ru")).id,
            "irina": make(s, "Ирина Иванова", ("email", "irina@example.com")).id,
            "john": make(s, "John SMITH", ("email", "John.Smith@Example.com"), ("phone", "+44 20 7946 0958")).id,
            "anna": make(s, "Anna Schmidt", ("phone", "+7 495 111-22-33")).id,
        }
    return ids


def found(hub, query: str) -> set[int]:
    with hub.session(read_only=True) as s:
        return {c.id for c in search_contacts(s, query=query, region=REGION, limit=50).items}


def test_search_by_part_of_a_name_in_any_case_and_script(hub, people):
    assert found(hub, "ИВАН") == {people["ivan"], people["irina"]}  # Иван, Иванова
    assert found(hub, "петров") == {people["ivan"]}
    assert found(hub, "smi") == {people["john"]}
    assert found(hub, "SCHMIDT") == {people["anna"]}
    assert found(hub, "nobody like this") == set()


def test_search_by_part_of_an_email(hub, people):
    assert found(hub, "EXAMPLE.C") == {people["john"], people["irina"]}
    assert found(hub, "petrov@") == {people["ivan"]}


@pytest.mark.parametrize("query", ["8 (916) 123-45-67", "+7 916 123 45 67", "79161234567", "916 123", "123-45-67"])
def test_search_by_a_phone_in_any_notation(hub, people, query):
    assert found(hub, query) == {people["ivan"]}


def test_search_by_a_foreign_phone_and_a_short_fragment(hub, people):
    assert found(hub, "+44 20 7946") == {people["john"]}
    assert found(hub, "20 7946 09") == {people["john"]}
    assert found(hub, "495") == {people["anna"]}


def test_search_skips_merged_contacts(hub, people):
    from hub.auth import SYSTEM
    from hub.merge import merge_contacts

    with hub.session() as s, s.begin():
        merge_contacts(s, survivor_id=people["ivan"], merged_id=people["irina"], actor=SYSTEM)
    assert found(hub, "Ирина") == set()
    assert found(hub, "irina@") == {people["ivan"]}  # her email moved to the survivor


def test_search_pages_by_keyset_in_name_order(hub):
    names = ["Борис", "анна", "Вера", "Глеб", "Дарья", "алексей", "Алла"]
    with hub.session() as s, s.begin():
        for name in names:
            make(s, name)
    seen, cursor, pages = [], None, 0
    with hub.session(read_only=True) as s:
        while True:
            page = search_contacts(s, query="", region=REGION, limit=3, cursor=cursor)
            seen.extend(c.display_name for c in page.items)
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == 3
        assert seen == sorted(names, key=str.casefold)
        with pytest.raises(InvalidCursor):
            search_contacts(s, query="", region=REGION, cursor="not-a-cursor")


def test_card_shows_owner_consent_tasks_and_latest_event(hub, frozen_clock):
    with hub.session() as s, s.begin():
        who = agent(s)
        contact = make(s, "Card Person", ("phone", "+79160000009"), owner_id=who.id)
        record_consent(s, contact=contact, actor=who, channel="sms", status=ConsentStatus.GRANTED)
        s.add(Task(contact_id=contact.id, title="call back"))
        s.add(Task(contact_id=contact.id, title="done already", status="done"))
        cid = contact.id
        for i, minutes in enumerate((5, 10)):
            frozen_clock.advance(minutes=minutes)
            post_event(s, event=InboundEvent(channel="fake", kind="message", external_id=f"c{i}", text=f"hi {i}",
                                             subject=f"s{i}", identities=[IdentityRef(kind="phone", value="+79160000009")]))
    with hub.session() as s:
        card = contact_card(s, contact_id=cid)
    assert card.owner.email == "agent@example.com"
    assert [(c.channel, c.status) for c in card.consent] == [("sms", "granted")]
    assert card.open_tasks == 1
    assert card.last_event.subject == "s1"
    assert [i.value for i in card.identities] == ["+79160000009"]
