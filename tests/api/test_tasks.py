"""Tasks: create, list with filters and keyset pages, change, complete; the timeline and audit log follow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from hub.auth import create_user, user_principal
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import AuditEntry, Contact, IdentityKind, Role, TimelineEvent


def counts(hub) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in SQLModel.metadata.sorted_tables}


def make_user(hub, email: str = "agent@example.com", *, active: bool = True) -> int:  # type: ignore[no-untyped-def]
    with hub.session() as s, s.begin():
        user = create_user(s, email=email, password="correct horse battery", role=Role.AGENT)
        user.is_active = active
    return user.id


def make_contact(hub, phone: str = "+79161234567") -> int:  # type: ignore[no-untyped-def]
    return ingest(hub, InboundEvent(channel="fake", kind="message", external_id=f"SM-{phone}",
                                    identities=[IdentityRef(kind=IdentityKind.PHONE, value=phone)])).contact.id


@pytest.fixture
def signed_in(hub, app):  # type: ignore[no-untyped-def]
    """sign_in(user_id): later requests without an API key act as that user (the web UI's hook)."""
    from hub.models import User

    def sign_in(user_id: int) -> None:
        def principal(request, session):  # type: ignore[no-untyped-def]
            return user_principal(session.get(User, user_id))

        app.state.cookie_principal = principal

    return sign_in


@pytest.fixture
def writer(api_key):  # type: ignore[no-untyped-def]
    return api_key("tasks:read", "tasks:write")


def task_events(hub, contact_id: int) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        rows = s.scalars(select(TimelineEvent).where(TimelineEvent.contact_id == contact_id,
                                                     TimelineEvent.channel == "task").order_by(TimelineEvent.id))
        return [(e.kind, e.direction, e.external_id, e.subject) for e in rows]


def test_create_a_task_about_a_contact(hub, client, writer, frozen_clock):
    agent = make_user(hub)
    contact = make_contact(hub)
    due = (frozen_clock.current + timedelta(days=1)).isoformat()
    response = client.post("/api/v1/tasks", headers=writer, json={
        "title": "Call back about the order", "notes": "After 3 pm", "due_at": due,
        "assignee_id": agent, "contact_id": contact,
    })
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["status"] == "open" and task["overdue"] is False and task["assignee_id"] == agent
    assert task["created_by"].startswith("api_key:")
    assert task_events(hub, contact) == [("task.created", "internal", f"task:{task['id']}:created",
                                          "Call back about the order")]
    with hub.session(read_only=True) as s:
        entry = s.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.contact_id, entry.entity_id) == ("task.created", contact, str(task["id"]))
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=writer).json() == task


def test_a_task_without_contact_touches_no_timeline(hub, client, writer):
    response = client.post("/api/v1/tasks", headers=writer, json={"title": "Order more paper"})
    assert response.status_code == 201
    assert response.json()["assignee_id"] is None and response.json()["contact_id"] is None
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(TimelineEvent)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_a_merged_contact_resolves_to_its_survivor(hub, client, writer):
    survivor, merged = make_contact(hub, "+79161234567"), make_contact(hub, "+79161234568")
    with hub.session() as s, s.begin():
        s.get(Contact, merged).merged_into = survivor
    response = client.post("/api/v1/tasks", headers=writer, json={"title": "Call", "contact_id": merged})
    assert response.json()["contact_id"] == survivor
    listed = client.get("/api/v1/tasks", headers=writer, params={"contact_id": merged}).json()
    assert [t["id"] for t in listed["items"]] == [response.json()["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "ok", "due_at": "2026-02-01T10:00:00"}, "due_at"),
        ({"title": "ok", "due_at": "tomorrow"}, "due_at"),
        ({"title": "ok", "assignee_id": 999999}, "assignee_id"),
        ({"title": "ok", "assignee_id": "INACTIVE"}, "assignee_id"),
        ({"title": "ok", "contact_id": 999999}, "contact_id"),
        ({"title": "ok", "priority": "high"}, "priority"),
        ({"notes": "no title"}, "title"),
    ],
)
def test_invalid_tasks_are_refused_and_write_nothing(hub, client, writer, body, field):
    if body.get("assignee_id") == "INACTIVE":
        body = {**body, "assignee_id": make_user(hub, "gone@example.com", active=False)}
    before = counts(hub)
    response = client.post("/api/v1/tasks", headers=writer, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]
    assert counts(hub) == before


