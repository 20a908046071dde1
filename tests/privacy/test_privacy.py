"""Data-subject requests on both backends: export finds every row, erase removes it, twice changes nothing."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlmodel import SQLModel

from channels.email.inbound import receive
from channels.email.models import EmailAttachment, EmailSuppression
from channels.email.suppression import suppress as email_suppress
from hub import privacy
from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact, record_consent
from hub.merge import merge_contacts
from hub.models import (
    AuditEntry,
    ConsentRecord,
    ConsentStatus,
    Contact,
    Delivery,
    DeliveryStatus,
    Identity,
    MergeRecord,
    Purpose,
    Task,
    TimelineEvent,
)
from hub.outbox import enqueue
from hub.suppression import is_suppressed
from hub.tasks import create_task
from hub.worker import Worker
from tests.channels.email.conftest import configure
from tests.fakes.channel import FakeChannel

SECRET_BYTES = b"%PDF-1.4 anna's passport scan " + b"7" * 200
SHARED_BYTES = b"the company price list, sent to many people"
PERSONAL = ("Anna Smirnova", "anna@example.org", "anna.work@example.org", "+79161234567", "passport",
            "Moscow, Tverskaya 1", "VIP-42")


def _mail(sender: str, message_id: str, attachments: list[tuple[str, bytes]]) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Anna Smirnova <{sender}>"
    msg["To"] = "support@hub.example.com"
    msg["Subject"] = "My passport for the contract"
    msg["Message-ID"] = message_id
    msg.set_content("Hello, my address is Moscow, Tverskaya 1. Regards, Anna")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes()


@pytest.fixture
def probe(hub):  # type: ignore[no-untyped-def]
    """A table another package might add, unknown to hub/privacy.py: discovery must find it."""
    table = sa.Table(
        "zz_privacy_probe", SQLModel.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.ForeignKey("contact.id")),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("extra", sa.JSON, nullable=False),
    )
    table.create(hub.db.engine)
    yield table
    table.drop(hub.db.engine)
    SQLModel.metadata.remove(table)


def build_person(hub, probe):  # type: ignore[no-untyped-def]
    """Anna in two contacts (one merged into the other) with data in every kind of table; Boris beside her."""
    channel = configure(hub)
    region = hub.settings.default_region
    with hub.session() as s, s.begin():
        anna = create_contact(s, actor=SYSTEM, region=region, display_name="Anna Smirnova",
                              identities=[IdentityIn(kind="email", value="anna@example.org"),
                                          IdentityIn(kind="phone", value="+7 916 123-45-67")],
                              attributes={"address": "Moscow, Tverskaya 1"}, tags=["VIP-42"])
        work = create_contact(s, actor=SYSTEM, region=region, display_name="A. Smirnova (work)",
                              identities=[IdentityIn(kind="email", value="anna.work@example.org")])
        boris = create_contact(s, actor=SYSTEM, region=region, display_name="Boris",
                               identities=[IdentityIn(kind="email", value="boris@example.org")])
        record_consent(s, contact=anna, actor=SYSTEM, channel="email", status=ConsentStatus.GRANTED, source="form")
        create_task(s, actor=SYSTEM, title="Call Anna Smirnova about the passport", contact_id=work.id)
        ids = {"anna": anna.id, "work": work.id, "boris": boris.id}
    for sender, mid, files in (
        ("anna.work@example.org", "<p1@example.org>", [("passport.pdf", SECRET_BYTES), ("prices.pdf", SHARED_BYTES)]),
        ("boris@example.org", "<b1@example.org>", [("prices.pdf", SHARED_BYTES)]),
    ):
        with hub.session() as s, s.begin():
            receive(s, channel=channel, raw=_mail(sender, mid, files), origin={"test": True})
    with hub.session() as s, s.begin():
        enqueue(s, channel="fake", address="+79161234567", content={"text": "Anna, your passport is ready"},
                idempotency_key="anna-pending", contact_id=ids["work"], purpose=Purpose.TRANSACTIONAL)
        s.execute(probe.insert().values(contact_id=ids["work"], answer="I live at Moscow, Tverskaya 1",
                                        status="answered", score=9, token="tok-anna", extra={"passport": "4510 987654"}))
        s.execute(probe.insert().values(contact_id=ids["boris"], answer="fine", status="answered", score=7,
                                        token="tok-boris", extra={}))
        merge_contacts(s, survivor_id=ids["anna"], merged_id=ids["work"], actor=SYSTEM)
        # The email channel's own list keeps the address in clear (bounces): found by address.
        email_suppress(s, address="Anna.Work@example.org", reason="hard_bounce", source="dsn:test")
        email_suppress(s, address="boris@example.org", reason="hard_bounce", source="dsn:test")
    return ids, channel


def dump(hub, ids: list[int]) -> str:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return json.dumps(privacy.export_person(s, hub=hub, contact_id=ids[0]), ensure_ascii=False, default=str)


def rows_of(hub, model, **where):  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        stmt = select(model)
        for key, value in where.items():
            column = getattr(model, key)
            stmt = stmt.where(column.in_(value) if isinstance(value, list | set | tuple) else column == value)
        return list(s.scalars(stmt))


def test_export_holds_every_table_that_has_rows_of_the_person(hub, probe):
    ids, channel = build_person(hub, probe)
    with hub.session(read_only=True) as s:
        # Asked about the merged duplicate, the export covers the survivor too (and the reverse).
        by_merged = privacy.export_person(s, hub=hub, contact_id=ids["work"], include_files=True)
        by_survivor = privacy.export_person(s, hub=hub, contact_id=ids["anna"])
        # Independently: every table with a contact column that has a row of hers.
        expected = set()
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                if table.name != "contact" and (column.name == "contact_id" or any(
                        fk.column.table.name == "contact" for fk in column.foreign_keys)):
                    if s.scalar(select(func.count()).select_from(table).where(column.in_([ids["anna"], ids["work"]]))):
                        expected.add(table.name)
    assert by_merged["contact_ids"] == by_survivor["contact_ids"] == sorted([ids["anna"], ids["work"]])
    assert by_merged["contact_id"] == ids["anna"]
    assert {"identity", "consent_record", "timeline_event", "delivery", "task", "audit_entry", "merge_record",
            "zz_privacy_probe"} <= expected
    assert expected <= set(by_merged["tables"]), expected - set(by_merged["tables"])
    # Rows reached through another table: the attachments of her timeline events.
    assert [r["address"] for r in by_merged["tables"]["email_suppression"]] == ["anna.work@example.org"]
    names = {a["filename"] for a in by_merged["tables"]["email_attachment"]}
    assert names == {"passport.pdf", "prices.pdf"}
    files = {f["filename"]: f for f in by_merged["files"]}
    assert files["passport.pdf"]["stored"] and files["passport.pdf"]["content_base64"]
    text = json.dumps(by_merged, ensure_ascii=False)
    for value in ("anna@example.org", "anna.work@example.org", "+79161234567", "Tverskaya", "VIP-42"):
        assert value in text, value
    # Boris is not in it.
    assert "boris@example.org" not in text and "tok-boris" not in text
    assert all(r["contact_id"] != ids["boris"] for r in by_merged["tables"]["zz_privacy_probe"])


def test_erase_removes_the_person_keeps_counts_and_is_idempotent(hub, probe):
    ids, channel = build_person(hub, probe)
    person = [ids["anna"], ids["work"]]
    with hub.session(read_only=True) as s:
        events_before = s.scalar(select(func.count()).select_from(TimelineEvent).where(TimelineEvent.contact_id.in_(person)))
        secret_sha = s.scalar(select(EmailAttachment.sha256).where(EmailAttachment.filename == "passport.pdf"))
        shared_sha = s.scalar(select(EmailAttachment.sha256).where(EmailAttachment.filename == "prices.pdf"))
    assert channel.files.attachments.exists(secret_sha) and channel.files.attachments.exists(shared_sha)

    with hub.session() as s, s.begin():
        first = privacy.erase_person(s, hub=hub, contact_id=ids["work"], actor=SYSTEM)
    assert not first.already_erased and first.changed
    assert first.identities_suppressed == 3 and first.deliveries_cancelled == 1 and first.files_deleted == 1

    # Nothing personal is left anywhere in the export, and nothing in her rows.
    text = dump(hub, person)
    for value in PERSONAL + ("tok-anna", "4510 987654"):  # a passport number no timestamp can hold
        assert value not in text, value
    assert rows_of(hub, Identity, contact_id=person) == []
    assert rows_of(hub, ConsentRecord, contact_id=person) == []
    assert rows_of(hub, MergeRecord) == []
    events = rows_of(hub, TimelineEvent, contact_id=person)
    assert len(events) == events_before + 1  # the content goes, the rows stay: counts still add up
    assert all(e.subject is None and e.text is None and e.html is None for e in events)
    assert all(e.data == {} for e in events)
    assert [e.kind for e in events if e.channel == privacy.ERASED_CHANNEL] == [privacy.ERASED_KIND]
    contacts = rows_of(hub, Contact, id=person)
    assert {c.display_name for c in contacts} == {f"Erased contact #{i}" for i in person}
    assert all(c.attributes == {} and c.tags == [] and c.lifecycle_stage == "erased" for c in contacts)
    (pending,) = rows_of(hub, Delivery, idempotency_key="anna-pending")
    assert pending.status == DeliveryStatus.CANCELLED and pending.address == "" and pending.content == {}
    (task,) = rows_of(hub, Task, contact_id=person)
    assert "Anna" not in (task.title or "") and task.status == "open"
    # The unknown table's row: free text and JSON cleared, codes and numbers kept, the unique token replaced.
    with hub.session(read_only=True) as s:
        mine = s.execute(select(probe).where(probe.c.contact_id.in_(person))).one()
        theirs = s.execute(select(probe).where(probe.c.contact_id == ids["boris"])).one()
    assert (mine.answer, mine.status, mine.score, mine.extra) == (None, "answered", 9, {})
    assert mine.token.startswith("erased:") and theirs.token == "tok-boris" and theirs.answer == "fine"
    # Her file is gone; the one Boris also has stays, and so do his rows.
    assert not channel.files.attachments.exists(secret_sha)
    assert channel.files.attachments.exists(shared_sha)
    assert [a.filename for a in rows_of(hub, EmailAttachment)] == ["prices.pdf"]
    assert rows_of(hub, Identity, contact_id=ids["boris"])[0].value == "boris@example.org"
    assert [r.address for r in rows_of(hub, EmailSuppression)] == ["boris@example.org"]
    # Suppressed by hash only: the list holds no address.
    with hub.session(read_only=True) as s:
        region = hub.settings.default_region
        assert is_suppressed(s, kind="email", value="ANNA@example.org", region=region)
        assert is_suppressed(s, kind="phone", value="8 916 123 45 67", region=region)
        assert not is_suppressed(s, kind="email", value="boris@example.org", region=region)
        # The text columns; not the time stamps or the hex hashes, whose digits may happen to spell "916".
        listed = s.execute(sa.text("SELECT kind, reason, source FROM suppression_entry")).all()
        hashes = s.scalars(sa.text("SELECT value_hash FROM suppression_entry")).all()
    assert "anna" not in repr(listed) and "916" not in repr(listed)
    assert all(len(h) == 64 and set(h) <= set("0123456789abcdef") for h in hashes)
    # The audit entry exists and holds ids and counts, nothing personal; older entries lost their diffs.
    audits = rows_of(hub, AuditEntry, action=privacy.ERASED_KIND)
    assert len(audits) == 1 and audits[0].entity_id == str(ids["anna"]) and audits[0].actor_kind == "system"
    assert audits[0].changes["identities_suppressed"] == 3
    entries = json.dumps([a.changes for a in rows_of(hub, AuditEntry, contact_id=person)], ensure_ascii=False)
    for value in PERSONAL:
        assert value not in entries, value

    snapshot = dump(hub, person)
    with hub.session() as s, s.begin():
        second = privacy.erase_person(s, hub=hub, contact_id=ids["anna"], actor=SYSTEM)
    assert second.already_erased and not second.changed and second.files_deleted == 0
    assert len(rows_of(hub, AuditEntry, action=privacy.ERASED_KIND)) == 1
    assert json.loads(dump(hub, person))["tables"] == json.loads(snapshot)["tables"]


def test_a_suppressed_address_gets_no_marketing_at_send_time(hub, probe):
    ids, _ = build_person(hub, probe)
    with hub.session() as s, s.begin():
        privacy.erase_person(s, hub=hub, contact_id=ids["anna"], actor=SYSTEM)
    # She comes back through an import as a new contact; a campaign queues marketing to her address.
    with hub.session() as s, s.begin():
        again = create_contact(s, actor=SYSTEM, region=hub.settings.default_region,
                               identities=[IdentityIn(kind="email", value="Anna@Example.org")])
        for key, purpose in (("mkt", Purpose.MARKETING), ("receipt", Purpose.TRANSACTIONAL)):
            enqueue(s, channel="fake", address="anna@example.org", content={"text": "Spring sale!"},
                    idempotency_key=key, contact_id=again.id, purpose=purpose,
                    rules={"quiet_hours": "off", "frequency_cap": "off"})
    Worker(hub, "privacy-test").tick()
    (marketing,) = rows_of(hub, Delivery, idempotency_key="mkt")
    (receipt,) = rows_of(hub, Delivery, idempotency_key="receipt")
    assert [m.idempotency_key for m in FakeChannel.sent] == ["receipt"]
    assert marketing.status not in {DeliveryStatus.SENT, DeliveryStatus.QUEUED, DeliveryStatus.SENDING}
    assert "do-not-contact" in (marketing.last_error or "")
    assert receipt.status == DeliveryStatus.SENT


def test_erasing_an_unknown_contact_raises_and_changes_nothing(hub):
    with hub.session() as s, s.begin(), pytest.raises(privacy.ContactNotFound):
        privacy.erase_person(s, hub=hub, contact_id=987654, actor=SYSTEM)
    assert rows_of(hub, AuditEntry) == []
