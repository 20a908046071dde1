"""The pages and fragments without a browser: finding, reading, acting, and bad input writing nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub import clock
from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.ingest import InboundEvent, post_event
from hub.merge import merge_contacts
from hub.models import AuditEntry, Contact, IdentityKind, Task, TimelineEvent
from hub.web.security import email_document, sanitize_email_html
from tests.web.conftest import ORIGIN, login
from tests.web.seed import seed_customer, seed_events

HX = {"HX-Request": "true"}


def _contact(hub, name: str, *, email: str | None = None, phone: str | None = None) -> int:
    identities = [IdentityIn(kind=IdentityKind.EMAIL, value=email)] if email else []
    if phone:
        identities.append(IdentityIn(kind=IdentityKind.PHONE, value=phone))
    with hub.session() as session, session.begin():
        return create_contact(session, actor=SYSTEM, region="RU", display_name=name, identities=identities).id


def _count(hub, model, *where) -> int:
    with hub.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _post(web, token: str, url: str, data: dict, **headers: str):
    return web.post(url, data={**data, "csrf_token": token}, headers={"Origin": ORIGIN, **headers},
                    follow_redirects=False)


def test_search_finds_names_in_any_case_and_phones_in_any_notation(web, hub):
    login(web, hub)
    ivan = _contact(hub, "Иван Петров", email="ivan@example.ru", phone="+7 916 123-45-67")
    _contact(hub, "Ivan Other", phone="+7 903 000-00-00")
    for query in ("иван п", "ИВАН", "8 916 123 45 67", "+7(916)1234567", "916-123", "IVAN@EXAMPLE"):
        answer = web.get("/search", params={"q": query}, headers=HX)
        assert answer.status_code == 200
        assert f'href="/contacts/{ivan}"' in answer.text, query
        assert "<html" not in answer.text  # a fragment for htmx
    assert "Ivan Other" not in web.get("/search", params={"q": "916 123"}, headers=HX).text
    nothing = web.get("/search", params={"q": "nobody-like-this"}, headers=HX).text
    assert "No contact matches" in nothing
    full = web.get("/search", params={"q": "иван"})
    assert full.status_code == 200 and "<html" in full.text and "Иван Петров" in full.text
    assert web.get("/search", params={"q": "x", "cursor": "not-a-cursor"}).status_code == 400


def test_contact_page_shows_the_card_and_the_first_page(web, hub):
    login(web, hub)
    contact_id = seed_customer(hub)
    page = web.get(f"/contacts/{contact_id}").text
    for expected in ("Мария Соколова", "maria.sokolova@example.ru", "+7 916 555-12-34", "VIP", "Lifetime value",
                     "RUB\xa025,740.50", "2 orders", "Last survey score", "9", "withdrawn", "Золотая карта",
                     "Отправить инструкцию по очистке от накипи", "Где мой заказ A-10388?", "Conversation (3 messages)",
                     "Delivered", "Failed", "Read"):
        assert expected in page, expected
    assert re.search(r'id="tab-email"[^>]*aria-disabled="true"', page)  # no email channel configured here
    assert 'id="tab-note"' in page and "is-disabled" not in page.split('id="tab-note"')[1].split(">")[0]
    assert web.get("/contacts/999999").status_code == 404


def test_a_merged_contact_leads_to_its_survivor(web, hub):
    login(web, hub)
    keep, gone = _contact(hub, "Keep", email="k@example.com"), _contact(hub, "Gone", email="g@example.com")
    with hub.session() as session, session.begin():
        merge_contacts(session, survivor_id=keep, merged_id=gone, actor=SYSTEM)
    answer = web.get(f"/contacts/{gone}", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == f"/contacts/{keep}"


def test_timeline_fragments_page_filter_and_thread(web, hub):
    login(web, hub)
    contact_id = _contact(hub, "Paged", email="p@example.com")
    seed_events(hub, contact_id=contact_id, count=70)
    first = web.get(f"/contacts/{contact_id}/timeline", headers=HX).text
    assert first.count('class="event ') == 30 and "Load older events" in first
    cursor = re.search(r"cursor=([^&\"]+)", first).group(1)
    second = web.get(f"/contacts/{contact_id}/timeline?cursor={cursor}&day=2000-01-01", headers=HX).text
    assert second.count('class="event ') == 30
    assert not set(re.findall(r'data-event-id="(\d+)"', first)) & set(re.findall(r'data-event-id="(\d+)"', second))
    sms = web.get(f"/contacts/{contact_id}/timeline?channel=sms", headers=HX).text
    assert sms.count('class="event ') == 18 and "Beginning of the timeline" in sms
    found = web.get(f"/contacts/{contact_id}/timeline?q=number%2042%20", headers=HX).text
    assert found.count('class="event ') == 1 and "Message number 42" in found
    assert web.get(f"/contacts/{contact_id}/timeline?cursor=garbage", headers=HX).status_code == 400

    with hub.session() as session, session.begin():
        for n, direction in enumerate(("in", "out", "in")):
            post_event(session, event=InboundEvent(channel="sms", kind="sms", direction=direction,
                                                   contact_id=contact_id, text=f"sms {n}", thread_key="sms:thread"))
    thread = web.get(f"/contacts/{contact_id}/thread?key=sms:thread", headers=HX).text
    assert [m for m in re.findall(r"sms \d", thread)] == ["sms 0", "sms 1", "sms 2"]  # in the order exchanged
    assert "bubble-out" in thread and "bubble-in" in thread


def test_one_event_fragment_honours_filters_and_ownership(web, hub):
    login(web, hub)
    mine, other = _contact(hub, "Mine", email="m@example.com"), _contact(hub, "Other", email="o@example.com")
    with hub.session() as session, session.begin():
        event_id = post_event(session, event=InboundEvent(channel="sms", kind="sms", contact_id=mine,
                                                          text="hello")).event.id
    assert 'id="event-' in web.get(f"/contacts/{mine}/events/{event_id}", headers=HX).text
    assert web.get(f"/contacts/{mine}/events/{event_id}?channel=email", headers=HX).status_code == 204
    assert web.get(f"/contacts/{mine}/events/{event_id}?q=goodbye", headers=HX).status_code == 204
    assert web.get(f"/contacts/{other}/events/{event_id}", headers=HX).status_code == 404
    assert web.get(f"/contacts/{mine}/events/{event_id}/message", headers=HX).status_code == 404  # no HTML


def test_notes_and_tasks_refuse_bad_input_and_write_nothing(web, hub, frozen_clock):
    token = login(web, hub)
    contact_id = _contact(hub, "Acted On", email="a@example.com")
    assert _post(web, token, f"/contacts/{contact_id}/notes", {"text": "   "}, **HX).status_code == 422
    assert _post(web, token, "/contacts/424242/notes", {"text": "hello"}).status_code == 404
    assert _post(web, token, f"/contacts/{contact_id}/tasks", {"title": "x", "due": "tomorrow-ish"},
                 **HX).status_code == 422
    assert _post(web, token, f"/contacts/{contact_id}/tasks", {"title": "", "due": ""}, **HX).status_code == 422
    assert _post(web, token, f"/contacts/{contact_id}/tasks", {"title": "x", "assignee_id": "9999"},
                 **HX).status_code == 422
    assert _count(hub, TimelineEvent) == 0 and _count(hub, Task) == 0

    note = _post(web, token, f"/contacts/{contact_id}/notes", {"text": "Call after six", "client_id": "n1"}, **HX)
    assert note.status_code == 200 and "timeline-refresh" in note.headers["hx-trigger"]
    again = _post(web, token, f"/contacts/{contact_id}/notes", {"text": "Call after six", "client_id": "n1"}, **HX)
    assert again.status_code == 200
    assert _count(hub, TimelineEvent, TimelineEvent.channel == "note") == 1  # a retried submit posts once

    # A due time typed in the agent's zone (Moscow, UTC+3) is stored as that instant.
    task = _post(web, token, f"/contacts/{contact_id}/tasks", {"title": "Call back", "due": "2026-01-15T15:00"}, **HX)
    assert task.status_code == 200
    with hub.session(read_only=True) as session:
        stored = session.scalars(select(Task)).one()
        assert stored.due_at.isoformat() == "2026-01-15T12:00:00+00:00"
        assert stored.assignee_id is not None
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "note.created")) == 1


def test_my_tasks_shows_what_is_overdue_and_completes(web, hub, frozen_clock):
    token = login(web, hub)
    contact_id = _contact(hub, "Tasked", email="t@example.com")
    for title, hours in (("Late one", -2), ("Later one", 5)):
        _post(web, token, f"/contacts/{contact_id}/tasks",
              {"title": title, "due": (clock.now() + timedelta(hours=hours + 3)).strftime("%Y-%m-%dT%H:%M")}, **HX)
    page = web.get("/tasks").text
    assert "1 overdue" in page
    late_row = page.split("Late one")[0].rsplit("<tr", 1)[1]
    assert "is-overdue" in late_row
    assert "is-overdue" not in page.split("Later one")[0].rsplit("<tr", 1)[1]
    assert "Late one" in web.get("/tasks?show=overdue").text and "Later one" not in web.get("/tasks?show=overdue").text
    with hub.session(read_only=True) as session:
        late = session.scalars(select(Task).where(Task.title == "Late one")).one()
    done = _post(web, token, f"/tasks/{late.id}/complete", {}, **HX)
    assert done.status_code == 200 and "task-saved" in done.headers["hx-trigger"]
    assert "Late one" not in web.get("/tasks").text
    assert "Late one" in web.get("/tasks?show=done").text
    assert _post(web, token, "/tasks/99999/complete", {}).status_code == 404


def test_editing_a_contact_validates_and_audits(web, hub):
    token = login(web, hub)
    contact_id = _contact(hub, "Editable", email="e@example.com")
    taken = _contact(hub, "Owner Of Phone", phone="+7 916 222-33-44")
    base = {"display_name": "Edited Name", "lifecycle_stage": "customer", "tags": "VIP, Moscow", "locale": "ru",
            "time_zone": "Europe/Moscow"}
    bad_zone = _post(web, token, f"/contacts/{contact_id}/edit", {**base, "time_zone": "Moon/Base"})
    assert bad_zone.status_code == 422 and "is not a time zone the hub knows" in bad_zone.text
    conflict = _post(web, token, f"/contacts/{contact_id}/edit", {**base, "new_phone": "8 916 222 33 44"})
    assert conflict.status_code == 422 and "merge the two instead" in conflict.text
    with hub.session(read_only=True) as session:
        assert session.get(Contact, contact_id).display_name == "Editable"  # nothing half-written
    ok = _post(web, token, f"/contacts/{contact_id}/edit", {**base, "new_phone": "+7 916 999 88 77",
                                                             "consent_channel": "sms", "consent_status": "granted"})
    assert ok.status_code == 303
    page = web.get(f"/contacts/{contact_id}").text
    assert "Edited Name" in page and "+7 916 999-88-77" in page and "VIP" in page and "granted" in page
    with hub.session(read_only=True) as session:
        actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.contact_id == contact_id)))
    assert {"contact.update", "contact.identity.add", "contact.consent"} <= actions
    assert taken != contact_id


def test_new_contact_form(web, hub):
    token = login(web, hub)
    made = _post(web, token, "/contacts/new", {"display_name": "Brand New", "email": "new@example.com",
                                                "phone": "8 (903) 123-45-67"})
    assert made.status_code == 303
    again = _post(web, token, "/contacts/new", {"display_name": "Copy", "email": "NEW@example.com"})
    assert again.status_code == 409 and "already belongs to another contact" in again.text
    empty = _post(web, token, "/contacts/new", {"display_name": "", "email": "", "phone": ""})
    assert empty.status_code == 422
    assert _count(hub, Contact) == 1


def test_merge_preview_merge_and_undo_pages(web, hub):
    token = login(web, hub)
    keep, dupe = _contact(hub, "Keep Me", email="keep@example.com"), _contact(hub, "Dupe", email="dupe@example.com")
    search = web.get(f"/contacts/{keep}/merge?q=dupe").text
    assert f"/contacts/{keep}/merge/{dupe}" in search
    preview = web.get(f"/contacts/{keep}/merge/{dupe}").text
    assert "What moves" in preview and "Emails, phones and ids" in preview
    assert web.get(f"/contacts/{keep}/merge/{keep}").status_code == 409
    assert _count(hub, Contact, Contact.merged_into.is_not(None)) == 0  # a preview writes nothing
    merged = _post(web, token, f"/contacts/{keep}/merge/{dupe}", {})
    assert merged.status_code == 303
    landing = web.get(merged.headers["location"]).text
    assert "was merged into this contact" in landing and "dupe@example.com" in landing
    merge_id = int(re.search(r'/merges/(\d+)/undo', landing).group(1))
    assert _post(web, token, f"/contacts/{keep}/merge/{dupe}", {}).status_code == 409  # already merged
    undone = _post(web, token, f"/merges/{merge_id}/undo", {})
    assert undone.status_code == 303 and undone.headers["location"] == f"/contacts/{keep}?undone={dupe}"
    assert _post(web, token, f"/merges/{merge_id}/undo", {}).status_code == 409
    assert _post(web, token, "/merges/9999/undo", {}).status_code == 404


def test_home_lists_recently_opened_contacts(web, hub):
    login(web, hub)
    first, second = _contact(hub, "First Opened", email="f@example.com"), _contact(hub, "Second Opened",
                                                                                   email="s@example.com")
    web.get(f"/contacts/{first}")
    web.get(f"/contacts/{second}")
    web.get(f"/contacts/{first}")
    home = web.get("/").text
    recent = home.split("Recently opened")[1]
    assert recent.index("First Opened") < recent.index("Second Opened")


def test_screen_pop_fragment(web, hub):
    login(web, hub)
    contact_id = seed_customer(hub)
    with hub.session() as session, session.begin():
        call = post_event(session, event=InboundEvent(channel="fake", kind="call.incoming", contact_id=contact_id,
                                                      subject="Ringing")).event.id
    pop = web.get(f"/pop/{contact_id}?event={call}", headers=HX).text
    assert 'id="pop-title"' in pop and "Мария Соколова" in pop and "Open contact" in pop
    assert pop.count('class="event ') == 5
    assert web.get("/pop/999999", headers=HX).status_code == 404


def test_screen_pop_reads_outside_a_transaction_on_postgresql(web, hub):
    """The pop only reads: on PostgreSQL its statements run without BEGIN/ROLLBACK (two round trips fewer)."""
    from psycopg.pq import TransactionStatus
    from sqlalchemy import event

    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no round trips to save")
    login(web, hub)
    contact_id = seed_customer(hub)
    states: list[TransactionStatus] = []

    def seen(conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if "timeline_event" in statement:
            states.append(conn.connection.dbapi_connection.info.transaction_status)

    event.listen(hub.db.engine, "after_cursor_execute", seen)
    try:
        assert web.get(f"/pop/{contact_id}", headers=HX).status_code == 200
    finally:
        event.remove(hub.db.engine, "after_cursor_execute", seen)
    assert states and set(states) == {TransactionStatus.IDLE}


def test_sanitizer_keeps_content_and_drops_everything_active():
    dirty = ('<p onclick="x()">Hi <b>there</b><script>alert(1)</script><a href="javascript:alert(1)">x</a>'
             '<a href="https://example.com/a">ok</a><img src="https://tracker.example/p.gif">'
             '<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline"><style>p{}</style></p>')
    clean = sanitize_email_html(dirty)
    assert "<b>there</b>" in clean and 'href="https://example.com/a"' in clean
    assert 'rel="noopener noreferrer nofollow"' in clean
    for gone in ("onclick", "<script", "alert(1)", "javascript:", "tracker.example", "<style"):
        assert gone not in clean, gone
    assert "data:image/png" in clean
    document = email_document(dirty)
    assert document.index('http-equiv="Content-Security-Policy"') < document.index("<body>")
    assert "default-src 'none'" in document


@pytest.mark.any_store
def test_every_icon_a_page_names_is_in_the_sprite(hub):
    """An icon the sprite lacks shows as a blank square (the campaigns' navigation entry did)."""
    from hub.web.pages import TEMPLATES_DIR, nav_items

    sprite = set(re.findall(r'<symbol id="i-([a-z0-9-]+)"', (TEMPLATES_DIR / "_icons.html").read_text()))
    from hub.web.routes.contacts import COMPOSE_SLOTS
    from hub.web.timeline_view import CHANNEL_ICONS

    named = [(item.label, item.icon) for item in nav_items(hub)] + list(CHANNEL_ICONS.items()) + \
        [(name, icon) for name, _label, icon in COMPOSE_SLOTS]
    missing = [(what, icon) for what, icon in named if icon not in sprite]
    assert not missing, missing
    # On a phone the navigation shows icons only: two entries must not share one.
    icons = [item.icon for item in nav_items(hub)]
    assert len(icons) == len(set(icons)), icons
