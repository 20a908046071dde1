"""/api/v1/surveys: create, replace, send to contacts, results and CSV; bad input is a 4xx that writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from tests.campaigns.surveys.conftest import make_contact, survey_data


def counts(hub) -> dict[str, int]:  # type: ignore[no-untyped-def]
    tables = [t for t in SQLModel.metadata.sorted_tables if t.name.startswith(("survey", "delivery", "timeline", "task"))]
    with hub.session(read_only=True) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in tables}


def test_create_replace_send_and_read(hub, client, api_key, email_ready):
    writer, reader = api_key("surveys:write", "surveys:read"), api_key("surveys:read")
    created = client.post("/api/v1/surveys", json=survey_data(delay_minutes=0), headers=writer)
    assert created.status_code == 201, created.text
    survey = created.json()
    assert survey["questions"][1]["show_if"] == {"question": "nps", "max": 6}
    assert client.get(f"/api/v1/surveys/{survey['id']}", headers=reader).json()["name"] == "После покупки"
    replaced = client.put(f"/api/v1/surveys/{survey['id']}", json=survey_data(name="Renamed", delay_minutes=0),
                          headers=writer)
    assert replaced.status_code == 200 and replaced.json()["name"] == "Renamed"
    contacts = [make_contact(hub, f"p{n}@example.com", name=f"P{n}").id for n in range(3)]
    sent = client.post(f"/api/v1/surveys/{survey['id']}/send", json={"contact_ids": [*contacts, contacts[0]]},
                       headers=writer)
    assert sent.status_code == 200 and sent.json()["scheduled"] == 3
    again = client.post(f"/api/v1/surveys/{survey['id']}/send", json={"contact_ids": contacts}, headers=writer)
    assert again.json() == {**again.json(), "scheduled": 0, "skipped": 3}  # the N-day rule
    listed = client.get("/api/v1/surveys", headers=reader).json()
    assert listed[0]["invitations"] == {"scheduled": 3}
    results = client.get(f"/api/v1/surveys/{survey['id']}/results", headers=reader)
    assert results.status_code == 200 and results.json()["responded"] == 0
    exported = client.get(f"/api/v1/surveys/{survey['id']}/responses.csv", headers=reader)
    assert exported.status_code == 200 and exported.text.startswith("response_id,contact_id")


@pytest.mark.parametrize("body", [
    survey_data(questions=[]),
    survey_data(name=""),
    survey_data(trigger_kind="order.shipped"),
    survey_data(extra="field"),
    survey_data(follow_up_user_id=424242),
    survey_data(cooldown_days="many"),
])
def test_bad_definitions_are_422_and_write_nothing(hub, client, api_key, body):
    writer = api_key("surveys:write")
    before = counts(hub)
    answer = client.post("/api/v1/surveys", json=body, headers=writer)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert counts(hub) == before


def test_bad_sends_are_4xx_and_write_nothing(hub, client, api_key, email_ready):
    writer = api_key("surveys:write")
    draft = client.post("/api/v1/surveys", json=survey_data(status="draft"), headers=writer).json()
    contact = make_contact(hub)
    before = counts(hub)
    assert client.post(f"/api/v1/surveys/{draft['id']}/send", json={"contact_ids": [contact.id]},
                       headers=writer).status_code == 409  # a draft cannot be sent
    assert client.post(f"/api/v1/surveys/{draft['id']}/send", json={}, headers=writer).status_code == 422
    assert client.post(f"/api/v1/surveys/{draft['id']}/send", json={"contact_ids": [1], "segment_id": 1},
                       headers=writer).status_code == 422
    assert client.post("/api/v1/surveys/999999/send", json={"contact_ids": [contact.id]},
                       headers=writer).status_code == 404
    assert client.post(f"/api/v1/surveys/{draft['id']}/send", content=b"{nope",
                       headers={**writer, "content-type": "application/json"}).status_code == 400
    assert counts(hub) == before


def test_scopes_are_enforced(client, api_key):
    assert client.get("/api/v1/surveys").status_code == 401
    assert client.get("/api/v1/surveys", headers=api_key("contacts:read")).status_code == 403
    answer = client.post("/api/v1/surveys", json=survey_data(), headers=api_key("surveys:read"))
    assert answer.status_code == 403 and answer.json()["scope"] == "surveys:write"
