"""REST /api/v1/segments: CRUD, previews, scopes, and bad input that changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from campaigns.segments.models import Segment
from hub.models import AuditEntry
from tests.campaigns.segments.conftest import person

RU = {"type": "and", "conditions": [{"type": "field", "field": "locale", "op": "eq", "value": "ru"}]}


def segments(hub) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(Segment))


def seed(hub) -> None:
    with hub.session() as s, s.begin():
        person(s, "Анна", locale="ru", tags=["vip"])
        person(s, "Ольга", locale="ru")
        person(s, "Bob", locale="en")


def test_create_read_update_delete(client, hub, api_key):
    headers = api_key("campaigns:write", "campaigns:read")
    created = client.post("/api/v1/segments", json={"name": "Russian speakers", "definition": RU}, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["definition"] == {"type": "and", "conditions": [{"type": "field", "field": "locale", "op": "eq",
                                                                  "value": "ru"}]}
    sid = body["id"]
    assert client.get(f"/api/v1/segments/{sid}", headers=headers).json()["name"] == "Russian speakers"
    assert [s["id"] for s in client.get("/api/v1/segments", headers=headers).json()["items"]] == [sid]
    vip = {"type": "or", "conditions": [{"type": "tag", "tag": "vip"}]}
    patched = client.patch(f"/api/v1/segments/{sid}", json={"definition": vip, "description": "VIPs"}, headers=headers)
    assert patched.status_code == 200 and patched.json()["definition"]["type"] == "or"
    assert patched.json()["description"] == "VIPs"
    assert client.delete(f"/api/v1/segments/{sid}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/segments/{sid}", headers=headers).status_code == 404
    with hub.session(read_only=True) as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.entity == "segment").order_by(AuditEntry.id)))
    assert actions == ["segment.create", "segment.update", "segment.delete"]


def test_preview_counts_and_samples_an_unsaved_definition(client, hub, api_key):
    seed(hub)
    answer = client.post("/api/v1/segments/preview", json={"definition": RU, "limit": 1},
                         headers=api_key("campaigns:read"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["count"] == 2 and len(body["sample"]) == 1 and body["sample"][0]["display_name"] == "Ольга"
    assert segments(hub) == 0


def test_saved_segment_preview(client, hub, api_key):
    seed(hub)
    headers = api_key("campaigns:write", "campaigns:read")
    sid = client.post("/api/v1/segments", json={"name": "vip", "definition": {
        "conditions": [{"type": "tag", "tag": "vip"}]}}, headers=headers).json()["id"]
    body = client.get(f"/api/v1/segments/{sid}/preview?limit=5", headers=headers).json()
    assert body["count"] == 1 and body["sample"][0]["display_name"] == "Анна"


def test_bad_definitions_are_422_naming_the_field_and_write_nothing(client, hub, api_key):
    headers = api_key("campaigns:write")
    bad = {"type": "and", "conditions": [{"type": "survey", "metric": "nps", "op": "lte", "value": 42}]}
    answer = client.post("/api/v1/segments", json={"name": "x", "definition": bad}, headers=headers)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert any("0 to 10" in e["message"] for e in answer.json()["errors"])
    unknown = client.post("/api/v1/segments", json={"name": "x", "definition": {"conditions": [{"type": "zodiac"}]}},
                          headers=headers)
    assert unknown.status_code == 422
    assert segments(hub) == 0


def test_duplicate_names_conflict_and_nulls_are_refused(client, hub, api_key):
    headers = api_key("campaigns:write", "campaigns:read")
    first = client.post("/api/v1/segments", json={"name": "Dup", "definition": RU}, headers=headers)
    again = client.post("/api/v1/segments", json={"name": " dup ", "definition": RU}, headers=headers)
    assert first.status_code == 201 and again.status_code == 409
    assert client.patch(f"/api/v1/segments/{first.json()['id']}", json={"name": None}, headers=headers).status_code == 422
    assert segments(hub) == 1


def test_scopes_are_enforced(client, hub, api_key):
    reader = api_key("campaigns:read")
    assert client.post("/api/v1/segments", json={"name": "x", "definition": RU}, headers=reader).status_code == 403
    assert client.get("/api/v1/segments", headers=api_key("contacts:read")).status_code == 403
    assert client.get("/api/v1/segments").status_code == 401
    assert segments(hub) == 0


def test_a_segment_or_template_a_live_campaign_uses_cannot_be_deleted(client, hub, api_key):
    from campaigns.models import Campaign, CampaignStep

    headers = api_key("campaigns:write", "campaigns:read")
    sid = client.post("/api/v1/segments", json={"name": "In use", "definition": RU}, headers=headers).json()["id"]
    tid = client.post("/api/v1/templates", json={"name": "T", "channel": "sms", "variants": {"ru": {"text": "x"}}},
                      headers=headers).json()["id"]
    with hub.session() as s, s.begin():
        campaign = Campaign(name="Weekly", channel="sms", segment_id=sid, status="scheduled")
        s.add(campaign)
        s.flush()
        s.add(CampaignStep(campaign_id=campaign.id, position=1, template_id=tid))
    answer = client.delete(f"/api/v1/segments/{sid}", headers=headers)
    assert answer.status_code == 409 and "Weekly" in answer.json()["detail"]
    assert client.delete(f"/api/v1/templates/{tid}", headers=headers).status_code == 409
    assert segments(hub) == 1
    with hub.session() as s, s.begin():
        s.get(Campaign, campaign.id).status = "cancelled"
    assert client.delete(f"/api/v1/segments/{sid}", headers=headers).status_code == 204
    assert client.delete(f"/api/v1/templates/{tid}", headers=headers).status_code == 204
