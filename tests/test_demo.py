"""Demo data: a realistic spread of people and history, loaded through the one write path, idempotently."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import phonenumbers
import pytest
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from hub import clock
from hub.auth import authenticate
from hub.demo import DEMO_PASSWORD, load_demo, load_demo_if_empty
from hub.identities import normalize
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import ConsentRecord, Contact, Identity, IdentityKind, Task, TimelineEvent, User
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.conftest import _wipe, make_settings, test_registry


def row_counts(hub) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in SQLModel.metadata.sorted_tables}


def _load_once(database, folder, **sizes):  # type: ignore[no-untyped-def]
    """load_demo(**sizes) into a clean store at the time frozen_clock starts at; its summary, its
    progress calls and every row it wrote, and the store wiped again."""
    runtime = Hub(make_settings(str(database.settings.database_url), folder),
                  registry=test_registry(), triggers=TriggerRegistry(), db=database)
    clock.set_clock(clock.FrozenClock())
    try:
        calls: list[tuple[int, int]] = []
        summary = load_demo(runtime, progress=lambda done, total: calls.append((done, total)), **sizes)
        with database.engine.connect() as conn:
            rows = {t: [dict(r) for r in conn.execute(t.select()).mappings()] for t in SQLModel.metadata.sorted_tables}
    finally:
        clock.set_clock(None)
        _wipe(database)
        runtime.broker.stop()
    return summary, calls, rows


def _write_back(hub, rows) -> None:  # type: ignore[no-untyped-def]
    """The rows of a load written into this test's clean store, as the load left them."""
    with hub.db.engine.begin() as conn:
        for table, table_rows in rows.items():  # parents first
            if table_rows:
                conn.execute(table.insert(), table_rows)
        if conn.dialect.name == "postgresql":  # the next id past the written ones, as after a load
            for table, table_rows in rows.items():
                if table_rows and "id" in table.c and table.c.id.autoincrement is not False:
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                      f"(SELECT max(id) FROM {table.name}))"))


