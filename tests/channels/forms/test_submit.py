"""Submissions through the real routes, on SQLite and PostgreSQL: contact resolution, consent,
timeline, triggers, tasks, spam checks, limits, CORS, redirects and problem details."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.auth import SYSTEM, create_user
from hub.contacts import IdentityIn, create_contact
from hub.models import ConsentRecord, Contact, IdentityKind, Role, Task, TimelineEvent

from channels.forms.models import FormSubmission
from tests.channels.forms.conftest import SHOP, WORDING, counts, make_form, stamp

JSON = {"Content-Type": "application/json"}


def url(form, suffix=""):
    return f"/channels/forms/f/{form.key}{suffix}"


def answers(token, **values):
    base = {"name": "Анна Смирнова", "email": "anna@example.com", "_token": token}
    base.update(values)
    return base


def test_a_submission_lands_on_a_new_contact_with_consent_event_and_trigger(hub, client, form, frozen_clock):
    seen = []

    def on_submit(session, *, event, contact):
        # Triggers run inside the submission's transaction and already see the consent it recorded.
        granted = session.scalars(select(ConsentRecord).where(ConsentRecord.contact_id == contact.id)).all()
        seen.append((event.kind, contact.id, [c.wording for c in granted]))

    hub.triggers.register("form.submitted", on_submit)
    token = stamp(hub, form, frozen_clock)
    page = "https://shop.example/contact?utm=x"
    answer = client.post(url(form, "/json"), headers={**JSON, "Origin": SHOP},
                         json=answers(token, phone="8 (912) 345-67-89", topic="order", vip=True, news=True,
                                      message="Где мой заказ?", _source=page, _client_id="abcdefgh12345678"))
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"status": "accepted", "message": "Thanks!", "redirect": None}
    assert answer.headers["access-control-allow-origin"] == SHOP
    with hub.session(read_only=True) as s:
        contact = s.scalars(select(Contact)).one()
        event = s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "form.submitted")).one()
        consent = s.scalars(select(ConsentRecord)).one()
        submission = s.scalars(select(FormSubmission)).one()
    assert contact.display_name == "Анна Смирнова"
    assert contact.attributes == {"topic": "order"}
    assert set(contact.tags) == {"website", "business"}
    assert (event.channel, event.direction, event.contact_id) == ("forms", "in", contact.id)
    assert "Где мой заказ?" in event.text and event.data["source_url"] == page
    assert (consent.status, consent.channel, consent.purpose) == ("granted", "email", "marketing")
    assert consent.wording == WORDING  # word for word what the visitor ticked
    assert consent.source == page
    assert consent.occurred_at == frozen_clock()
    assert submission.consents[0]["wording"] == WORDING and submission.client_id == "abcdefgh12345678"
    assert seen == [("form.submitted", contact.id, [WORDING])]


@pytest.mark.parametrize("email, phone", [
    ("ANNA@Example.COM", None),
    (None, "+7 912 345-67-89"),
    (None, "8 (912) 345 67 89"),
    (None, "79123456789"),
])
def test_an_existing_contact_is_found_by_email_or_phone_in_any_notation(hub, client, frozen_clock, email, phone):
    form = make_form(hub)
    with hub.session() as s, s.begin():
        known = create_contact(s, actor=SYSTEM, region="RU", display_name="Anna (known)", identities=[
            IdentityIn(kind=IdentityKind.EMAIL, value="anna@example.com"),
            IdentityIn(kind=IdentityKind.PHONE, value="+79123456789")])
        known_id = known.id
    before = counts(hub)
    values = {"name": "Someone else", "email": email, "phone": phone, "_token": stamp(hub, form, frozen_clock)}
    answer = client.post(url(form, "/json"), headers=JSON, json={k: v for k, v in values.items() if v})
    assert answer.status_code == 201, answer.text
    after = counts(hub)
    assert after["Contact"] == before["Contact"] == 1  # no duplicate
    with hub.session(read_only=True) as s:
        event = s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "form.submitted")).one()
        contact = s.get(Contact, known_id)
    assert event.contact_id == known_id
    assert contact.display_name == "Anna (known)"  # a known contact keeps its name


def test_a_new_phone_joins_the_contact_found_by_email(hub, client, form, frozen_clock):
    with hub.session() as s, s.begin():
        known_id = create_contact(s, actor=SYSTEM, region="RU", identities=[
            IdentityIn(kind=IdentityKind.EMAIL, value="anna@example.com")]).id
    answer = client.post(url(form, "/json"), headers=JSON,
                         json=answers(stamp(hub, form, frozen_clock), phone="+7 912 000-11-22"))
    assert answer.status_code == 201
    assert counts(hub)["Contact"] == 1 and counts(hub)["Identity"] == 2
    with hub.session(read_only=True) as s:
        assert s.scalars(select(TimelineEvent.contact_id)).all() == [known_id]


def test_a_follow_up_task_goes_to_the_assignee(hub, client, frozen_clock):
    with hub.session() as s, s.begin():
        agent = create_user(s, email="olga@example.com", password="x" * 12, role=Role.AGENT, display_name="Olga")
        agent_id = agent.id
    form = make_form(hub, task_assignee_id=agent_id, task_title="Call back")
    assert client.post(url(form, "/json"), headers=JSON, json=answers(stamp(hub, form, frozen_clock))).status_code == 201
    with hub.session(read_only=True) as s:
        task = s.scalars(select(Task)).one()
        submission = s.scalars(select(FormSubmission)).one()
    assert (task.title, task.assignee_id, task.contact_id) == ("Call back", agent_id, submission.contact_id)
    assert task.source_event_id == submission.event_id and submission.task_id == task.id


def test_an_unticked_optional_consent_records_no_decision(hub, client, form, frozen_clock):
    answer = client.post(url(form, "/json"), headers=JSON, json=answers(stamp(hub, form, frozen_clock), news=False))
    assert answer.status_code == 201
    assert counts(hub)["ConsentRecord"] == 0


# --- replays ------------------------------------------------------------------------------------

def test_a_replayed_submission_is_stored_once(hub, client, form, frozen_clock):
    body = answers(stamp(hub, form, frozen_clock), _client_id="retry-0123456789", news=True)
    first = client.post(url(form, "/json"), headers=JSON, json=body)
    again = client.post(url(form, "/json"), headers=JSON, json=body)
    plain = client.post(url(form), data={k: str(v) for k, v in body.items()}, follow_redirects=False)
    assert (first.status_code, again.status_code, plain.status_code) == (201, 200, 303)
    assert again.json()["status"] == "accepted"
    c = counts(hub)
    assert (c["FormSubmission"], c["ConsentRecord"], c["Contact"]) == (1, 1, 1)
    with hub.session(read_only=True) as s:
        assert len(s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "form.submitted")).all()) == 1


# --- spam ---------------------------------------------------------------------------------------

def test_honeypot_is_answered_as_accepted_and_stores_nothing(hub, client, form, frozen_clock):
    token = stamp(hub, form, frozen_clock)
    trapped = client.post(url(form, "/json"), headers=JSON, json=answers(token, _hp="http://spam.example"))
    person = client.post(url(form, "/json"), headers=JSON, json=answers(token, email="other@example.com"))
    assert trapped.status_code == person.status_code == 201
    assert trapped.json() == person.json()
    assert counts(hub)["FormSubmission"] == 1  # only the person's
    plain = client.post(url(form), data=answers(token, _hp="x", email="bot@example.com"), follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"].startswith(url(form, "/thanks"))
    assert counts(hub)["FormSubmission"] == 1


def test_too_fast_a_submission_is_answered_as_accepted_and_stores_nothing(hub, client, form, frozen_clock):
    token = stamp(hub, form, frozen_clock, wait=1)  # under min_fill_seconds (3)
    answer = client.post(url(form, "/json"), headers=JSON, json=answers(token))
    assert answer.status_code == 201 and answer.json()["status"] == "accepted"
    plain = client.post(url(form), data=answers(token), follow_redirects=False)
    assert plain.status_code == 303
    assert counts(hub) == {"Contact": 0, "Identity": 0, "TimelineEvent": 0, "FormSubmission": 0,
                           "ConsentRecord": 0, "Task": 0}


@pytest.mark.parametrize("token", [None, "", "forged.token", "eyJmIjoieCIsInQiOjF9.bad"])
def test_a_missing_or_forged_stamp_stores_nothing(hub, client, form, frozen_clock, token):
    body = answers(token)
    if token is None:
        del body["_token"]
    assert client.post(url(form, "/json"), headers=JSON, json=body).status_code == 201
    assert counts(hub)["FormSubmission"] == 0


def test_a_stamp_of_another_form_or_too_old_stores_nothing(hub, client, form, frozen_clock):
    other = make_form(hub, name="Other")
    assert client.post(url(form, "/json"), headers=JSON, json=answers(stamp(hub, other, frozen_clock))).status_code == 201
    old = stamp(hub, form, frozen_clock, wait=25 * 3600)
    assert client.post(url(form, "/json"), headers=JSON, json=answers(old)).status_code == 201
    assert counts(hub)["FormSubmission"] == 0


def test_the_rate_limit_answers_429_and_stores_nothing_more(hub, client, form, frozen_clock):
    hub.channel("forms").settings.rate_limit = 3
    token = stamp(hub, form, frozen_clock)
    for i in range(3):
        assert client.post(url(form, "/json"), headers=JSON, json=answers(token, email=f"p{i}@example.com")).status_code == 201
    limited = client.post(url(form, "/json"), headers=JSON, json=answers(token, email="p9@example.com"))
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) > 0
    page = client.post(url(form), data=answers(token, email="p10@example.com"), follow_redirects=False)
    assert page.status_code == 429 and "retry-after" in page.headers
    assert counts(hub)["FormSubmission"] == 3
    frozen_clock.advance(seconds=hub.channel("forms").settings.rate_window_seconds + 1)
    fresh = stamp(hub, form, frozen_clock)
    assert client.post(url(form, "/json"), headers=JSON, json=answers(fresh, email="p11@example.com")).status_code == 201


def test_a_body_over_the_limit_is_a_413_and_stores_nothing(hub, client, form, frozen_clock):
    big = answers(stamp(hub, form, frozen_clock), message="x" * (hub.channel("forms").settings.max_body_bytes + 10))
    assert client.post(url(form, "/json"), headers=JSON, json=big).status_code == 413
    assert client.post(url(form), data=big).status_code == 413
    assert counts(hub)["FormSubmission"] == 0 and counts(hub)["Contact"] == 0


# --- redirects ----------------------------------------------------------------------------------

def test_redirects_go_only_to_allow_listed_urls(hub, client, frozen_clock):
    form = make_form(hub, redirect_url="https://shop.example/thanks")
    token = stamp(hub, form, frozen_clock)
    default = client.post(url(form), data=answers(token), follow_redirects=False)
    assert default.headers["location"] == "https://shop.example/thanks"
    asked = client.post(url(form), data=answers(token, email="b@example.com", _redirect="https://shop.example/done?x=1"),
                        follow_redirects=False)
    assert asked.headers["location"] == "https://shop.example/done?x=1"
    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)", "https://shop.example.evil.example/",
                 "https://user@evil.example@shop.example/"):
        answer = client.post(url(form), data=answers(token, email="c@example.com", _redirect=evil), follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "https://shop.example/thanks", evil
    as_json = client.post(url(form, "/json"), headers=JSON, json=answers(token, _redirect="https://evil.example/"))
    assert as_json.json()["redirect"] == "https://shop.example/thanks"


def test_a_redirect_off_the_allow_list_cannot_be_configured():
    from pydantic import ValidationError

    from channels.forms.definitions import FormDefinition
    from tests.channels.forms.conftest import FIELDS

    with pytest.raises(ValidationError, match="allowed origins"):
        FormDefinition.model_validate({"name": "x", "fields": FIELDS, "allowed_origins": [SHOP],
                                       "redirect_url": "https://evil.example/thanks"})


# --- CORS ---------------------------------------------------------------------------------------

def test_cors_is_open_only_to_allow_listed_origins(hub, client, form, frozen_clock):
    ok = client.options(url(form, "/json"), headers={"Origin": SHOP, "Access-Control-Request-Method": "POST",
                                                     "Access-Control-Request-Headers": "content-type"})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == SHOP
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "content-type" in ok.headers["access-control-allow-headers"].lower()
    refused = client.options(url(form, "/json"), headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in refused.headers
    token_ok = client.get(url(form, "/token"), headers={"Origin": SHOP})
    assert token_ok.headers["access-control-allow-origin"] == SHOP and token_ok.json()["token"]
    token_refused = client.get(url(form, "/token"), headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in token_refused.headers

    token = stamp(hub, form, frozen_clock)
    evil = client.post(url(form, "/json"), headers={**JSON, "Origin": "https://evil.example"}, json=answers(token))
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    evil_plain = client.post(url(form), headers={"Origin": "https://evil.example"}, data=answers(token))
    assert evil_plain.status_code == 403
    assert counts(hub)["FormSubmission"] == 0
    # Errors for an allowed origin carry the header, so the script can read them.
    bad = client.post(url(form, "/json"), headers={**JSON, "Origin": SHOP}, json=answers(token, email="nope"))
    assert bad.status_code == 422 and bad.headers["access-control-allow-origin"] == SHOP


# --- bad input ----------------------------------------------------------------------------------

def test_json_errors_are_problem_details_with_field_errors_in_the_visitors_language(hub, client, form, frozen_clock):
    token = stamp(hub, form, frozen_clock)
    answer = client.post(url(form, "/json"), headers={**JSON, "Accept-Language": "ru-RU,ru;q=0.9"},
                         json={"_token": token, "email": "not-an-email", "topic": "bogus", "message": "x" * 600})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == 422 and body["type"].startswith("/problems/")
    errors = {e["field"]: e["message"] for e in body["errors"]}
    assert set(errors) == {"name", "email", "topic", "message"}
    assert errors["name"] == "Обязательное поле."
    assert errors["email"] == "Введите правильный адрес эл. почты."
    english = client.post(url(form, "/json"), headers=JSON, json={"_token": token, "_lang": "en", "name": "A"})
    assert {e["field"]: e["message"] for e in english.json()["errors"]} == {
        "email": "Give an email address or a phone number."}
    assert counts(hub) == {"Contact": 0, "Identity": 0, "TimelineEvent": 0, "FormSubmission": 0,
                           "ConsentRecord": 0, "Task": 0}


@pytest.mark.parametrize("body, headers, status", [
    (b"{not json", JSON, 400),
    (b"[1, 2]", JSON, 400),
    (b"name=A&email=a%40example.com", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
])
def test_bad_json_requests_change_nothing(hub, client, form, body, headers, status):
    answer = client.post(url(form, "/json"), content=body, headers=headers)
    assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
    assert counts(hub)["FormSubmission"] == 0


def test_unknown_or_closed_forms_are_404(hub, client, frozen_clock):
    closed = make_form(hub, is_active=False)
    for key in ("no-such-form", closed.key, "1"):
        assert client.get(f"/channels/forms/f/{key}").status_code == 404
        assert client.post(f"/channels/forms/f/{key}/json", headers=JSON, json={"email": "a@example.com"}).status_code == 404
    assert counts(hub)["FormSubmission"] == 0


def test_the_hosted_page_shows_errors_beside_fields_without_javascript(hub, client, form, frozen_clock):
    page = client.get(url(form), headers={"Accept-Language": "ru"})
    assert page.status_code == 200 and 'name="_token"' in page.text and 'name="_hp"' in page.text
    assert "form-action 'self' https://shop.example" in page.headers["content-security-policy"]
    token = stamp(hub, form, frozen_clock)
    answer = client.post(url(form), data={"_token": token, "_lang": "ru", "name": "Анна", "email": "плохо"})
    assert answer.status_code == 422
    assert 'aria-invalid="true"' in answer.text and "Введите правильный адрес эл. почты." in answer.text
    assert 'value="Анна"' in answer.text  # what the visitor typed is kept
    assert '<a href="#hubf-email">Email: Введите правильный адрес эл. почты.</a>' in answer.text  # the summary
    assert answer.text.count("autofocus") == 1  # the first wrong field takes the focus
    assert counts(hub)["FormSubmission"] == 0
    fixed = client.post(url(form), data={"_token": token, "_lang": "ru", "name": "Анна", "email": "anna@example.com"},
                        follow_redirects=True)
    assert fixed.status_code == 200 and "Thanks!" in fixed.text
    assert counts(hub)["FormSubmission"] == 1


def test_the_rate_limit_window_forgets_old_hits(hub, frozen_clock):
    from channels.forms.spam import rate_limited

    with hub.session() as s, s.begin():
        for _ in range(2):
            assert rate_limited(s, address="10.0.0.1", limit=2, window=timedelta(minutes=10)) is None
        assert rate_limited(s, address="10.0.0.1", limit=2, window=timedelta(minutes=10)) == timedelta(minutes=10)
        assert rate_limited(s, address="10.0.0.2", limit=2, window=timedelta(minutes=10)) is None


def test_concurrent_first_submissions_of_one_person_make_one_contact(hub, form):
    """Eight posts at once by a person the hub does not know yet: one contact, eight submissions."""
    import threading

    from channels.forms.models import Form
    from channels.forms.service import submit

    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def one(i: int) -> None:
        try:
            barrier.wait()
            with hub.session() as session, session.begin():
                submit(session, form=session.get(Form, form.id), raw={"name": "Анна", "email": "Anna@Example.com",
                       "phone": "+7 912 345 67 89"}, region="RU", locale="ru", source_url=None,
                       client_id=f"concurrent-{i:04d}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    c = counts(hub)
    assert (c["Contact"], c["Identity"], c["FormSubmission"]) == (1, 2, 8)
