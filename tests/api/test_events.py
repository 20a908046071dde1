"""POST /api/v1/events: business events land once on the right contact's timeline; bad ones write nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from hub.events import order_totals, source_name
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import AuditEntry, Contact, Identity, IdentityKind, TimelineEvent


def order(event_id: str = "evt-1", *, order_id: str = "123", amount: str = "1500.00", currency: str = "RUB",
          type: str = "order.completed", **contact: str) -> dict:
    return {
        "event_id": event_id,
        "type": type,
        "contact": contact or {"email": "Anna@Example.com", "name": "Анна Смирнова"},
        "order": {
            "order_id": order_id,
            "amount": amount,
            "currency": currency,
            "items": [{"sku": "TEA-1", "name": "Чай", "quantity": 2, "unit_price": "750.00"}],
        },
        "data": {"channel": "web"},
    }


def counts(hub) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in SQLModel.metadata.sorted_tables}


@pytest.fixture
def shop(api_key):  # type: ignore[no-untyped-def]
    return api_key("events:write")


def test_first_post_creates_the_event_and_replays_change_nothing(hub, client, shop):
    first = client.post("/api/v1/events", json=order(), headers=shop)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["created"] is True and body["type"] == "order.completed"
    assert body["external_id"] == "test-key:evt-1"  # the source defaults to the key's name
    before = counts(hub)
    for _ in range(3):
        again = client.post("/api/v1/events", json=order(), headers=shop)
        assert again.status_code == 200
        assert again.json() == {**body, "created": False}
    assert counts(hub) == before

    with hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, body["id"])
        contact = s.get(Contact, body["contact_id"])
        ident = s.scalars(select(Identity).where(Identity.contact_id == contact.id)).one()
        entries = list(s.scalars(select(AuditEntry)))
    assert (event.channel, event.kind, event.direction) == ("commerce", "order.completed", "in")
    assert event.subject == "Order 123 completed"
    assert event.data["order"]["amount"] == "1500.00" and event.data["order"]["currency"] == "RUB"
    assert event.data["order"]["items"][0] == {"sku": "TEA-1", "name": "Чай", "quantity": "2", "unit_price": "750.00"}
    assert event.data["data"] == {"channel": "web"} and event.data["source"] == "test-key"
    assert contact.display_name == "Анна Смирнова"
    assert (ident.kind, ident.value) == ("email", "anna@example.com")
    assert [(e.action, e.contact_id, e.actor_kind) for e in entries] == [
        ("business_event.recorded", contact.id, "api_key")
    ]
    assert entries[0].changes["contact_created"] is True


def test_finds_the_existing_contact_by_phone_in_another_notation(hub, client, shop):
    known = ingest(hub, InboundEvent(channel="fake", kind="message", external_id="SM1",
                                     identities=[IdentityRef(kind=IdentityKind.PHONE, value="+79161234567")]))
    response = client.post("/api/v1/events", json=order(phone="8 (916) 123-45-67"), headers=shop)
    assert response.status_code == 201
    assert response.json()["contact_id"] == known.contact.id


def test_occurred_at_and_an_explicit_source_are_kept(hub, client, shop):
    when = "2026-01-10T12:30:00+03:00"
    body = {**order(), "occurred_at": when, "source": "erp"}
    response = client.post("/api/v1/events", json=body, headers=shop)
    assert response.status_code == 201
    assert response.json()["external_id"] == "erp:evt-1"
    assert datetime.fromisoformat(response.json()["occurred_at"]) == datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)
    # The same event id from another system is another event.
    other = client.post("/api/v1/events", json={**body, "source": "shop"}, headers=shop)
    assert other.status_code == 201 and other.json()["id"] != response.json()["id"]


def test_customer_ids_are_namespaced_by_source(hub, client, shop):
    a = client.post("/api/v1/events", json={**order("e1", external_id="42"), "source": "shop"}, headers=shop)
    b = client.post("/api/v1/events", json={**order("e2", external_id="42"), "source": "erp"}, headers=shop)
    c = client.post("/api/v1/events", json={**order("e3", external_id="42"), "source": "shop"}, headers=shop)
    assert a.json()["contact_id"] != b.json()["contact_id"]
    assert a.json()["contact_id"] == c.json()["contact_id"]


def test_non_order_events_need_no_order(hub, client, shop):
    body = {"event_id": "s-1", "type": "subscription.started", "contact": {"email": "a@example.com"},
            "data": {"plan": "pro"}}
    response = client.post("/api/v1/events", json=body, headers=shop)
    assert response.status_code == 201
    with hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, response.json()["id"])
    assert event.subject == "Subscription started" and event.data["data"] == {"plan": "pro"}
    assert "order" not in event.data


def test_triggers_for_the_kind_run_once(hub, client, shop):
    fired = []
    hub.triggers.register("order.completed", lambda s, *, event, contact: fired.append((event.id, contact.id)))
    first = client.post("/api/v1/events", json=order(), headers=shop).json()
    client.post("/api/v1/events", json=order(), headers=shop)
    assert fired == [(first["id"], first["contact_id"])]


def test_reusing_an_event_id_for_another_type_is_a_conflict(hub, client, shop):
    assert client.post("/api/v1/events", json=order(), headers=shop).status_code == 201
    before = counts(hub)
    response = client.post("/api/v1/events", json=order(type="order.refunded"), headers=shop)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "evt-1" in response.json()["detail"]
    assert counts(hub) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["order"].update(amount=1500.1), "order.amount"),
        (lambda b: b["order"].update(amount="-1"), "order.amount"),
        (lambda b: b["order"].update(amount="12.345678"), "order.amount"),
        (lambda b: b["order"].update(currency="ZZZ"), "order.currency"),
        (lambda b: b["order"].update(currency="RUBLES"), "order.currency"),
        (lambda b: b["order"]["items"][0].update(quantity=0), "order.items.0.quantity"),
        (lambda b: b["order"]["items"][0].update(colour="red"), "order.items.0.colour"),
        (lambda b: b.update(type="Order Completed"), "type"),
        (lambda b: b.update(type="order"), "type"),
        (lambda b: b.update(event_id="x" * 201), "event_id"),
        (lambda b: b.update(event_id=""), "event_id"),
        (lambda b: b.update(occurred_at="2026-01-10T12:30:00"), "occurred_at"),
        (lambda b: b.update(source="My Shop!"), "source"),
        (lambda b: b.update(data={"blob": "x" * 70_000}), "data"),
        (lambda b: b.update(contact={"name": "No identity"}), "contact"),
        (lambda b: b.update(contact={"email": "not-an-email"}), "contact.email"),
        (lambda b: b.update(contact={"email": "a@example.com", "phone": "12"}), "contact.phone"),
        (lambda b: b.update(contact={"phone": "not a phone"}), "contact.phone"),
        (lambda b: b.pop("order"), ""),
        (lambda b: b.update(type="subscription.started"), ""),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(hub, client, shop, change, field):
    body = order()
    change(body)
    before = counts(hub)
    response = client.post("/api/v1/events", json=body, headers=shop)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422 and problem["detail"]
    assert field in [e["field"] for e in problem["errors"]], problem
    assert counts(hub) == before


def test_needs_the_events_write_scope(hub, client, api_key):
    response = client.post("/api/v1/events", json=order(), headers=api_key("contacts:write", "timeline:write"))
    assert response.status_code == 403
    assert response.json()["scope"] == "events:write"


def test_order_totals_add_completed_orders_and_subtract_refunds(hub, client, shop, frozen_clock):
    def post(event_id: str, **kw: str) -> dict:
        response = client.post("/api/v1/events", json=order(event_id, **kw), headers=shop)
        assert response.status_code in (200, 201), response.text
        return response.json()

    first = post("e1", order_id="A", amount="1500.00")
    frozen_clock.advance(days=1)
    post("e2", order_id="B", amount="99.99", currency="EUR")
    post("e2", order_id="B", amount="99.99", currency="EUR")  # a retry
    frozen_clock.advance(days=1)
    post("e3", order_id="A", amount="1500.00")  # the same order reported again
    last = frozen_clock.advance(hours=1)
    post("e4", order_id="C", amount="0.01")
    frozen_clock.advance(days=3)
    post("r1", order_id="A", amount="500.50", type="order.refunded")
    with hub.session(read_only=True) as s:
        totals = order_totals(s, contact_id=first["contact_id"])
    assert totals.count == 3
    assert totals.totals == {"RUB": Decimal("999.51"), "EUR": Decimal("99.99")}
    assert totals.last_order_at == last


def test_order_totals_of_a_contact_without_orders(hub):
    result = ingest(hub, InboundEvent(channel="fake", kind="message", external_id="SM1",
                                      identities=[IdentityRef(kind=IdentityKind.PHONE, value="+79161234567")]))
    with hub.session(read_only=True) as s:
        totals = order_totals(s, contact_id=result.contact.id)
    assert (totals.count, totals.totals, totals.last_order_at) == (0, {}, None)


def test_source_names_from_key_names():
    assert source_name("Shop (production)") == "shop-production"
    assert source_name("1C:ERP") == "1c-erp"
    assert source_name("Магазин") == "api"
    assert len(source_name("x" * 500)) == 64


def test_replays_after_time_passes_keep_the_first_time(hub, client, shop, frozen_clock):
    first = client.post("/api/v1/events", json=order(), headers=shop).json()
    frozen_clock.advance(days=2)
    replay = client.post("/api/v1/events", json=order(), headers=shop).json()
    assert replay["occurred_at"] == first["occurred_at"]
    assert datetime.fromisoformat(first["occurred_at"]) == frozen_clock.current - timedelta(days=2)
