"""The REST API under /api/v1/webhooks: admin only, problem details for bad input that changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from hub.models import AuditEntry
from webhooks.models import WebhookDelivery, WebhookEndpoint


def count(hub, model):
    with hub.session(read_only=True) as session:
        return len(session.scalars(select(model)).all())


@pytest.mark.any_store
def test_the_event_catalogue_lists_every_type_with_schema_and_example(wclient, wkey):
    answer = wclient.get("/api/v1/webhooks/event-types", headers=wkey())
    assert answer.status_code == 200
    types = {t["name"]: t for t in answer.json()}
    for name in ("contact.created", "contact.updated", "contact.merged", "contact.erased", "message.received",
                 "message.sent", "message.delivered", "message.failed", "call.logged", "form.submitted",
                 "meeting.booked", "meeting.rescheduled", "meeting.cancelled", "survey.answered",
                 "campaign.started", "campaign.finished", "contact.unsubscribed", "consent.changed",
                 "key_account.cooling", "webhook.test"):
        assert name in types, name
        assert types[name]["schema"]["type"] == "object" and types[name]["example"] and types[name]["description"]
    assert "/api/v1/webhooks/event-types" in wclient.get("/api/openapi.json").json()["paths"]


def test_add_an_endpoint_the_secret_is_shown_once(wclient, wkey, whub, fresh_receiver):
    headers = wkey()
    answer = wclient.post("/api/v1/webhooks", headers=headers, json={
        "url": fresh_receiver.url("/api"), "event_types": ["contact.created", "message.received"]})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["secret"].startswith("whsec_") and body["secret_hint"].endswith(body["secret"][-4:])
    Webhook(body["secret"])  # a secret the standard's library accepts
    again = wclient.get(f"/api/v1/webhooks/{body['id']}", headers=headers).json()
    assert "secret" not in again and again["event_types"] == ["contact.created", "message.received"]
    listed = wclient.get("/api/v1/webhooks", headers=headers).json()
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    with whub.session(read_only=True) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook.create")).one()
    assert body["secret"] not in str(entry.changes), "secrets never reach the audit log"


@pytest.mark.any_store
@pytest.mark.parametrize("payload", [
    {"url": "https://0x7f000002/x", "event_types": ["*"]},
    {"url": "https://169.254.169.254/", "event_types": ["*"]},
    {"url": "https://[::ffff:127.0.0.1]/", "event_types": ["*"]},
    {"url": "ftp://8.8.8.8/", "event_types": ["*"]},
    {"url": "https://8.8.8.8/", "event_types": ["contact.exploded"]},
    {"url": "https://8.8.8.8/", "event_types": []},
    {"url": "https://8.8.8.8/", "event_types": ["*"], "secret": "mine"},
    {"url": "x" * 2001, "event_types": ["*"]},
    {"event_types": ["*"]},
])
def test_bad_input_is_a_4xx_and_changes_nothing(wclient, wkey, whub, payload):
    answer = wclient.post("/api/v1/webhooks", headers=wkey(), json=payload)
    assert 400 <= answer.status_code < 500 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"]
    assert count(whub, WebhookEndpoint) == 0


@pytest.mark.any_store
def test_scopes_are_checked(wclient, wkey):
    assert wclient.get("/api/v1/webhooks", headers=wkey("contacts:read")).status_code == 403
    assert wclient.get("/api/v1/webhooks").status_code == 401
    assert wclient.post("/api/v1/webhooks", headers=wkey("contacts:write"),
                        json={"url": "https://8.8.8.8/", "event_types": ["*"]}).status_code == 403


def test_pause_rotate_test_replay_and_delete(wclient, wkey, whub, fresh_receiver, frozen_clock):
    headers = wkey()
    created = wclient.post("/api/v1/webhooks", headers=headers,
                           json={"url": fresh_receiver.url("/life"), "event_types": ["*"]}).json()
    eid = created["id"]
    fresh_receiver.set("/life", "ok", secrets=[created["secret"]])
    assert wclient.patch(f"/api/v1/webhooks/{eid}", headers=headers, json={"status": "paused"}).json()["status"] == "paused"
    bad = wclient.patch(f"/api/v1/webhooks/{eid}", headers=headers, json={"url": "https://10.0.0.1/"})
    assert bad.status_code == 422 and wclient.get(f"/api/v1/webhooks/{eid}", headers=headers).json()["url"] == fresh_receiver.url("/life")
    assert wclient.patch(f"/api/v1/webhooks/{eid}", headers=headers, json={"status": "disabled"}).status_code == 422
    assert wclient.patch(f"/api/v1/webhooks/{eid}", headers=headers, json={"status": "active"}).json()["status"] == "active"

    rotated = wclient.post(f"/api/v1/webhooks/{eid}/rotate-secret", headers=headers, json={"overlap_hours": 1}).json()
    assert rotated["secret"] != created["secret"] and rotated["previous_secret_until"]
    fresh_receiver.set("/life", "ok", secrets=[rotated["secret"]])
    queued = wclient.post(f"/api/v1/webhooks/{eid}/test", headers=headers)
    assert queued.status_code == 202
    whub.extensions["webhooks"].dispatcher().drain(timeout=30)
    [got] = fresh_receiver.received("/life")
    assert got["body"]["type"] == "webhook.test" and got["verified"] == [0]

    page = wclient.get(f"/api/v1/webhooks/{eid}/deliveries", headers=headers).json()
    [item] = page["items"]
    assert item["status"] == "delivered" and item["last_status_code"] == 200 and item["message_id"] == got["id"]
    detail = wclient.get(f"/api/v1/webhooks/{eid}/deliveries/{item['id']}", headers=headers).json()
    assert detail["payload"]["type"] == "webhook.test" and detail["log"][0]["response"] == '{"ok":true}'
    assert wclient.post(f"/api/v1/webhooks/{eid}/deliveries/{item['id']}/replay", headers=headers).status_code == 202
    whub.extensions["webhooks"].dispatcher().drain(timeout=30)
    assert wclient.post(f"/api/v1/webhooks/{eid}/deliveries/999999/replay", headers=headers).status_code == 404
    assert wclient.post(f"/api/v1/webhooks/{eid}/replay", headers=headers, json={"since": "2020-01-01T00:00:00"}).status_code == 422
    assert wclient.post(f"/api/v1/webhooks/{eid}/replay", headers=headers, json={"since": "yesterday"}).status_code == 422
    replayed = wclient.post(f"/api/v1/webhooks/{eid}/replay", headers=headers, json={"since": "2020-01-01T00:00:00+00:00"})
    assert replayed.status_code == 202 and replayed.json()["count"] == 1
    whub.extensions["webhooks"].dispatcher().drain(timeout=30)
    assert [e["id"] for e in fresh_receiver.received("/life")] == [got["id"]] * 3
    assert wclient.get(f"/api/v1/webhooks/{eid}/deliveries?cursor=garbage", headers=headers).status_code == 400

    assert wclient.delete(f"/api/v1/webhooks/{eid}", headers=headers).status_code == 204
    assert wclient.get(f"/api/v1/webhooks/{eid}", headers=headers).status_code == 404
    assert count(whub, WebhookDelivery) == 0
    assert wclient.delete(f"/api/v1/webhooks/{eid}", headers=headers).status_code == 404
