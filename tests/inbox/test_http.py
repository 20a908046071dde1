"""The inbox over HTTP: the REST API (scopes, problem details for bad input, If-Match) and the
pages (list and filters, contact panel and its actions, canned responses, reports and CSV)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub import clock
from hub.models import AuditEntry, Contact
from inbox.models import CannedResponse, Status
from tests.inbox.conftest import conversations, one, user
from tests.inbox.test_races import sms_in
from tests.web.conftest import ORIGIN, login


@pytest.fixture
def auth(api_key):
    return api_key("conversations:read", "conversations:write")


def test_the_api_lists_reads_and_changes_conversations(client, hub, auth):
    agent = user(hub, "anna@example.com", presence=None)
    sms_in(hub)
    [conv] = conversations(hub)
    listed = client.get("/api/v1/conversations?view=unassigned", headers=auth).json()
    assert [c["id"] for c in listed["items"]] == [conv.id] and listed["items"][0]["sla_state"] == "ok"
    body = client.get(f"/api/v1/conversations/{conv.id}", headers=auth).json()
    assert body["channel"] == "sms" and body["status"] == "open" and body["due_at"] is not None
    assigned = client.post(f"/api/v1/conversations/{conv.id}/assign", json={"assignee_id": agent},
                           headers={**auth, "If-Match": str(body["version"])})
    assert assigned.status_code == 200 and assigned.json()["assignee_id"] == agent
    stale = client.post(f"/api/v1/conversations/{conv.id}/assign", json={"assignee_id": None},
                        headers={**auth, "If-Match": str(body["version"])})
    assert stale.status_code == 412 and one(hub, conv.id).assignee_id == agent
    until = (clock.now() + timedelta(hours=3)).isoformat()
    snoozed = client.post(f"/api/v1/conversations/{conv.id}/snooze", json={"until": until}, headers=auth)
    assert snoozed.status_code == 200 and snoozed.json()["status"] == "snoozed"
    assert client.get("/api/v1/conversations?status=snoozed&view=all", headers=auth).json()["items"][0]["id"] == conv.id
    done = client.post(f"/api/v1/conversations/{conv.id}/status", json={"status": "resolved"}, headers=auth)
    assert done.status_code == 200 and done.json()["resolved_at"] is not None
    with hub.session(read_only=True) as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.entity == "conversation")
                            .order_by(AuditEntry.id)).all()
    assert actions == ["conversation.opened", "conversation.assigned", "conversation.status", "conversation.status"]


def test_bad_input_is_a_problem_and_changes_nothing(client, hub, auth):
    sms_in(hub)
    [conv] = conversations(hub)
    before = one(hub, conv.id).version
    cases = [
        ("get", "/api/v1/conversations?view=everything", None, 422),
        ("get", "/api/v1/conversations?status=closed", None, 422),
        ("get", "/api/v1/conversations?cursor=garbage", None, 400),
        ("get", "/api/v1/conversations?view=mine", None, 422),  # an API key has no conversations of its own
        ("get", "/api/v1/conversations/999999", None, 404),
        ("post", f"/api/v1/conversations/{conv.id}/assign", {"assignee_id": 424242}, 422),
        ("post", f"/api/v1/conversations/{conv.id}/assign", {"assignee": 1}, 422),
        ("post", f"/api/v1/conversations/{conv.id}/status", {"status": "snoozed"}, 422),
        ("post", f"/api/v1/conversations/{conv.id}/snooze", {"until": "2020-01-01T00:00:00+00:00"}, 422),
        ("post", f"/api/v1/conversations/{conv.id}/snooze", {"until": "tomorrow"}, 422),
        ("post", f"/api/v1/conversations/{conv.id}/snooze", {"until": "2030-01-01T00:00:00"}, 422),  # no zone
        ("post", "/api/v1/conversations/999999/status", {"status": "resolved"}, 404),
    ]
    for method, url, body, status in cases:
        answer = getattr(client, method)(url, headers=auth, **({"json": body} if body is not None else {}))
        assert answer.status_code == status, (url, body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    bad_match = client.post(f"/api/v1/conversations/{conv.id}/status", json={"status": "resolved"},
                            headers={**auth, "If-Match": "yesterday"})
    assert bad_match.status_code == 400
    assert one(hub, conv.id).version == before and one(hub, conv.id).status == Status.OPEN


def test_scopes_are_enforced(client, hub, api_key):
    sms_in(hub)
    [conv] = conversations(hub)
    reader = api_key("conversations:read")
    assert client.get("/api/v1/conversations", headers=reader).status_code == 200
    assert client.post(f"/api/v1/conversations/{conv.id}/status", json={"status": "resolved"},
                       headers=reader).status_code == 403
    assert client.get("/api/v1/conversations", headers=api_key("contacts:read")).status_code == 403
    assert "/api/v1/conversations/{conv_id}/assign" in client.get("/api/openapi.json").json()["paths"]


def test_the_inbox_page_lists_filters_and_acts(web, hub):
    token = login(web, hub)
    sms_in(hub)
    sms_in(hub, "+79169990000")
    page = web.get("/inbox?view=unassigned")
    assert page.status_code == 200 and page.text.count('class="conv-row') == 2
    assert 'src="/inbox/inbox.js' in page.text and "Unassigned" in page.text
    assert web.get("/inbox?view=mine").text.count('class="conv-row') == 0
    assert web.get("/inbox?view=all&channel=email").text.count('class="conv-row') == 0
    assert web.get("/inbox?view=nobodys").status_code == 400
    assert web.get("/inbox?sla=late").status_code == 400
    conv_id = conversations(hub)[0].id
    took = web.post(f"/inbox/conversations/{conv_id}/assign", data={"assignee": "me", "csrf_token": token},
                    headers={"Origin": ORIGIN}, follow_redirects=False)
    assert took.status_code == 303
    assert web.get("/inbox?view=mine").text.count('class="conv-row') == 1
    # the list's fragment for a live refresh
    fragment = web.get("/inbox?view=mine", headers={"HX-Request": "true", "HX-Target": "inbox-list"})
    assert fragment.text.lstrip().startswith("<section") and "<html" not in fragment.text
    resolved = web.post(f"/inbox/conversations/{conv_id}/status", data={"status": "resolved", "csrf_token": token},
                        headers={"Origin": ORIGIN, "HX-Request": "true"})
    assert resolved.status_code == 204 and "inbox-changed" in resolved.headers["HX-Trigger"]
    assert one(hub, conv_id).status == Status.RESOLVED
    bad = web.post(f"/inbox/conversations/{conv_id}/status", data={"status": "gone", "csrf_token": token},
                   headers={"Origin": ORIGIN})
    assert bad.status_code == 422
    snooze = web.post(f"/inbox/conversations/{conversations(hub)[1].id}/status",
                      data={"status": "snoozed", "until": "not a time", "csrf_token": token}, headers={"Origin": ORIGIN})
    assert snooze.status_code == 422
    assert web.post("/inbox/presence", data={"presence": "online", "csrf_token": token},
                    headers={"Origin": ORIGIN}, follow_redirects=False).status_code == 303
    assert web.post("/inbox/presence", data={"presence": "asleep", "csrf_token": token},
                    headers={"Origin": ORIGIN}).status_code == 422


def test_the_contact_page_shows_its_conversations_beside_the_whole_timeline(web, hub):
    login(web, hub)
    result = sms_in(hub)
    page = web.get(f"/contacts/{result.contact.id}")
    assert f'hx-get="/inbox/contacts/{result.contact.id}/conversations"' in page.text
    assert 'id="timeline"' in page.text
    panel = web.get(f"/inbox/contacts/{result.contact.id}/conversations", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "Resolve" in panel.text and "Canned responses" in panel.text
    assert web.get("/inbox/contacts/999999/conversations").status_code == 404


def test_canned_responses_personal_and_shared_with_variables(web, hub):
    token = login(web, hub)
    result = sms_in(hub)
    with hub.session() as s, s.begin():
        s.get(Contact, result.contact.id).display_name = "Мария Петрова"
    saved = web.post("/inbox/canned/manage", data={"shortcut": "hello", "title": "Приветствие", "locale": "ru",
                                                  "body": "Здравствуйте, {{ contact.first_name }}! Я {{ agent.name }}.",
                                                  "csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert saved.status_code == 303
    bad = web.post("/inbox/canned/manage", data={"shortcut": "Привет!", "title": "x", "body": "{{ broken",
                                                "csrf_token": token}, headers={"Origin": ORIGIN})
    assert bad.status_code == 422 and "shortcut" in bad.text
    shared = web.post("/inbox/canned/manage", data={"shortcut": "team", "title": "t", "body": "b", "shared": "1",
                                                   "csrf_token": token}, headers={"Origin": ORIGIN})
    assert shared.status_code == 403  # an agent keeps personal ones; admins share
    found = web.get(f"/inbox/canned?q=hel&contact={result.contact.id}").json()["items"]
    assert [i["shortcut"] for i in found] == ["hello"]
    assert found[0]["text"] == "Здравствуйте, Мария! Я agent."
    assert web.get("/inbox/canned?q=nothing-like-it").json()["items"] == []
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(CannedResponse)) == 1


def test_reports_page_and_csv(web, hub, frozen_clock):
    login(web, hub)
    anna = user(hub, "anna@example.com")
    from tests.inbox.test_races import sms_out

    result = sms_in(hub)
    frozen_clock.advance(minutes=12)
    sms_out(hub, contact_id=result.contact.id, user_id=anna)
    from hub.auth import SYSTEM
    from inbox import service
    [conv] = conversations(hub)
    frozen_clock.advance(minutes=30)
    with hub.session() as s, s.begin():
        service.set_status(s, conv_id=conv.id, status=Status.RESOLVED, actor=SYSTEM)
    page = web.get("/inbox/reports?group=agent&days=7")
    assert page.status_code == 200 and 'id="backlog-chart"' in page.text and "anna" in page.text
    csv_text = web.get("/inbox/reports.csv?group=channel&days=7").text
    lines = csv_text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("channel,opened,resolved") and lines[1].startswith("sms,1,1,12.0,12.0,42.0,42.0,1.000")
    assert web.get("/inbox/reports?group=planet").status_code == 400
    assert re.search(r"\d{4}-\d{2}-\d{2},0", csv_text)


def test_admins_set_up_teams_with_hours_and_bad_input_changes_nothing(web, hub):
    from hub.models import Role
    from inbox.models import Team, TeamMember

    token = login(web, hub, "admin@example.com", role=Role.ADMIN)
    anna = user(hub, "anna@example.com")
    form = {"csrf_token": token, "name": "Поддержка", "time_zone": "Asia/Yekaterinburg", "hours_mon": "09:00-13:00, 14:00-18:00",
            "hours_sat": "", "holidays": "2027-01-01, 2027-01-02", "channels": ["sms", "email"], "lead_id": str(anna),
            "member_ids": [str(anna)]}
    assert web.post("/inbox/teams", data=form, headers={"Origin": ORIGIN}, follow_redirects=False).status_code == 303
    for bad in ({"time_zone": "Mars/Olympus"}, {"hours_mon": "18:00-09:00"}, {"holidays": "someday"},
                {"member_ids": ["99999"]}, {"name": ""}):
        answer = web.post("/inbox/teams", data={**form, "name": "Другая", **bad}, headers={"Origin": ORIGIN})
        assert answer.status_code == 422, bad
    with hub.session(read_only=True) as s:
        [team] = s.scalars(select(Team)).all()
        assert team.hours == {"mon": [["09:00", "13:00"], ["14:00", "18:00"]]} and team.holidays == ["2027-01-01", "2027-01-02"]
        assert s.scalars(select(TeamMember.user_id)).all() == [anna]
    page = web.get("/inbox/teams")
    assert page.status_code == 200 and "Поддержка" in page.text
    # an inbound SMS is now the team's, and its due time counts the team's hours
    sms_in(hub)
    [conv] = conversations(hub)
    assert conv.team_id == team.id and conv.assignee_id == anna


def test_agents_cannot_change_teams(web, hub):
    token = login(web, hub)
    assert web.get("/inbox/teams").status_code == 403
    answer = web.post("/inbox/teams", data={"csrf_token": token, "name": "X", "time_zone": "UTC"},
                      headers={"Origin": ORIGIN})
    assert answer.status_code == 403
    from inbox.models import Team
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Team)).all() == []
