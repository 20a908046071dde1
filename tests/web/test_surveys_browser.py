"""A customer answers a survey on a phone, in Russian, comes back and edits the answer; the answer
reaches the contact's timeline and a low score gives the owner a follow-up task."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.surveys.models import SurveyResponse
from hub.models import Role, Task, TimelineEvent
from tests.campaigns.surveys.conftest import configure, invite_now, make_contact, make_survey
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser
PHONE = {"viewport": {"width": 390, "height": 844}, "locale": "ru-RU", "is_mobile": True, "has_touch": True}


def test_a_customer_answers_on_a_phone_in_russian_and_edits_the_answer(live_server, new_page):
    hub = live_server.hub
    configure(hub, smtp_host="127.0.0.1", smtp_port=1)  # invitations are queued, not sent, in this test
    owner = live_server.user("owner@example.com", role=Role.AGENT, name="Олег Владелец")
    survey = make_survey(hub, delay_minutes=0)
    contact = make_contact(hub, owner_id=owner.id)
    _, token = invite_now(hub, survey, contact)

    page = new_page(**PHONE)
    page.goto(f"/s/{token}")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("Как прошла покупка?")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"

    nps = page.get_by_role("group", name=re.compile("Порекомендуете ли вы нас друзьям"))
    wrong = page.get_by_label(re.compile("Что пошло не так"))
    expect(wrong).to_be_hidden()  # asked only after a low score
    nps.get_by_role("radio", name="9", exact=True).focus()
    page.keyboard.press("Space")  # answered from the keyboard
    expect(wrong).to_be_hidden()
    nps.locator("label").nth(3).click()  # a tap on "3"
    expect(wrong).to_be_visible()
    wrong.fill("Курьер опоздал на два часа")
    page.get_by_role("group", name=re.compile("Где вы покупали")).get_by_text("На сайте").click()
    page.get_by_role("button", name="Отправить ответы").click()
    expect(page.get_by_role("status").first).to_contain_text("Спасибо!")
    expect(page.get_by_text("Курьер опоздал на два часа")).to_be_visible()

    # Later, from the same link: the answers are there and can be changed.
    page.goto(f"/s/{token}")
    expect(page.get_by_text("3/10")).to_be_visible()
    page.get_by_role("link", name="Изменить ответы").click()
    nps = page.get_by_role("group", name=re.compile("Порекомендуете ли вы нас друзьям"))
    expect(nps.get_by_role("radio", name="3", exact=True)).to_be_checked()
    nps.locator("label").nth(2).click()
    page.get_by_label(re.compile("Что пошло не так")).fill("Курьер опоздал, и коробка была мятая")
    page.get_by_role("button", name="Сохранить ответы").click()
    expect(page.get_by_text("Курьер опоздал, и коробка была мятая")).to_be_visible()

    with hub.session(read_only=True) as session:
        response = session.scalars(select(SurveyResponse)).one()
        event = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
        task = session.scalars(select(Task)).one()
    assert (response.nps, response.edits, response.locale) == (2, 1, "ru")
    assert response.answers["channel"] == "web"
    assert event.contact_id == contact.id and event.data["nps"] == 2
    assert task.assignee_id == owner.id and "коробка была мятая" not in task.notes  # opened once, by the first answer

    # The owner sees the answer on the contact's timeline and the task in their list.
    agent = new_page()
    sign_in(agent, "owner@example.com")
    agent.goto(f"/contacts/{contact.id}")
    answered = agent.locator(".event", has_text="Курьер опоздал, и коробка была мятая").first
    expect(answered).to_be_visible()
    expect(answered).to_contain_text("Survey answered")
    agent.goto("/tasks")
    expect(agent.get_by_role("cell", name=re.compile("^Низкая оценка в опросе от Анна Смирнова"))).to_be_visible()


@pytest.mark.any_store
def test_survey_pages_have_no_serious_accessibility_violations(live_server, new_page):
    from axe_playwright_python.sync_playwright import Axe

    hub = live_server.hub
    configure(hub, smtp_host="127.0.0.1", smtp_port=1)
    live_server.user("marketer@example.com", role=Role.MARKETER, name="Марина Маркетолог")
    survey = make_survey(hub, delay_minutes=0)
    _, token = invite_now(hub, survey, make_contact(hub))
    axe = Axe()
    found: dict[str, list[str]] = {}

    def check(page, label: str) -> None:  # type: ignore[no-untyped-def]
        bad = [v for v in axe.run(page).response["violations"] if v.get("impact") in ("serious", "critical")]
        if bad:
            found[label] = [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in bad]

    customer = new_page(**PHONE)
    for path in (f"/s/{token}", f"/s/{token}?lang=en", "/s/not-a-link"):
        customer.goto(path)
        check(customer, path)
    customer.goto(f"/s/{token}")
    customer.get_by_role("button", name="Отправить ответы").click()  # the required NPS is missing
    expect(customer.locator("#error-summary")).to_be_focused()
    check(customer, "errors")
    for viewport in ({"width": 1366, "height": 900}, {"width": 390, "height": 844}):
        page = new_page(viewport=viewport)
        sign_in(page, "marketer@example.com", next_path="/surveys")
        for path in ("/surveys", "/surveys/new", f"/surveys/{survey.id}", f"/surveys/{survey.id}/results"):
            page.goto(path)
            check(page, f"{path} @{viewport['width']}")
    assert found == {}, found
