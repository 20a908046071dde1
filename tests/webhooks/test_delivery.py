"""Delivery to a real receiver in its own process: signed, retried, Retry-After, disabled, rotated, replayed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub import clock
from hub.auth import SYSTEM
from hub.contacts import create_contact, update_contact
from hub.models import AuditEntry, Task
from webhooks import delivery, service
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def add_endpoint(hub, receiver, path, *, types=("contact.created",), mode="ok", **rule):
    with hub.session() as session, session.begin():
        endpoint, secret = service.create_endpoint(session, hub=hub, actor=SYSTEM, url=receiver.url(path),
                                                   event_types=list(types))
        endpoint_id = endpoint.id
    receiver.set(path, mode, secrets=[secret], **rule)
    return endpoint_id, secret


def new_contact(hub, name="Анна Петрова"):
    with hub.session() as session, session.begin():
        contact = create_contact(session, actor=SYSTEM, region="RU", display_name=name)
        return contact.id


def drain(hub):
    hub.extensions["webhooks"].dispatcher().drain(timeout=30)


def deliveries(hub, endpoint_id):
    with hub.session(read_only=True) as session:
        return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                                    .order_by(WebhookDelivery.id)))


def test_a_notice_reaches_the_receiver_signed_once(whub, fresh_receiver, frozen_clock):
    endpoint_id, _secret = add_endpoint(whub, fresh_receiver, "/ok")
    contact_id = new_contact(whub)
    drain(whub)
    [got] = fresh_receiver.received("/ok")
    assert got["verified"] == [0], "standardwebhooks verifies the signature with the endpoint's secret"
    assert got["body"]["type"] == "contact.created" and got["body"]["data"]["contact_id"] == contact_id
    assert got["body"]["subject"] == f"contact:{contact_id}" and got["id"] == got["body"]["id"]
    assert got["host"] == f"127.0.0.1:{fresh_receiver.port}"
    [row] = deliveries(whub, endpoint_id)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    with whub.session() as session:
        [attempt] = session.scalars(select(WebhookAttempt)).all()
    assert attempt.status_code == 200 and attempt.latency_ms is not None and attempt.response == '{"ok":true}'


def test_only_subscribed_types_and_active_endpoints_get_deliveries(whub, fresh_receiver, frozen_clock):
    created, _ = add_endpoint(whub, fresh_receiver, "/created")
    updated, _ = add_endpoint(whub, fresh_receiver, "/updated", types=("contact.updated",))
    everything, _ = add_endpoint(whub, fresh_receiver, "/all", types=("*",))
    paused, _ = add_endpoint(whub, fresh_receiver, "/paused", types=("*",))
    with whub.session() as session, session.begin():
        service.set_status(session, actor=SYSTEM, endpoint=session.get(WebhookEndpoint, paused), status="paused")
    contact_id = new_contact(whub)
    with whub.session() as session, session.begin():
        from hub.models import Contact

        update_contact(session, contact=session.get(Contact, contact_id), actor=SYSTEM, changes={"lifecycle_stage": "customer"})
    drain(whub)
    assert [e["body"]["type"] for e in fresh_receiver.received("/created")] == ["contact.created"]
    assert [e["body"]["type"] for e in fresh_receiver.received("/updated")] == ["contact.updated"]
    assert [e["body"]["data"].get("changes") for e in fresh_receiver.received("/updated")] == [
        {"lifecycle_stage": ["lead", "customer"]}]
    assert sorted(e["body"]["type"] for e in fresh_receiver.received("/all")) == ["contact.created", "contact.updated"]
    assert fresh_receiver.received("/paused") == [] and deliveries(whub, paused) == []


def test_a_rolled_back_cause_emits_nothing(whub, fresh_receiver, frozen_clock):
    endpoint_id, _ = add_endpoint(whub, fresh_receiver, "/rollback")
    with whub.session() as session:
        session.begin()
        create_contact(session, actor=SYSTEM, region="RU", display_name="Никто")
        assert len(deliveries(whub, endpoint_id)) == 0  # not visible outside the transaction
        session.rollback()
    drain(whub)
    assert deliveries(whub, endpoint_id) == [] and fresh_receiver.received("/rollback") == []
