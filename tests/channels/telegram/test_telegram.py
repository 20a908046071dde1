"""The Telegram plug-in through the hub's real app and the package's local Bot API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import hub_telegram
from hub import outbox
from hub.auth import SYSTEM
from hub.contacts import IdentityIn, consent_status, create_contact
from hub.models import (
    ConsentRecord,
    Contact,
    Delivery,
    DeliveryStatus,
    Identity,
    IdentityKind,
    Purpose,
    TimelineEvent,
)
from hub.worker import Worker
from hub_telegram.polling import poll
from hub_telegram.updates import STOP_BUTTON
from tests.channels.telegram.harness import World, make_world

FIXTURES = Path(hub_telegram.__file__).parent / "fixtures"
USER = 123456789


def count(world: World, model: Any, *where: Any) -> int:
    with world.hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def contact_of(world: World, user_id: int) -> Contact:
    with world.hub.session(read_only=True) as s:
        contact_id = s.scalar(select(Identity.contact_id).where(Identity.kind == IdentityKind.TELEGRAM,
                                                                Identity.value == str(user_id)))
        assert contact_id is not None, f"no contact has Telegram user {user_id}"
        return s.get_one(Contact, contact_id)


def consent(world: World, contact_id: int, purpose: Purpose = Purpose.MARKETING) -> str | None:
    with world.hub.session(read_only=True) as s:
        return consent_status(s, contact_id=contact_id, channel="telegram", purpose=purpose)


def reply(world: World, api_key: Any, contact_id: int, text: str = "Привезём завтра.") -> Any:
    return world.http.post(f"{world.url}/channels/telegram/messages", headers=api_key(),
                           json={"contact_id": contact_id, "text": text})


def delivery(world: World, delivery_id: int) -> Delivery:
    with world.hub.session(read_only=True) as s:
        return s.get_one(Delivery, delivery_id)


# --- the webhook -------------------------------------------------------------------------------

@pytest.mark.any_store
def test_missing_or_wrong_secret_is_refused_and_changes_nothing(world: World) -> None:
    body = (FIXTURES / "text_message.json").read_bytes()
    for secret in (None, "", "wrong-secret-0123456789", "test-webhook-secret-012345678"):
        answer = world.post(body, secret=secret)
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert count(world, TimelineEvent) == 0 and count(world, Contact) == 0


@pytest.mark.any_store
def test_a_replayed_update_is_one_event(world: World) -> None:
    body = json.loads((FIXTURES / "text_message.json").read_text())
    first, again = world.post(body), world.post(body)
    assert first.status_code == again.status_code == 200
    assert first.json()["events"] == again.json()["events"]
    with world.hub.session(read_only=True) as s:
        event = s.scalars(select(TimelineEvent)).one()
        identity = s.scalars(select(Identity)).one()
    assert (event.channel, event.kind, event.external_id) == ("telegram", "message", f"{USER}:51")
    assert event.text == "Здравствуйте! Когда привезут заказ?"
    assert (identity.kind, identity.value) == ("telegram", str(USER))


@pytest.mark.any_store
def test_bad_payloads_get_clear_4xx_and_other_updates_are_acknowledged(world: World) -> None:
    assert world.post(b"{not json").status_code == 400
    unprocessable = world.post({"message": {"text": "no update_id"}})
    assert unprocessable.status_code == 422 and "Update" in unprocessable.json()["detail"]
    assert world.post(b"[1, 2]").status_code == 400
    edited = {"update_id": 5, "edited_message": {"message_id": 1, "date": 1767261600, "text": "x",
                                                 "chat": {"id": 1, "type": "private"}}}
    assert world.post(edited).status_code == 200  # 4xx would make Telegram resend it for ever
    assert count(world, TimelineEvent) == 0


@pytest.mark.any_store
def test_messages_from_the_local_api_reach_the_timeline(world: World) -> None:
    world.api.say(777, "Добрый день", first_name="Пётр")
    assert world.api.delivered[-1][1] == 200
    contact = contact_of(world, 777)
    assert contact.display_name == "Пётр"


# --- contacts and consent ----------------------------------------------------------------------

def test_sharing_a_phone_links_the_telegram_user_to_the_contact_who_has_it(world: World) -> None:
    with world.hub.session() as s, s.begin():
        known = create_contact(s, actor=SYSTEM, region="RU", display_name="Анна Смирнова",
                               identities=[IdentityIn(kind="phone", value="+7 916 123-45-67")]).id
    world.api.say(USER, "Здравствуйте")
    stranger = contact_of(world, USER).id
    assert stranger != known
    world.api.share_phone(USER, "79161234567")
    assert contact_of(world, USER).id == known  # the older contact survives, with the Telegram id
    with world.hub.session(read_only=True) as s:
        events = s.scalars(select(TimelineEvent.contact_id).where(TimelineEvent.channel == "telegram")).all()
        merged = s.get_one(Contact, stranger)
    assert set(events) == {known} and merged.merged_into == known


@pytest.mark.any_store
def test_a_shared_phone_nobody_has_joins_the_contact(world: World) -> None:
    world.api.say(USER, "Hi")
    world.api.share_phone(USER, "+7 903 555-12-12")
    contact = contact_of(world, USER)
    assert count(world, Identity, Identity.contact_id == contact.id, Identity.kind == "phone",
                 Identity.value == "+79035551212") == 1


def test_stop_withdraws_marketing_and_start_grants_it_again(world: World) -> None:
    world.api.say(USER, "Hello")
    contact_id = contact_of(world, USER).id
    with world.hub.session() as s, s.begin():
        queued = outbox.enqueue(s, channel="telegram", address=str(USER), content={"text": "Sale!"},
                                idempotency_key="tg-campaign-1", contact_id=contact_id, purpose=Purpose.MARKETING).id
    world.api.say(USER, "/stop")
    assert consent(world, contact_id) == "withdrawn"
    assert consent(world, contact_id, Purpose.TRANSACTIONAL) is None  # replies from agents still go
    assert delivery(world, queued).status == DeliveryStatus.CANCELLED
    with world.hub.session(read_only=True) as s:
        record = s.scalars(select(ConsentRecord).order_by(ConsentRecord.id.desc())).first()
    assert record.source.startswith("telegram command") and record.wording == "/stop"
    world.api.say(USER, "/start")
    assert consent(world, contact_id) == "granted"


@pytest.mark.any_store
def test_the_stop_button_withdraws_marketing(world: World) -> None:
    world.api.say(USER, "Hello")
    world.api.press(USER, STOP_BUTTON)
    assert consent(world, contact_of(world, USER).id) == "withdrawn"
    world.api.press(USER, "something-else")  # other buttons change nothing
    assert count(world, ConsentRecord) == 1


# --- sending -----------------------------------------------------------------------------------

@pytest.mark.any_store
def test_an_agent_reply_reaches_the_bot_api(world: World, api_key: Any) -> None:
    world.api.say(USER, "Когда доставка?")
    contact_id = contact_of(world, USER).id
    answer = reply(world, api_key, contact_id)
    assert answer.status_code == 202, answer.text
    assert Worker(world.hub).tick() == 1
    [sent] = world.api.sent
    assert (sent.chat_id, sent.message.text) == (USER, "Привезём завтра.")
    done = delivery(world, answer.json()["delivery_id"])
    assert done.status == DeliveryStatus.SENT and done.provider_id == f"{USER}:{sent.message.message_id}"
    assert world.api.violations == []


@pytest.mark.any_store
def test_replies_are_refused_without_a_chat_or_with_bad_input(world: World, api_key: Any) -> None:
    with world.hub.session() as s, s.begin():
        no_chat = create_contact(s, actor=SYSTEM, region="RU", display_name="Без Telegram").id
    refused = reply(world, api_key, no_chat)
    assert refused.status_code == 422 and refused.json()["type"] == "/problems/telegram-no-chat"
    world.api.say(USER, "Hi")
    long = reply(world, api_key, contact_of(world, USER).id, text="я" * 4097)
    assert long.status_code == 422 and long.json()["type"] == "/problems/telegram-too-long"
    assert reply(world, api_key, contact_of(world, USER).id, text="").status_code == 422
    assert count(world, Delivery) == 0


def test_a_blocked_bot_withdraws_consent_and_is_never_retried(world: World, api_key: Any) -> None:
    world.api.say(USER, "Hi")
    contact_id = contact_of(world, USER).id
    world.api.block(USER)
    delivery_id = reply(world, api_key, contact_id).json()["delivery_id"]
    Worker(world.hub).tick()
    dead = delivery(world, delivery_id)
    assert dead.status == DeliveryStatus.DEAD and dead.attempts == 1
    assert "blocked" in (dead.last_error or "")
    assert consent(world, contact_id) == consent(world, contact_id, Purpose.TRANSACTIONAL) == "withdrawn"
    refused = reply(world, api_key, contact_id)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/telegram-blocked"
    world.api.blocked.discard(USER)
    world.api.say(USER, "/start")
    assert reply(world, api_key, contact_id).status_code == 202


@pytest.mark.any_store
def test_campaign_messages_carry_the_stop_wording_and_button(world: World) -> None:
    from campaigns.models import Campaign
    from campaigns.runs import addresses_for, decorate

    world.api.say(USER, "Hi", first_name="Anna")
    contact = contact_of(world, USER)
    campaign = Campaign(id=7, name="Spring", channel="telegram")
    with world.hub.session() as s:
        assert addresses_for(s, channel="telegram", contact_ids=[contact.id]) == {contact.id: str(USER)}
    content = decorate(world.hub, campaign=campaign, contact=contact, content={"text": "Весенняя распродажа!"},
                       key="k1")
    assert content["text"].endswith("Чтобы отписаться, отправьте /stop.")  # the contact writes in Russian (ru)
    assert content["buttons"] == [{"text": "Отписаться", "callback_data": STOP_BUTTON}]
    with world.hub.session() as s, s.begin():
        outbox.enqueue(s, channel="telegram", address=str(USER), content=content, idempotency_key="camp-7",
                       contact_id=contact.id, purpose=Purpose.MARKETING)
    Worker(world.hub).tick()
    [sent] = world.api.sent
    assert "/stop" in sent.message.text
    assert sent.message.reply_markup.inline_keyboard[0][0].callback_data == STOP_BUTTON
    assert world.api.violations == []
    world.api.press(USER, STOP_BUTTON)  # the button under that very message
    assert consent(world, contact.id) == "withdrawn"


# --- long polling and the stand-in's contract ---------------------------------------------------

def test_long_polling_takes_each_update_once(hub: Any) -> None:
    with make_world(hub, mode="polling", webhook_secret=None) as world:
        world.api.say(USER, "one")
        world.api.say(USER, "two")
        assert poll(world.hub) == 2
        assert poll(world.hub) == 0  # the stored offset confirmed them
        world.api.say(USER, "/stop")
        assert poll(world.hub) == 1
        texts = [t for (t,) in world.hub.session(read_only=True).execute(
            select(TimelineEvent.text).order_by(TimelineEvent.id)).all()]
        assert texts == ["one", "two", "/stop"]
        assert consent(world, contact_of(world, USER).id) == "withdrawn"
        assert [job.id for job in world.hub.channels["telegram"].jobs()] == ["telegram.poll"]


@pytest.mark.any_store
def test_the_local_api_refuses_calls_the_library_does_not_model(world: World) -> None:
    base = world.api.api_base + world.api.token
    bad = world.http.post(f"{base}/sendMessage", json={"chat_id": 1, "text": "x", "colour": "red"})
    assert bad.status_code == 400 and world.api.violations and "colour" in world.api.violations[-1]
    markup = world.http.post(f"{base}/sendMessage", json={"chat_id": 1, "text": "x", "reply_markup": {"rows": []}})
    assert markup.status_code == 400 and "InlineKeyboardMarkup" in world.api.violations[-1]
    assert world.http.post(f"{base}/getMe").json()["result"]["is_bot"] is True


@pytest.mark.any_store
def test_an_agent_replies_from_the_contact_page(world: World) -> None:
    from fastapi.testclient import TestClient

    from hub.app import create_app
    from tests.web.conftest import ORIGIN, login

    world.api.say(USER, "Где мой заказ?")
    contact_id = contact_of(world, USER).id
    with TestClient(create_app(world.hub, check_schema=False, start_worker=False), base_url=ORIGIN) as web:
        token = login(web, world.hub, locale="ru")
        page = web.get(f"/contacts/{contact_id}")
        assert page.status_code == 200 and 'id="tab-telegram"' in page.text
        form = web.get(f"/contacts/{contact_id}/compose/telegram", headers={"HX-Request": "true"})
        assert form.status_code == 200 and "Отправить в Telegram" in form.text
        headers = {"Origin": ORIGIN, "HX-Request": "true"}
        empty = web.post(f"/contacts/{contact_id}/compose/telegram", data={"text": " ", "csrf_token": token},
                         headers=headers)
        assert empty.status_code == 422 and "Сначала напишите сообщение" in empty.text
        sent = web.post(f"/contacts/{contact_id}/compose/telegram",
                        data={"text": "Сегодня привезём.", "client_id": "tg-1", "csrf_token": token}, headers=headers)
        assert sent.status_code == 200 and "поставлено в очередь" in sent.text
        assert "timeline-refresh" in sent.headers["HX-Trigger"]
    Worker(world.hub).tick()
    assert world.api.sent[-1].message.text == "Сегодня привезём."


@pytest.mark.any_store
def test_survey_invitations_go_over_telegram_with_the_stop_wording(world: World) -> None:
    from campaigns.surveys.models import Survey
    from campaigns.surveys.service import send_due, send_to_contacts
    from tests.campaigns.surveys.conftest import make_survey

    world.api.say(USER, "Спасибо за заказ")
    contact = contact_of(world, USER)
    survey = make_survey(world.hub, delay_minutes=0, channels=["telegram", "email"])
    with world.hub.session() as s, s.begin():
        send_to_contacts(s, survey=s.get(Survey, survey.id), contact_ids=[contact.id], batch="tg")
    assert send_due(world.hub) == 1
    with world.hub.session(read_only=True) as s:
        [queued] = s.scalars(select(Delivery)).all()
    assert (queued.channel, queued.address) == ("telegram", str(USER))
    assert "/s/" in queued.content["text"] and queued.content["text"].endswith("отправьте /stop.")
    assert queued.content["buttons"][0]["callback_data"] == STOP_BUTTON
    Worker(world.hub).tick()
    assert world.api.sent[-1].message.reply_markup.inline_keyboard[0][0].callback_data == STOP_BUTTON
    assert world.api.violations == []
