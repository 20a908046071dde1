"""The contact page's compose panels: email, SMS and call logging through the signed-in session."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from channels.sms.optout import set_sms_consent
from hub.ingest import InboundEvent, post_event
from hub.models import ConsentStatus, Direction, Delivery, Task, TimelineEvent
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.conftest import test_registry
from tests.web.conftest import LiveServer, login, sign_in
from tests.web.test_pages import HX, _contact, _count, _post

TWILIO = {"account_sid": "AC" + "1234567890abcdef" * 2, "auth_token": "test-auth-token-5f1d0c",
          "api_base_url": "http://127.0.0.1:9"}


@pytest.fixture
def hub(hub: Hub) -> Iterator[Hub]:
    """The test hub with email, SMS and phone configured (nothing is sent: no worker runs)."""
    settings = hub.settings.model_copy(update={"channels": {
        "email": {"smtp_host": "127.0.0.1", "smtp_port": 9, "from_address": "support@hub.example.com"},
        "sms": {**TWILIO, "from_number": "+15005550006"},
        "phone": {**TWILIO, "caller_id": "+15005550006"},
    }})
    configured = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db)
    yield configured
    configured.broker.stop()


def _opt_out(hub: Hub, contact_id: int) -> None:
    with hub.session() as session, session.begin():
        set_sms_consent(session, contact_id=contact_id, status=ConsentStatus.WITHDRAWN, source="test: STOP")


def test_the_contact_page_enables_the_three_panels_and_they_load_their_forms(web, hub):
    login(web, hub)
    contact_id = _contact(hub, "Olga Orlova", email="olga@example.com", phone="+7 916 123-45-67")
    page = web.get(f"/contacts/{contact_id}").text
    for name in ("email", "sms", "phone"):
        assert re.search(rf'id="tab-{name}"[^>]*class="tab"', page), name  # enabled, not is-disabled
        assert f'hx-get="/contacts/{contact_id}/compose/{name}"' in page
    email = web.get(f"/contacts/{contact_id}/compose/email", headers=HX)
    assert email.status_code == 200 and 'value="olga@example.com"' in email.text and "<html" not in email.text
    sms = web.get(f"/contacts/{contact_id}/compose/sms", headers=HX).text
    assert 'value="+79161234567"' in sms and "+7 916 123-45-67" in sms and "<fieldset" in sms
    assert "opted out" not in sms and "0 chars · 0 segments" in sms
    phone = web.get(f"/contacts/{contact_id}/compose/phone", headers=HX).text
    assert 'name="outcome"' in phone and 'name="follow_up_due"' in phone
    assert web.get(f"/contacts/{contact_id}/compose/fax", headers=HX).status_code == 404
    assert web.get("/contacts/424242/compose/sms", headers=HX).status_code == 404


def test_an_email_is_queued_once_and_bad_input_writes_nothing(web, hub):
    token = login(web, hub)
    contact_id = _contact(hub, "Olga Orlova", email="olga@example.com")
    url = f"/contacts/{contact_id}/compose/email"
    empty = _post(web, token, url, {"to": "olga@example.com", "subject": "Hi", "text": "  "}, **HX)
    assert empty.status_code == 422 and "Write the message first." in empty.text
    stranger = _post(web, token, url, {"to": "someone@else.example", "subject": "Hi", "text": "Hello"}, **HX)
    assert stranger.status_code == 422 and "Choose one of the contact" in stranger.text
    assert 'aria-invalid="true" aria-describedby="email-to-error"' in stranger.text
    no_subject = _post(web, token, url, {"to": "olga@example.com", "subject": "", "text": "Hello"}, **HX)
    assert no_subject.status_code == 422 and 'id="email-subject-error"' in no_subject.text
    assert "Hello" in no_subject.text  # the agent's text is kept for another try
    assert _count(hub, Delivery) == 0 and _count(hub, TimelineEvent) == 0

    data = {"to": "olga@example.com", "subject": "Your order", "text": "It ships today.", "client_id": "e1"}
    sent = _post(web, token, url, data, **HX)
    assert sent.status_code == 200, sent.text
    assert "timeline-refresh" in sent.headers["hx-trigger"] and "Email queued" in sent.text
    assert "It ships today." not in sent.text and 'value="e1"' not in sent.text  # a fresh form
    assert _post(web, token, url, data, **HX).status_code == 200  # a retried submit queues it once
    with hub.session(read_only=True) as session:
        delivery = session.scalars(select(Delivery)).one()
        event = session.get(TimelineEvent, delivery.event_id)
    assert (delivery.channel, delivery.address, event.channel, event.subject) == \
        ("email", "olga@example.com", "email", "Your order")
    timeline = web.get(f"/contacts/{contact_id}/timeline", headers=HX).text
    assert "Your order" in timeline


def test_an_email_carries_the_files_attached_in_the_panel(web, hub):
    from channels.email.models import EmailAttachment
    from tests.web.test_pages import ORIGIN

    token = login(web, hub)
    contact_id = _contact(hub, "Olga Orlova", email="olga@example.com")
    url = f"/contacts/{contact_id}/compose/email"
    assert 'type="file"' in web.get(url, headers=HX).text
    fields = {"to": "olga@example.com", "subject": "Invoice", "text": "Attached.", "csrf_token": token}
    limit = hub.channels["email"].settings.max_attachment_bytes
    too_big = web.post(url, data=fields, files=[("files", ("big.bin", b"x" * (limit + 1), "application/octet-stream"))],
                       headers={"Origin": ORIGIN, **HX})
    assert too_big.status_code == 413 and 'id="email-files-error"' in too_big.text
    assert _count(hub, EmailAttachment) == 0 and _count(hub, Delivery) == 0  # nothing half-written

    files = [("files", ("счёт №7.pdf", b"%PDF-1.4 invoice", "application/pdf")),
             ("files", ("notes.txt", "привет".encode(), "text/plain"))]
    sent = web.post(url, data=fields, files=files, headers={"Origin": ORIGIN, **HX})
    assert sent.status_code == 200, sent.text
    with hub.session(read_only=True) as session:
        delivery = session.scalars(select(Delivery)).one()
    attached = delivery.content["attachments"]
    assert [(a["content_type"], a["size"]) for a in attached] == [("application/pdf", 16), ("text/plain", 12)]
    assert attached[0]["filename"].endswith(".pdf")


def test_a_reply_is_prefilled_from_the_email_it_answers_and_keeps_its_thread(web, hub):
    token = login(web, hub)
    contact_id = _contact(hub, "Olga Orlova", email="olga@example.com")
    with hub.session() as session, session.begin():
        asked = post_event(session, event=InboundEvent(
            channel="email", kind="message", direction=Direction.IN, external_id="<q1@example.com>",
            contact_id=contact_id, subject="Where is my order?", text="It is late.", thread_key="email:<q1@example.com>",
            data={"from": "olga@example.com", "message_id": "<q1@example.com>"})).event.id
    form = web.get(f"/contacts/{contact_id}/compose/email", params={"reply_to": asked}, headers=HX).text
    assert 'value="Re: Where is my order?"' in form and f'name="reply_to_event_id" value="{asked}"' in form
    sent = _post(web, token, f"/contacts/{contact_id}/compose/email",
                 {"to": "olga@example.com", "subject": "Re: Where is my order?", "text": "On its way.",
                  "reply_to_event_id": str(asked)}, **HX)
    assert sent.status_code == 200, sent.text
    with hub.session(read_only=True) as session:
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.content["thread_key"] == "email:<q1@example.com>"


def test_an_sms_is_queued_with_its_segments_and_refusals_write_nothing(web, hub):
    token = login(web, hub)
    contact_id = _contact(hub, "Pavel", phone="+7 916 123-45-67")
    url = f"/contacts/{contact_id}/compose/sms"
    counter = f"{url}/segments"
    assert "160 chars · 1 segments" in _post(web, token, counter, {"text": "a" * 160}, **HX).text
    assert "161 chars · 2 segments" in _post(web, token, counter, {"text": "a" * 161}, **HX).text
    unicode = _post(web, token, counter, {"text": "Привет"}, **HX).text
    assert "6 chars · 1 segments · Unicode" in unicode
    assert "Too long" in _post(web, token, counter, {"text": "a" * 1601}, **HX).text

    too_long = _post(web, token, url, {"text": "a" * 1601}, **HX)
    assert too_long.status_code == 422 and 'id="sms-text-error"' in too_long.text
    assert _post(web, token, url, {"text": ""}, **HX).status_code == 422
    wrong = _post(web, token, url, {"text": "Hi", "to": "+7 903 000-00-00"}, **HX)
    assert wrong.status_code == 422 and 'id="sms-to-error"' in wrong.text
    assert _count(hub, Delivery) == 0 and _count(hub, TimelineEvent) == 0

    sent = _post(web, token, url, {"to": "+79161234567", "text": "Your parcel is at the door", "client_id": "s1"}, **HX)
    assert sent.status_code == 200 and "timeline-refresh" in sent.headers["hx-trigger"] and "SMS queued" in sent.text
    with hub.session(read_only=True) as session:
        delivery = session.scalars(select(Delivery)).one()
        event = session.get(TimelineEvent, delivery.event_id)
    assert (delivery.channel, delivery.address, event.text) == ("sms", "+79161234567", "Your parcel is at the door")


def test_an_opted_out_contact_gets_no_sms_and_the_panel_says_so(web, hub):
    token = login(web, hub, locale="ru")
    contact_id = _contact(hub, "Stopped", phone="+7 916 123-45-67")
    _opt_out(hub, contact_id)
    form = web.get(f"/contacts/{contact_id}/compose/sms", headers=HX).text
    assert 'id="sms-opted-out"' in form and "<fieldset" in form and " disabled>" in form
    refused = _post(web, token, f"/contacts/{contact_id}/compose/sms", {"text": "Hello"}, **HX)
    assert refused.status_code == 409 and 'role="alert"' in refused.text
    assert "START" in refused.text and "opted out" not in refused.text  # in the agent's language (Russian)
    assert _count(hub, Delivery) == 0 and _count(hub, TimelineEvent) == 0


def test_a_logged_call_lands_on_the_timeline_with_its_follow_up(web, hub, frozen_clock):
    token = login(web, hub)
    contact_id = _contact(hub, "Caller", phone="+7 916 123-45-67")
    url = f"/contacts/{contact_id}/compose/phone"
    for bad, field in (({"outcome": "exploded"}, "call-outcome-error"),
                       ({"outcome": "answered", "minutes": "ten"}, "call-minutes-error"),
                       ({"outcome": "answered", "minutes": "-3"}, "call-minutes-error"),
                       ({"outcome": "answered", "direction": "sideways"}, "call-direction-error"),
                       ({"outcome": "answered", "follow_up": "Call back", "follow_up_due": "soon"},
                        "call-follow-up-due-error"),
                       ({"outcome": "answered", "follow_up_due": "2026-01-15T15:00"}, "call-follow-up-error")):
        answer = _post(web, token, url, bad, **HX)
        assert answer.status_code == 422 and f'id="{field}"' in answer.text, bad
    assert _count(hub, TimelineEvent) == 0 and _count(hub, Task) == 0

    data = {"direction": "in", "outcome": "answered", "minutes": "4.5", "number": "+79161234567",
            "notes": "Wants the blue one", "follow_up": "Send the quote", "follow_up_due": "2026-01-15T15:00",
            "client_id": "c1"}
    logged = _post(web, token, url, data, **HX)
    assert logged.status_code == 200 and "timeline-refresh" in logged.headers["hx-trigger"]
    assert "Call logged" in logged.text and "Wants the blue one" not in logged.text
    with hub.session(read_only=True) as session:
        event = session.scalars(select(TimelineEvent).where(TimelineEvent.channel == "phone")).one()
        task = session.scalars(select(Task)).one()
    assert (event.channel, event.kind, event.status, event.data["duration_seconds"]) == ("phone", "call", "answered", 270)
    assert "Wants the blue one" in event.text
    assert task.title == "Send the quote" and task.source_event_id == event.id
    assert task.due_at.isoformat() == "2026-01-15T12:00:00+00:00"  # typed in Moscow time


@pytest.mark.browser
@pytest.mark.any_store
def test_typing_an_sms_counts_segments_and_sending_it_shows_on_the_timeline(new_page, live_server: LiveServer):
    live_server.user()
    contact_id = _contact(live_server.hub, "Browser Contact", phone="+7 916 123-45-67")
    page = new_page()
    sign_in(page, "agent@example.com", next_path=f"/contacts/{contact_id}")
    page.get_by_role("tab", name="SMS").click()
    text = page.locator("#sms-text")
    counter = page.locator("#sms-counter")
    text.fill("a" * 160)
    counter.filter(has_text="160 chars · 1 segments").wait_for()
    text.press("End")
    text.type("b")
    counter.filter(has_text="161 chars · 2 segments").wait_for()
    text.fill("Your parcel is at the door")
    counter.filter(has_text="26 chars · 1 segments").wait_for()
    page.get_by_role("button", name="Send SMS").click()
    page.get_by_text("SMS queued; it shows on the timeline.").wait_for()
    page.locator("#timeline").get_by_text("Your parcel is at the door").wait_for()
    assert page.locator("#sms-text").input_value() == ""
