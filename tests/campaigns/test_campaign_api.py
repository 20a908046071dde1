"""The campaigns REST API: create, schedule, pause, resume, cancel, duplicate, results — and the
bad cases (4xx problem details, nothing changed)."""

from __future__ import annotations

from sqlalchemy import func, select

from campaigns.models import Campaign
from tests.campaigns.helpers import add_contacts, email_set_up, make_segment, make_template, tick


def body(segment: int, template: int, **extra):  # type: ignore[no-untyped-def]
    return {"name": "Weekly news", "channel": "email", "segment_id": segment,
            "steps": [{"template_id": template}], **extra}


def campaigns_in_store(hub) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(Campaign)) or 0


def test_a_marketer_creates_schedules_pauses_resumes_and_reads_results(hub, client, api_key):
    email_set_up(hub)
    add_contacts(hub, 5)
    headers = api_key("campaigns:read", "campaigns:write")
    segment, template = make_segment(hub), make_template(hub)
    created = client.post("/api/v1/campaigns", json=body(segment, template, schedule_kind="cron", cron="0 10 * * 1",
                                                         time_zone="Europe/Moscow"), headers=headers)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["status"] == "draft" and campaign["steps"][0]["template_id"] == template
    cid = campaign["id"]
    scheduled = client.post(f"/api/v1/campaigns/{cid}/schedule", headers=headers).json()["campaign"]
    assert scheduled["status"] == "scheduled" and scheduled["next_run_at"]
    assert client.post(f"/api/v1/campaigns/{cid}/run-now", headers=headers).status_code == 200
    tick(hub)
    progress = client.get(f"/api/v1/campaigns/{cid}/progress", headers=headers).json()
    assert progress["targeted"] == 5 and progress["pending"] == 5
    assert progress["waiting"] == {"queued": 5} and progress["skipped"] == {}  # why they wait, by reason
    paused = client.post(f"/api/v1/campaigns/{cid}/pause", headers=headers).json()
    assert paused["campaign"]["status"] == "paused" and paused["affected_deliveries"] == 5
    again = client.post(f"/api/v1/campaigns/{cid}/pause", headers=headers)
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    resumed = client.post(f"/api/v1/campaigns/{cid}/resume", headers=headers).json()
    assert resumed["campaign"]["status"] == "scheduled" and resumed["affected_deliveries"] == 5
    results = client.get(f"/api/v1/campaigns/{cid}/results", headers=headers).json()
    assert results["targeted"] == 5 and results["steps"][0]["step"] == 1
    runs = client.get(f"/api/v1/campaigns/{cid}/runs", headers=headers).json()
    assert len(runs) == 1 and runs[0]["targeted"] == 5
    copy = client.post(f"/api/v1/campaigns/{cid}/duplicate", headers=headers)
    assert copy.status_code == 201 and copy.json()["status"] == "draft" and copy.json()["cron"] == "0 10 * * 1"
    listed = client.get("/api/v1/campaigns?status=draft", headers=headers).json()
    assert [c["id"] for c in listed] == [copy.json()["id"]]
    cancelled = client.post(f"/api/v1/campaigns/{cid}/cancel", headers=headers).json()
    assert cancelled["campaign"]["status"] == "cancelled" and cancelled["affected_deliveries"] == 5
    edit = client.put(f"/api/v1/campaigns/{cid}", json=body(segment, template), headers=headers)
    assert edit.status_code == 409


