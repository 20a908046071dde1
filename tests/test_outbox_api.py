"""POST /api/v1/deliveries and friends: an agent or integration sends a message to a contact."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.models import AuditEntry, Delivery, TimelineEvent
from hub.worker import Worker
from tests.fakes.channel import FakeChannel
from tests.test_outbox import count, make_contact


def body(contact_id: int, **overrides: object) -> dict:
    payload = {"channel": "fake", "contact_id": contact_id, "address": "+79161234567",
               "content": {"text": "Ваш заказ готов", "subject": "Заказ"}, "idempotency_key": "reply-1"}
    payload.update(overrides)
    return payload


def test_post_queues_a_delivery_that_the_worker_sends(hub, client, api_key):
    contact = make_contact(hub)
    headers = api_key("deliveries:write", "timeline:read")
    response = client.post("/api/v1/deliveries", json=body(contact), headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["status"], created["channel"], created["contact_id"], created["attempts"]) == ("queued", "fake", contact, 0)
    assert created["content"] == {"text": "Ваш заказ готов", "subject": "Заказ"}
    with hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, created["event_id"])
        assert (event.direction, event.status, event.text) == ("out", "queued", "Ваш заказ готов")
        assert s.scalars(select(AuditEntry.action)).all() == ["delivery.create"]
    Worker(hub).tick()
    assert [m.delivery_id for m in FakeChannel.sent] == [created["id"]]
    fetched = client.get(f"/api/v1/deliveries/{created['id']}", headers=headers).json()
    assert (fetched["status"], fetched["provider_id"]) == ("sent", f"fake-{created['id']}-1")


def test_a_retried_request_returns_the_first_delivery_and_a_changed_one_conflicts(hub, client, api_key):
    contact = make_contact(hub)
    headers = api_key("deliveries:write")
    first = client.post("/api/v1/deliveries", json=body(contact), headers=headers)
    again = client.post("/api/v1/deliveries", json=body(contact), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    changed = client.post("/api/v1/deliveries", json=body(contact, content={"text": "other"}), headers=headers)
    assert changed.status_code == 409
    assert changed.headers["content-type"].startswith("application/problem+json")
    assert changed.json()["delivery_id"] == first.json()["id"]
    other_contact = make_contact(hub, "+79160000001")
    assert client.post("/api/v1/deliveries", json=body(other_contact), headers=headers).status_code == 409
    # Another key holder's identical key is another delivery, not a clash.
    other = client.post("/api/v1/deliveries", json=body(contact), headers=api_key("deliveries:write"))
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert count(hub, Delivery) == 2


def test_without_a_key_every_request_is_a_new_delivery(hub, client, api_key):
    contact = make_contact(hub)
    headers = api_key("deliveries:write")
    ids = {client.post("/api/v1/deliveries", json=body(contact, idempotency_key=None), headers=headers).json()["id"]
           for _ in range(2)}
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("overrides", "status", "needle"),
    [
        ({"channel": "nope"}, 422, "no channel named"),
        ({"channel": "note"}, 422, "cannot send"),
        ({"content": {"text": "x" * 1001}}, 422, "1000"),
        ({"content": {"text": "x", "html": "<b>x</b>"}}, 422, "HTML"),
        ({"content": {"subject": "no text"}}, 422, "text"),
        ({"content": {"text": "x", "colour": "red"}}, 422, "colour"),
        ({"contact_id": 999_999}, 422, "999999"),
        ({"address": ""}, 422, "address"),
        ({"send_after": "2026-01-01T10:00:00"}, 422, "time zone"),
        ({"priority": "high"}, 422, "priority"),
    ],
)
def test_bad_input_is_a_problem_and_writes_nothing(hub, client, api_key, overrides, status, needle):
    contact = make_contact(hub)
    payload = {**body(contact), **overrides}
    response = client.post("/api/v1/deliveries", json=payload, headers=api_key("deliveries:write"))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert needle in response.text
    assert count(hub, Delivery) == 0
    assert count(hub, TimelineEvent, TimelineEvent.direction == "out") == 0


def test_scopes_are_required(hub, client, api_key):
    contact = make_contact(hub)
    reader = api_key("timeline:read")
    assert client.post("/api/v1/deliveries", json=body(contact), headers=reader).status_code == 403
    assert client.post("/api/v1/deliveries", json=body(contact)).status_code == 401
    created = client.post("/api/v1/deliveries", json=body(contact), headers=api_key("deliveries:write")).json()
    assert client.get(f"/api/v1/deliveries/{created['id']}", headers=api_key("contacts:read")).status_code == 403
    assert client.get(f"/api/v1/deliveries/{created['id']}", headers=reader).status_code == 200
    assert client.get("/api/v1/deliveries/999999", headers=reader).status_code == 404


def test_a_queued_delivery_can_be_cancelled_once(hub, client, api_key):
    contact = make_contact(hub)
    headers = api_key("deliveries:write")
    created = client.post("/api/v1/deliveries", json=body(contact), headers=headers).json()
    cancelled = client.post(f"/api/v1/deliveries/{created['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/deliveries/{created['id']}/cancel", headers=headers)
    assert again.status_code == 409 and again.json()["delivery_status"] == "cancelled"
    assert Worker(hub).tick() == 0 and FakeChannel.sent == []
    assert client.post("/api/v1/deliveries/999999/cancel", headers=headers).status_code == 404
