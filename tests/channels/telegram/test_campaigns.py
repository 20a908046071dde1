"""A marketer's Telegram campaign through the real API and the package's local Bot API: a Telegram
template, a campaign on the channel, sent to the contacts that have a Telegram identity and consent,
with the /stop wording and button; bad channels are refused with the installed ones named."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from campaigns import runs
from campaigns.message_templates.models import MessageTemplate
from campaigns.models import CampaignRecipient
from campaigns.segments.models import Segment
from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.models import Delivery, DeliveryStatus
from hub.worker import Worker
from hub_telegram.updates import STOP_BUTTON
from tests.channels.telegram.harness import World
from tests.channels.telegram.test_telegram import contact_of

ANNA, BORIS = 111111111, 222222222
TEMPLATE = {"name": "Весна в Telegram", "channel": "telegram", "default_locale": "ru",
            "variants": {"ru": {"text": "{{ contact.first_name }}, весенняя распродажа!"},
                         "en": {"text": "{{ contact.first_name }}, spring sale!"}}}


def templates(world: World) -> int:
    with world.hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(MessageTemplate)) or 0


def segment_of_bot_users_and_newsletter(world: World) -> int:
    """Everyone who wrote to the bot, and everyone tagged news (some of them have no Telegram)."""
    with world.hub.session() as s, s.begin():
        segment = Segment(name="Bot users", definition={"type": "or", "conditions": [
            {"type": "activity", "channel": "telegram", "direction": "in"},
            {"type": "tag", "op": "has", "tag": "news"}]})
        s.add(segment)
        s.flush()
        return segment.id  # type: ignore[return-value]


@pytest.mark.any_store
def test_a_telegram_template_names_only_what_telegram_carries(world: World, api_key: Any) -> None:
    headers = api_key("campaigns:read", "campaigns:write")
    api = f"{world.url}/api/v1"
    channels = world.http.get(f"{api}/templates/channels", headers=headers).json()["items"]
    telegram = next(c for c in channels if c["name"] == "telegram")
    assert [p["name"] for p in telegram["parts"]] == ["text"] and telegram["parts"][0]["max_chars"] == 4096
    assert {"email", "sms", "telegram"} <= {c["name"] for c in channels}
    created = world.http.post(f"{api}/templates", json=TEMPLATE, headers=headers)
    assert created.status_code == 201 and created.json()["channel"] == "telegram"
    # Bad input: a channel that is not installed, a part Telegram has no room for, an empty text.
    unknown = world.http.post(f"{api}/templates", json={**TEMPLATE, "name": "x", "channel": "pigeon"}, headers=headers)
    assert unknown.status_code == 422
    assert "email" in unknown.text and "telegram" in unknown.text and "pigeon" in unknown.text
    subject = world.http.post(f"{api}/templates", headers=headers, json={
        **TEMPLATE, "name": "y", "variants": {"ru": {"text": "Привет", "subject": "Тема"}}})
    assert subject.status_code == 422 and "subject" in subject.text
    empty = world.http.post(f"{api}/templates", headers=headers, json={**TEMPLATE, "name": "z", "variants": {"ru": {"text": " "}}})
    assert empty.status_code == 422
    assert templates(world) == 1


@pytest.mark.any_store
def test_a_telegram_campaign_reaches_bot_users_with_consent_and_the_stop_wording(world: World, api_key: Any) -> None:
    headers = api_key("campaigns:read", "campaigns:write")
    api = f"{world.url}/api/v1"
    world.api.say(ANNA, "Привет", first_name="Анна")
    world.api.say(BORIS, "Hi", first_name="Boris")
    world.api.say(BORIS, "/stop")  # Boris withdrew marketing by Telegram
    with world.hub.session() as s, s.begin():
        create_contact(s, actor=SYSTEM, region="RU", display_name="Вера", tags=["news"],
                       identities=[IdentityIn(kind="email", value="vera@example.org")])
    template = world.http.post(f"{api}/templates", json=TEMPLATE, headers=headers).json()["id"]
    created = world.http.post(f"{api}/campaigns", headers=headers, json={
        "name": "Весна", "channel": "telegram", "segment_id": segment_of_bot_users_and_newsletter(world),
        "steps": [{"template_id": template}]})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert world.http.post(f"{api}/campaigns/{campaign_id}/schedule", headers=headers).status_code == 200
    runs.dispatch_due(world.hub)
    runs.materialise_due(world.hub)
    with world.hub.session(read_only=True) as s:
        statuses = sorted(r.status for r in s.scalars(select(CampaignRecipient)).all())
    assert statuses == ["done", "done", "no_address"]  # Vera has no Telegram identity
    Worker(world.hub).tick()
    [sent] = world.api.sent  # Boris's message was queued and then skipped: he said /stop
    assert sent.chat_id == ANNA
    assert sent.message.text.startswith("Анна, весенняя распродажа!")
    assert sent.message.text.endswith("Чтобы отписаться, отправьте /stop.")
    assert "Reply STOP" not in sent.message.text and "/u/" not in sent.message.text
    assert sent.message.reply_markup.inline_keyboard[0][0].callback_data == STOP_BUTTON
    with world.hub.session(read_only=True) as s:
        by_address = {d.address: d for d in s.scalars(select(Delivery)).all()}
    assert by_address[str(ANNA)].status == DeliveryStatus.SENT
    assert by_address[str(BORIS)].status == DeliveryStatus.CANCELLED
    assert "withdrew marketing consent for telegram" in by_address[str(BORIS)].last_error
    assert world.api.violations == []
    assert contact_of(world, ANNA).id != contact_of(world, BORIS).id


@pytest.mark.any_store
def test_a_campaign_on_a_channel_that_does_not_send_to_contacts_is_refused(world: World, api_key: Any) -> None:
    headers = api_key("campaigns:read", "campaigns:write")
    api = f"{world.url}/api/v1"
    template = world.http.post(f"{api}/templates", json=TEMPLATE, headers=headers).json()["id"]
    segment = segment_of_bot_users_and_newsletter(world)
    for channel in ("phone", "pigeon"):
        refused = world.http.post(f"{api}/campaigns", headers=headers, json={
            "name": f"Via {channel}", "channel": channel, "segment_id": segment,
            "steps": [{"template_id": template}]})
        assert refused.status_code == 422, refused.text


@pytest.mark.any_store
def test_the_marketers_pages_offer_telegram_with_its_own_parts(world: World) -> None:
    from fastapi.testclient import TestClient

    from hub.app import create_app
    from hub.models import Role
    from tests.web.conftest import ORIGIN, login

    with TestClient(create_app(world.hub, check_schema=False, start_worker=False), base_url=ORIGIN) as web:
        csrf = login(web, world.hub, "m@example.com", role=Role.MARKETER, locale="ru")
        listed = web.get("/message-templates")
        assert 'href="/message-templates/new?channel=telegram"' in listed.text
        editor = web.get("/message-templates/new?channel=telegram")
        assert editor.status_code == 200 and 'name="v:ru:text"' in editor.text and "v:ru:subject" not in editor.text
        assert web.get("/message-templates/new?channel=pigeon").status_code == 404
        hx = {"Origin": ORIGIN, "HX-Request": "true", "X-CSRF-Token": csrf}
        form = {"channel": "telegram", "name": "Весна", "default_locale": "ru", "v:ru:text": "Привет, {{ contact.first_name }}!"}
        preview = web.post("/message-templates/preview", headers=hx, data=form)
        assert preview.status_code == 200 and "Привет, Анна!" in preview.text and "Telegram" in preview.text
        saved = web.post("/message-templates/new", headers={"Origin": ORIGIN}, data={**form, "csrf_token": csrf},
                         follow_redirects=False)
        assert saved.status_code == 303, saved.text
        refused = web.post("/message-templates/new", headers={"Origin": ORIGIN},
                           data={**form, "channel": "pigeon", "name": "x", "csrf_token": csrf})
        assert refused.status_code == 422 and templates(world) == 1
        campaign = web.get("/campaigns/new")
        assert '<option value="telegram"' in campaign.text and '<option value="phone"' not in campaign.text
        survey = web.get("/surveys/new")
        assert '<option value="telegram,email">Telegram, иначе' in survey.text and '<option value="telegram">' in survey.text


@pytest.mark.any_store
def test_a_survey_lists_telegram_among_its_channels_and_falls_back_in_order(world: World) -> None:
    """Telegram first, then SMS, then email: a contact without Telegram gets the SMS, with STOP wording."""
    from pydantic import ValidationError

    from campaigns.surveys.models import Survey
    from campaigns.surveys.service import SurveyIn, send_due, send_to_contacts
    from tests.campaigns.surveys.conftest import make_survey, survey_data

    with pytest.raises(ValidationError, match="email, sms, telegram"):
        SurveyIn.model_validate(survey_data(channels=["telegram", "pigeon"]))
    world.api.say(ANNA, "Спасибо за заказ", first_name="Анна")
    anna = contact_of(world, ANNA)
    with world.hub.session() as s, s.begin():
        vera = create_contact(s, actor=SYSTEM, region="RU", display_name="Вера", locale="en",
                              identities=[IdentityIn(kind="phone", value="+79161234567"),
                                          IdentityIn(kind="email", value="vera@example.org")]).id
    sms = world.hub.channels["sms"]
    sms.settings = type(sms.settings)(account_sid="AC" + "0" * 32, auth_token="x" * 32, from_number="+15005550006")
    survey = make_survey(world.hub, delay_minutes=0, channels=["telegram", "sms", "email"])
    with world.hub.session() as s, s.begin():
        send_to_contacts(s, survey=s.get(Survey, survey.id), contact_ids=[anna.id, vera], batch="tg")
    assert send_due(world.hub) == 2
    with world.hub.session(read_only=True) as s:
        queued = {d.contact_id: d for d in s.scalars(select(Delivery)).all()}
    assert queued[anna.id].channel == "telegram" and queued[anna.id].content["text"].endswith("отправьте /stop.")
    assert queued[vera].channel == "sms" and queued[vera].content["text"].endswith("Reply STOP to opt out")
    assert "/s/" in queued[vera].content["text"] and "buttons" not in queued[vera].content