def test_my_tasks_by_default_for_a_user_and_assignee_required_for_keys(hub, client, api_key, signed_in):
    me, other = make_user(hub, "me@example.com"), make_user(hub, "other@example.com")
    signed_in(me)
    mine = client.post("/api/v1/tasks", json={"title": "Mine"})  # defaults to the calling user
    assert mine.status_code == 201 and mine.json()["assignee_id"] == me
    theirs = client.post("/api/v1/tasks", json={"title": "Theirs", "assignee_id": other}).json()
    unassigned = client.post("/api/v1/tasks", json={"title": "Nobody's", "assignee_id": None}).json()
    assert unassigned["assignee_id"] is None

    assert [t["title"] for t in client.get("/api/v1/tasks").json()["items"]] == ["Mine"]
    assert [t["id"] for t in client.get("/api/v1/tasks", params={"assignee_id": other}).json()["items"]] == [theirs["id"]]

    key = api_key("tasks:read")
    refused = client.get("/api/v1/tasks", headers=key)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "assignee_id"
    assert [t["title"] for t in client.get("/api/v1/tasks", headers=key, params={"assignee_id": me}).json()["items"]] == ["Mine"]


def test_filters_status_overdue_and_contact(hub, client, writer, frozen_clock):
    agent = make_user(hub)
    contact = make_contact(hub)
    now = frozen_clock.current

    def create(title: str, **kw: object) -> int:
        body = {"title": title, "assignee_id": agent, **kw}
        response = client.post("/api/v1/tasks", headers=writer, json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    late = create("late", due_at=(now + timedelta(hours=1)).isoformat(), contact_id=contact)
    later = create("later", due_at=(now + timedelta(days=2)).isoformat())
    undated = create("undated")
    done = create("done", due_at=(now + timedelta(hours=2)).isoformat())
    client.post(f"/api/v1/tasks/{done}/complete", headers=writer)
    frozen_clock.advance(hours=3)  # "late" and "done" are past due now; only "late" is overdue

    def ids(**params: object) -> list[int]:
        response = client.get("/api/v1/tasks", headers=writer, params={"assignee_id": agent, **params})
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert ids() == [late, done, later, undated]  # soonest due first, undated last
    assert ids(overdue=True) == [late]
    assert ids(overdue=False) == [done, later, undated]
    assert ids(status="done") == [done]
    assert ids(status="open") == [late, later, undated]
    assert ids(contact_id=contact) == [late]
    overdue_flags = {t["id"]: t["overdue"] for t in
                     client.get("/api/v1/tasks", headers=writer, params={"assignee_id": agent}).json()["items"]}
    assert overdue_flags == {late: True, done: False, later: False, undated: False}
    assert client.get("/api/v1/tasks", headers=writer, params={"assignee_id": agent, "status": "later"}).status_code == 422


def test_keyset_pages_cover_every_task_once(hub, client, writer, frozen_clock):
    agent = make_user(hub)
    now = frozen_clock.current
    due_times = [now + timedelta(hours=h) for h in (5, 1, 3, 3, 3, 2)]
    expected = []
    for i, due in enumerate(due_times):
        expected.append((due, client.post("/api/v1/tasks", headers=writer,
                                          json={"title": f"t{i}", "assignee_id": agent, "due_at": due.isoformat()}).json()["id"]))
    undated = [client.post("/api/v1/tasks", headers=writer, json={"title": f"u{i}", "assignee_id": agent}).json()["id"]
               for i in range(3)]
    want = [task_id for _, task_id in sorted(expected)] + undated
    seen, cursor = [], None
    while True:
        params = {"assignee_id": agent, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/tasks", headers=writer, params=params).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == want
    bad = client.get("/api/v1/tasks", headers=writer, params={"assignee_id": agent, "cursor": "garbage!"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/tasks", headers=writer, params={"assignee_id": agent, "limit": 0}).status_code == 422


def test_complete_posts_one_timeline_event(hub, client, writer, frozen_clock):
    contact = make_contact(hub)
    task = client.post("/api/v1/tasks", headers=writer, json={"title": "Send the invoice", "contact_id": contact}).json()
    frozen_clock.advance(hours=2)
    done = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=writer)
    assert done.status_code == 200
    assert done.json()["status"] == "done"
    assert done.json()["completed_at"].replace("Z", "+00:00") == frozen_clock.current.isoformat()
    again = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=writer)
    assert again.status_code == 200 and again.json() == done.json()
    assert [e[:3] for e in task_events(hub, contact)] == [
        ("task.created", "internal", f"task:{task['id']}:created"),
        ("task.completed", "internal", f"task:{task['id']}:completed"),
    ]
    with hub.session(read_only=True) as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["task.created", "task.completed"]


def test_patch_changes_fields_audits_and_moves_between_states(hub, client, writer, frozen_clock):
    contact = make_contact(hub)
    task = client.post("/api/v1/tasks", headers=writer, json={"title": "Call", "contact_id": contact}).json()
    url = f"/api/v1/tasks/{task['id']}"
    due = (frozen_clock.current + timedelta(days=1)).isoformat()
    changed = client.patch(url, headers=writer, json={"title": "Call back", "due_at": due, "notes": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "Call back"
    with hub.session(read_only=True) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "task.updated")).one()
    assert entry.contact_id == contact
    assert entry.changes == {"title": ["Call", "Call back"], "due_at": [None, due]}

    cancelled = client.patch(url, headers=writer, json={"status": "cancelled"})
    assert cancelled.json()["status"] == "cancelled"
    refused = client.post(f"{url}/complete", headers=writer)
    assert refused.status_code == 409 and refused.headers["content-type"].startswith("application/problem+json")
    reopened = client.patch(url, headers=writer, json={"status": "open"})
    assert reopened.json()["status"] == "open"
    completed = client.patch(url, headers=writer, json={"status": "done", "notes": "Spoke to her"})
    assert completed.json()["status"] == "done" and completed.json()["notes"] == "Spoke to her"
    assert [e[0] for e in task_events(hub, contact)] == ["task.created", "task.completed"]

    before = counts(hub)
    for body in ({"title": None}, {"status": None}, {"status": "later"}, {"due_at": "2026-01-01T00:00"},
                 {"assignee_id": 999999}, {"contact_id": 999999}, {"colour": "red"}):
        response = client.patch(url, headers=writer, json=body)
        assert response.status_code == 422, (body, response.text)
    assert counts(hub) == before
    assert client.patch("/api/v1/tasks/999999", headers=writer, json={"title": "x"}).status_code == 404
    assert client.get("/api/v1/tasks/999999", headers=writer).status_code == 404
    assert client.post("/api/v1/tasks/999999/complete", headers=writer).status_code == 404


def test_moving_a_task_to_another_contact_shows_in_both_logs(hub, client, writer):
    first, second = make_contact(hub, "+79161234567"), make_contact(hub, "+79161234568")
    task = client.post("/api/v1/tasks", headers=writer, json={"title": "Call", "contact_id": first}).json()
    client.patch(f"/api/v1/tasks/{task['id']}", headers=writer, json={"contact_id": second})
    with hub.session(read_only=True) as s:
        updates = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "task.updated")))
    assert sorted(e.contact_id for e in updates) == sorted([first, second])


