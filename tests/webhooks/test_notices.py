"""The event catalogue (hub.notices): validation, plug-in types, and the core's causes emitting in
their own transaction."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hub.channel import PermanentSendError, StatusUpdate
from hub import notices, outbox
from hub.auth import SYSTEM
from hub.contacts import create_contact, record_consent
from hub.ingest import InboundEvent, IdentityRef, ingest
from hub.merge import merge_contacts
from hub.models import ConsentStatus, Direction, IdentityKind
from hub.privacy import erase_person
from hub.worker import Worker
from tests.fakes.channel import FakeChannel


@pytest.fixture
def heard(hub):
    """Every notice the hub emits, as (type, data), in order."""
    got: list[tuple[str, dict]] = []
    hub.notices.listen(lambda session, notice: got.append((notice.type, notice.data)))
    return got


def types(heard):
    return [t for t, _ in heard]


def test_emit_validates_the_data_and_refuses_unknown_types(hub, heard):
    with hub.session() as session, session.begin():
        notice = notices.emit(session, "contact.created", subject="contact:1", data={"contact_id": 1, "display_name": "А"})
        assert notice.id.startswith("msg_") and notice.payload()["type"] == "contact.created"
        with pytest.raises(ValueError, match="invalid data"):
            notices.emit(session, "contact.created", subject="contact:1", data={"contact_id": "one"})
        with pytest.raises(ValueError, match="invalid data"):
            notices.emit(session, "contact.created", subject="contact:1", data={"contact_id": 1, "surprise": True})
        with pytest.raises(notices.UnknownNotice):
            notices.emit(session, "contact.exploded", subject="contact:1", data={})
    assert types(heard) == ["contact.created"]


def test_plug_ins_add_types_and_duplicates_are_refused(hub):
    assert {"campaign.started", "campaign.finished", "key_account.cooling", "webhook.test"} <= set(hub.notices.names())
    catalogue = notices.build_catalogue([])
    first = catalogue.get("contact.created")
    with pytest.raises(ValueError, match="twice"):
        catalogue.add(notices.NoticeType("contact.created", 1, first.schema, "again", {}))
    catalogue.add(notices.NoticeType("contact.created", 2, first.schema, "v2", {}))
    assert catalogue.get("contact.created").version == 2 and catalogue.get("contact.created", 1) is first
    for notice_type in hub.notices.latest():  # every example validates against its own schema
        notice_type.schema.model_validate(dict(notice_type.example))


def test_contact_causes_emit_in_their_transaction(hub, heard, frozen_clock):
    with hub.session() as session, session.begin():
        anna = create_contact(session, actor=SYSTEM, region="RU", display_name="Анна")
        dup = create_contact(session, actor=SYSTEM, region="RU", display_name="Анна П.")
        record_consent(session, contact=anna, actor=SYSTEM, channel="email", status=ConsentStatus.WITHDRAWN,
                       source="unsubscribe link")
    with hub.session() as session, session.begin():
        merge_contacts(session, survivor_id=anna.id, merged_id=dup.id, actor=SYSTEM)
    with hub.session() as session, session.begin():
        erase_person(session, hub=hub, contact_id=anna.id, actor=SYSTEM)
    assert types(heard) == ["contact.created", "contact.created", "consent.changed", "contact.merged", "contact.erased"]
    assert heard[2][1]["status"] == "withdrawn" and heard[3][1] == {"survivor_id": anna.id, "merged_id": dup.id,
                                                                    "merge_id": heard[3][1]["merge_id"]}
    assert sorted(heard[4][1]["contact_ids"]) == sorted([anna.id, dup.id])


def test_timeline_events_become_notices_once(hub, heard):
    event = InboundEvent(channel="fake", kind="message", direction=Direction.IN, external_id="m-1",
                         identities=[IdentityRef(kind=IdentityKind.PHONE, value="+79161234567")], text="Привет")
    ingest(hub, event)
    ingest(hub, event)  # a replayed webhook: no second notice
    ingest(hub, InboundEvent(channel="fake", kind="call", direction=Direction.OUT, external_id="c-1",
                             identities=[IdentityRef(kind=IdentityKind.PHONE, value="+79161234567")],
                             data={"duration_seconds": 60}))
    assert types(heard) == ["contact.created", "message.received", "call.logged"]
    assert heard[1][1]["text"] == "Привет" and heard[1][1]["channel"] == "fake"
    assert heard[2][1]["direction"] == "out" and heard[2][1]["data"] == {"duration_seconds": 60}


def test_delivery_status_changes_emit_message_notices(hub, heard, frozen_clock):
    with hub.session() as session, session.begin():
        contact = create_contact(session, actor=SYSTEM, region="RU", display_name="Борис")
        outbox.enqueue(session, channel="fake", address="+79160000001", content={"text": "a"}, idempotency_key="k1",
                       contact_id=contact.id)
        outbox.enqueue(session, channel="fake", address="+79160000002", content={"text": "b"}, idempotency_key="k2",
                       contact_id=contact.id)
    FakeChannel.failures["+79160000002"] = [PermanentSendError("no such number")]
    Worker(hub, "w").tick()
    with hub.session() as session, session.begin():
        provider_id = FakeChannel.sent[0].delivery_id
        outbox.apply_status(session, channel="fake", update=StatusUpdate(
            provider_id=f"fake-{provider_id}-1", status="delivered", occurred_at=datetime.now(timezone.utc)))
    sent = [d for t, d in heard if t.startswith("message.")]
    assert [(d["status"], d["channel"]) for d in sent] == [("sent", "fake"), ("dead", "fake"), ("delivered", "fake")]
    assert [t for t, _ in heard if t.startswith("message.")] == ["message.sent", "message.failed", "message.delivered"]
    assert sent[1]["error"] == "no such number"