def test_bad_input_is_a_problem_and_writes_nothing(hub, client, api_key):
    headers = api_key("campaigns:read", "campaigns:write")
    segment, template = make_segment(hub), make_template(hub)
    cases = [
        (body(segment, 424242), 422, "steps.0.template_id"),
        (body(424242, template), 422, "segment_id"),
        (body(segment, template, schedule_kind="cron", cron="61 * * * *"), 422, "cron"),
        (body(segment, template, time_zone="Nowhere/City"), 422, "time_zone"),
        (body(segment, template, quiet_hours_start="25:00", quiet_hours_end="09:00"), 422, "quiet_hours_start"),
        (body(segment, template, steps=[]), 422, "steps"),
        (body(segment, template, send_at="2026-05-01T10:00:00", schedule_kind="at"), 422, "send_at"),
    ]
    for payload, status, field in cases:
        answer = client.post("/api/v1/campaigns", json=payload, headers=headers)
        assert answer.status_code == status, (field, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert field in answer.text, (field, answer.text)
    assert campaigns_in_store(hub) == 0
    assert client.get("/api/v1/campaigns/999", headers=headers).status_code == 404
    assert client.post("/api/v1/campaigns/999/pause", headers=headers).status_code == 404
    reader = api_key("campaigns:read")
    assert client.post("/api/v1/campaigns", json=body(segment, template), headers=reader).status_code == 403
    assert client.get("/api/v1/campaigns").status_code == 401
    assert campaigns_in_store(hub) == 0


def test_a_send_time_in_the_past_is_refused_on_save_and_on_schedule(hub, client, api_key, frozen_clock):
    from datetime import datetime, timezone

    email_set_up(hub)
    headers = api_key("campaigns:read", "campaigns:write")
    segment, template = make_segment(hub), make_template(hub)
    frozen_clock.current = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)
    past = client.post("/api/v1/campaigns", json=body(segment, template, schedule_kind="at",
                                                      send_at="2020-01-01T10:00:00+03:00",
                                                      time_zone="Europe/Moscow"), headers=headers)
    assert past.status_code == 422, past.text
    assert "send_at" in past.json()["detail"] and "2020-01-01 10:00" in past.json()["detail"]
    assert campaigns_in_store(hub) == 0
    # Saved for tomorrow, scheduled only once that time has passed: refused, and nothing runs.
    made = client.post("/api/v1/campaigns", json=body(segment, template, schedule_kind="at",
                                                      send_at="2026-05-05T10:00:00+00:00"), headers=headers)
    assert made.status_code == 201, made.text
    frozen_clock.current = datetime(2026, 5, 6, 12, 0, tzinfo=timezone.utc)
    late = client.post(f"/api/v1/campaigns/{made.json()['id']}/schedule", headers=headers)
    assert late.status_code == 422 and "already passed" in late.json()["detail"]
    with hub.session(read_only=True) as s:
        assert s.get(Campaign, made.json()["id"]).status == "draft"


def test_a_campaign_on_a_channel_that_is_not_set_up_cannot_be_scheduled(hub, client, api_key):
    headers = api_key("campaigns:read", "campaigns:write")
    segment, template = make_segment(hub), make_template(hub)
    made = client.post("/api/v1/campaigns", json=body(segment, template), headers=headers)
    assert made.status_code == 201, made.text  # a draft may wait for the channel
    cid = made.json()["id"]
    for action in ("schedule", "run-now"):
        refused = client.post(f"/api/v1/campaigns/{cid}/{action}", headers=headers)
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert "Email channel is not set up" in detail and "[channels.email]" in detail and "administrator" in detail
    with hub.session(read_only=True) as s:
        assert s.get(Campaign, cid).status == "draft"


def test_a_campaign_whose_template_cannot_render_cannot_be_scheduled(hub, client, api_key):
    from campaigns.message_templates.models import MessageTemplate

    email_set_up(hub)
    headers = api_key("campaigns:read", "campaigns:write")
    segment, template = make_segment(hub), make_template(hub)
    made = client.post("/api/v1/campaigns", json=body(segment, template), headers=headers)
    assert made.status_code == 201, made.text
    with hub.session() as s, s.begin():  # stored before save-time checks existed, say
        s.get(MessageTemplate, template).variants = {"en": {"subject": "Hi", "text": "Leave: {{ unsubscribe_url }}"}}
    refused = client.post(f"/api/v1/campaigns/{made.json()['id']}/schedule", headers=headers)
    assert refused.status_code == 422, refused.text
    assert "cannot be rendered" in refused.json()["detail"] and "unsubscribe_url" in refused.json()["detail"]
    with hub.session(read_only=True) as s:
        assert s.get(Campaign, made.json()["id"]).status == "draft"