def test_scopes(hub, client, api_key):
    reader = api_key("tasks:read")
    assert client.post("/api/v1/tasks", headers=reader, json={"title": "x"}).status_code == 403
    assert client.get("/api/v1/tasks", headers=api_key("contacts:read"), params={"assignee_id": 1}).status_code == 403


def test_creating_a_task_writes_its_audit_entry_at_once_without_a_flush_of_its_own(hub, frozen_clock):
    """The entry is one plain INSERT in the task's transaction: nothing is left for a later flush
    (that cost a unit of work for one row on each detractor's survey answer), and it still rolls
    back with the task."""
    from hub.auth import SYSTEM
    from hub.tasks import create_task

    contact = make_contact(hub)
    with hub.session() as s, s.begin():
        task = create_task(s, actor=SYSTEM, title="Call back", contact_id=contact)
        assert not [o for o in s.new if isinstance(o, AuditEntry)]
        entry = s.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.entity_id, entry.contact_id, entry.actor_kind) == (
        "task.created", str(task.id), contact, "system")
    assert entry.occurred_at == frozen_clock.current and entry.changes["title"] == [None, "Call back"]
    with hub.session() as s:
        with s.begin():
            create_task(s, actor=SYSTEM, title="Rolled back", contact_id=contact)
            s.rollback()
    assert counts(hub)["audit_entry"] == 1