# A load is 1.5-5 s of CPU (1,500 events through ingest; the packages' demos bring 160 analytics
# customers of their own). The tests that read a load's rows share one load per store for this
# module, written back into each test's clean store (~0.1 s); the tests of loading itself load.
@pytest.fixture(scope="module")
def loaded_demo(database, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The 20-contact set with a 400-event timeline, without the packages' demos."""
    return _load_once(database, tmp_path_factory.mktemp("demo"), contacts=20, long_history=400, packages=False)


@pytest.fixture(scope="module")
def loaded_with_packages(database, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Eight contacts and every installed package's demo."""
    return _load_once(database, tmp_path_factory.mktemp("demo"), contacts=8, long_history=0)


@pytest.fixture
def demo(hub, frozen_clock, loaded_demo):  # type: ignore[no-untyped-def]
    summary, calls, rows = loaded_demo
    _write_back(hub, rows)
    return summary, list(calls)


def test_demo_is_a_realistic_mix(hub, frozen_clock, demo):
    summary, calls = demo
    now = frozen_clock()
    assert calls[-1] == (20, 20) and [c[0] for c in calls] == list(range(1, 21))
    with hub.session(read_only=True) as s:
        contacts = list(s.scalars(select(Contact)))
        events = list(s.scalars(select(TimelineEvent)))
        identities = list(s.scalars(select(Identity)))
        consents = list(s.scalars(select(ConsentRecord)))
        tasks = list(s.scalars(select(Task)))
    assert len(contacts) == summary.contacts == summary.contacts_created == 20
    assert len(events) == summary.events_created and summary.events_existing == 0

    # Both languages, with matching time zones, and Cyrillic names for the Russian speakers.
    by_locale = Counter(c.locale for c in contacts)
    assert by_locale["ru"] >= 3 and by_locale["en"] >= 3
    for c in contacts:
        assert c.time_zone in ({"Europe/Moscow", "Asia/Yekaterinburg"} if c.locale == "ru" else {"Europe/London", "America/New_York"})
        assert any("а" <= ch <= "я" for ch in c.display_name.lower()) == (c.locale == "ru")
        assert c.attributes["city"] and c.lifecycle_stage in {"subscriber", "lead", "opportunity", "customer", "evangelist"}
    assert {"b2b", "newsletter"} <= {t for c in contacts for t in c.tags}

    # Several channels on every timeline; 10–60 events each, one long one for endless scrolling.
    per_contact: dict[int, list[TimelineEvent]] = defaultdict(list)
    for e in events:
        per_contact[e.contact_id].append(e)
    sizes = sorted(len(v) for v in per_contact.values())
    assert sizes[-1] == 400 and all(10 <= n <= 60 for n in sizes[:-1])
    assert all(len({e.channel for e in v}) >= 3 for v in per_contact.values())
    assert {e.channel for e in events} == {"email", "sms", "phone", "note", "commerce", "forms", "meetings"}
    assert all(e.external_id.startswith("demo:") for e in events)
    assert all(now - timedelta(days=9 * 31) <= e.occurred_at <= now for e in events)
    span = {cid: max(e.occurred_at for e in v) - min(e.occurred_at for e in v) for cid, v in per_contact.items()}
    assert min(span.values()) > timedelta(days=60)

    # Outbound messages carry a delivery status; inbound ones do not.
    for e in events:
        if e.channel in {"email", "sms"}:
            assert (e.status in {"sent", "delivered", "read", "failed"}) == (e.direction == "out")
    calls_ = [e for e in events if e.channel == "phone"]
    assert calls_ and all(e.kind == "call" and e.data["direction"] == e.direction for e in calls_)
    assert {e.data["outcome"] for e in calls_} == {"answered", "missed", "voicemail"}
    assert all(e.thread_key for e in events if e.channel == "email")

    # Orders as POST /api/v1/events stores them, with amounts that add up.
    orders = [e for e in events if e.kind == "order.completed"]
    assert len(orders) == summary.orders_created > 0
    for e in orders:
        order = e.data["order"]
        total = sum(Decimal(i["unit_price"]) * Decimal(i["quantity"]) for i in order["items"])
        assert Decimal(order["amount"]) == total and order["currency"] in {"RUB", "USD", "GBP"}
    currencies = {(c.locale, e.data["order"]["currency"]) for e in orders for c in contacts if c.id == e.contact_id}
    assert all((loc == "ru") == (cur == "RUB") for loc, cur in currencies)

    # Every email and phone is normalized, valid and belongs to one contact.
    assert len({(i.kind, i.value) for i in identities}) == len(identities)
    for i in identities:
        assert normalize(i.kind, i.value, region="US") == i.value
        if i.kind == IdentityKind.PHONE:
            assert phonenumbers.is_valid_number(phonenumbers.parse(i.value))
        else:
            assert i.value.rsplit("@", 1)[1] in {"example.com", "example.org", "example.net"}
    assert {i.contact_id for i in identities} == {c.id for c in contacts}

    assert {(r.channel, r.status) for r in consents} >= {("email", "granted"), ("email", "withdrawn")}
    assert all(r.source and r.purpose == "marketing" for r in consents)
    assert tasks and len(tasks) == summary.tasks_created


def _plain(value):  # type: ignore[no-untyped-def]
    """A column value as both stores give it back alike (times as naive UTC)."""
    if isinstance(value, datetime):
        return (value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value).isoformat()
    return str(value) if isinstance(value, Decimal) else value


def _contents(rows) -> dict[str, list]:  # type: ignore[no-untyped-def]
    """Every row of a load with store-assigned ids replaced by what they point at (a contact by its
    identities, a user by email, an event by channel and external id): comparable across stores and runs."""
    by_name = {table.name: table_rows for table, table_rows in rows.items()}
    users = {r["id"]: r["email"] for r in by_name["user_account"]}
    idents = defaultdict(list)
    for r in by_name["identity"]:
        idents[r["contact_id"]].append(r["value"])
    contacts = {r["id"]: "|".join(sorted(idents[r["id"]])) or r["display_name"] for r in by_name["contact"]}
    events = {r["id"]: f"{r['channel']}:{r['external_id']}" for r in by_name["timeline_event"]}
    refs = {"contact_id": contacts, "owner_id": users, "assignee_id": users, "actor_user_id": users,
            "source_event_id": events, "id": {}, "password_hash": {}}
    contents = {}
    for name, table_rows in by_name.items():
        if not table_rows:
            continue
        plain = [{k: refs[k].get(v) if k in refs else _plain(v) for k, v in r.items()} for r in table_rows]
        if name == "contact":
            for row, r in zip(plain, table_rows):
                row["id"] = contacts[r["id"]]
        contents[name] = sorted(json.dumps(row, sort_keys=True, ensure_ascii=False) for row in plain)
    return contents


# What the 20-contact set (400-event timeline, no packages) writes at FrozenClock's start, as the
# loader wrote it before its events went in batches (session 16): row counts per table and a digest
# of every row's contents. A change to the demo's data changes these on purpose; a faster loader must not.
LOADED_COUNTS = {"user_account": 3, "contact": 20, "consent_record": 24, "identity": 34, "timeline_event": 1134,
                 "task": 4}
LOADED_DIGEST = "ee5ea29f78fcf2b753fc00a98f65a5e19d257eddafa23a2629ef6216e369966e"


def test_the_set_is_the_same_rows_as_ever(loaded_demo):
    summary, _, rows = loaded_demo
    contents = _contents(rows)
    digest = hashlib.sha256(json.dumps(contents, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    counts = {name: len(table_rows) for name, table_rows in contents.items()}
    assert counts == LOADED_COUNTS
    assert digest == LOADED_DIGEST
    orders = sum(r["kind"] == "order.completed" for table, table_rows in rows.items() if table.name == "timeline_event"
                 for r in table_rows)
    assert (summary.contacts_created, summary.events_created, summary.events_existing, summary.orders_created,
            summary.consents_created, summary.tasks_created) == (20, 1134, 0, orders, 24, 4)


def _digest(table_rows: list[str]) -> str:
    return hashlib.sha256("\n".join(table_rows).encode()).hexdigest()


# The same for the 8-contact set with every package's demo: row counts, and the timeline's contents
# (the other packages' rows carry random tokens).
PACKAGED_COUNTS = {
    "analytics_channel_month": 171, "analytics_cohort": 199, "analytics_month": 24, "analytics_response_month": 32,
    "analytics_rfm_score": 134, "analytics_run": 2, "audit_entry": 290, "message_template": 1, "segment": 1,
    "user_account": 5, "account": 3, "campaign": 1, "form": 1, "inbox_agent": 3, "inbox_canned": 7, "inbox_team": 2,
    "meeting_availability": 10, "meeting_host_schedule": 1, "meeting_type": 1, "survey": 2, "account_temperature": 16,
    "campaign_step": 1, "contact": 194, "inbox_team_member": 3, "consent_record": 11, "identity": 50,
    "inbox_conversation": 23, "timeline_event": 1342, "inbox_conversation_event": 39, "survey_invitation": 79,
    "task": 8, "survey_response": 75,
}
PACKAGED_TIMELINE_DIGEST = "50443c3c7b30716895b7946d5b783eb695232dcb9ffad4616d2816d6dc974223"


def test_the_packaged_set_is_the_same_rows_as_ever(loaded_with_packages):
    _, _, rows = loaded_with_packages
    counts = {table.name: len(table_rows) for table, table_rows in rows.items() if table_rows}
    assert counts == PACKAGED_COUNTS
    assert _digest(_contents(rows)["timeline_event"]) == PACKAGED_TIMELINE_DIGEST


def test_loading_again_changes_nothing(hub, frozen_clock, demo):
    before = row_counts(hub)
    frozen_clock.advance(days=3)  # a later reload generates different times but the same ids
    again = load_demo(hub, contacts=20, long_history=400, packages=False)
    assert row_counts(hub) == before
    assert (again.contacts_created, again.events_created, again.orders_created, again.consents_created,
            again.tasks_created, again.users_created) == (0, 0, 0, 0, 0, ())
    assert again.events_existing == before["timeline_event"]


def test_the_packages_demos_come_once_and_name_their_links(hub, frozen_clock, loaded_with_packages):
    first, _, rows = loaded_with_packages
    _write_back(hub, rows)
    names = {line.split(":", 1)[0] for line in first.extras}
    assert {"forms", "meetings", "campaigns", "surveys"} <= names
    assert any("http" in line for line in first.extras if line.startswith(("forms", "meetings")))
    before = row_counts(hub)
    load_demo(hub, contacts=8, long_history=0)
    assert row_counts(hub) == before  # every package's demo is idempotent


def test_a_smaller_set_is_the_start_of_a_larger_one(hub, frozen_clock):
    # Without the packages' demos: keyaccounts brings contacts of its own (its three accounts' people).
    load_demo(hub, contacts=4, long_history=0, packages=False)
    bigger = load_demo(hub, contacts=7, long_history=0, packages=False)
    assert bigger.contacts_created == 3
    assert row_counts(hub)["contact"] == 7


def test_demo_users_sign_in_with_the_printed_password(hub, frozen_clock, demo):
    summary, _ = demo
    assert summary.password == DEMO_PASSWORD
    with hub.session() as s:
        roles = {email: authenticate(s, email=email, password=DEMO_PASSWORD).role for email, _ in summary.logins}
        assert authenticate(s, email="agent@example.com", password="wrong-password") is None
        agent = s.scalars(select(User).where(User.email == "agent@example.com")).one()
        overdue = s.scalar(select(func.count()).select_from(Task).where(Task.due_at < frozen_clock(), Task.status == "open"))
        notes_by_agent = s.scalar(select(func.count()).select_from(TimelineEvent).where(
            TimelineEvent.channel == "note", TimelineEvent.actor_user_id == agent.id))
    assert roles == {"admin@example.com": "admin", "agent@example.com": "agent", "marketer@example.com": "marketer"}
    assert overdue >= 1 and notes_by_agent >= 20


def test_history_fires_no_triggers(hub, frozen_clock):
    fired: list[str] = []
    hub.triggers.register("*", lambda session, *, event, contact: fired.append(event.kind))
    load_demo(hub, contacts=3, long_history=0, packages=False)
    assert fired == []
    ingest(hub, InboundEvent(channel="fake", kind="message", external_id="x1",
                             identities=[IdentityRef(kind=IdentityKind.PHONE, value="+79161234567")]))
    assert fired == ["message"]  # the registry itself still works for real events


def test_load_if_empty_leaves_a_used_store_alone(hub, frozen_clock):
    ingest(hub, InboundEvent(channel="fake", kind="message", external_id="x1",
                             identities=[IdentityRef(kind=IdentityKind.EMAIL, value="real@example.com")]))
    before = row_counts(hub)
    assert load_demo_if_empty(hub) is None
    assert row_counts(hub) == before


def test_load_if_empty_fills_an_empty_store(hub, frozen_clock):
    # Without the packages' demos (test_the_packages_demos_come_once_and_name_their_links loads them):
    # what is asked here is that an empty store gets the set.
    summary = load_demo_if_empty(hub, contacts=3, long_history=0, packages=False)
    assert summary is not None and summary.contacts_created == 3


@pytest.mark.parametrize("kwargs", [{"contacts": 0}, {"contacts": 5001}, {"contacts": 3, "long_history": -1}])
def test_bad_sizes_are_refused_before_writing(hub, kwargs):
    with pytest.raises(ValueError):
        load_demo(hub, **kwargs)
    assert not any(row_counts(hub).values())


def test_cli_loads_and_prints_the_logins(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from hub.cli import app
    from hub.settings import get_settings

    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUB_EMBEDDED_WORKER", "false")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        unmigrated = runner.invoke(app, ["demo", "load", "--contacts", "2"])
        assert unmigrated.exit_code != 0
        assert runner.invoke(app, ["migrate"]).exit_code == 0
        result = runner.invoke(app, ["demo", "load", "--contacts", "3", "--long-history", "0"])
        assert result.exit_code == 0, result.output
        assert "agent@example.com" in result.output and DEMO_PASSWORD in result.output
        assert runner.invoke(app, ["demo", "load", "--contacts", "0"]).exit_code != 0
    finally:
        get_settings.cache_clear()


def test_orders_read_back_like_orders_from_the_events_api(hub, frozen_clock, loaded_with_packages):
    events_api = pytest.importorskip("hub.events")
    _write_back(hub, loaded_with_packages[2])
    with hub.session(read_only=True) as s:
        orders = list(s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "order.completed")))
        assert orders
        for e in orders:
            assert events_api.Order.model_validate(e.data["order"]).model_dump(mode="json") == e.data["order"]
        per_contact = Counter(e.contact_id for e in orders)
        for contact_id, count in per_contact.items():
            assert events_api.order_totals(s, contact_id=contact_id).count == count
