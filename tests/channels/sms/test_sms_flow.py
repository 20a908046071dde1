"""SMS end to end: the agent's API, the outbox worker, the real twilio SDK, the local Twilio server,
and its signed callbacks back through the hub's real routes. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from standins.twilio_local.server import Seen
from hub import outbox
from hub.auth import SYSTEM
from hub.clock import now
from hub.contacts import IdentityIn, create_contact
from hub.models import (
    ConsentRecord,
    Contact,
    Delivery,
    DeliveryStatus,
    IdentityKind,
    PendingStatus,
    Purpose,
    TimelineEvent,
)
from hub.worker import Worker
from tests.channels.sms.harness import HUB_NUMBER, World, make_world

CUSTOMER = "+15005550009"


def make_contact(world: World, phone: str = CUSTOMER, name: str = "Ada Lovelace") -> int:
    with world.hub.session() as s, s.begin():
        contact = create_contact(s, actor=SYSTEM, region=world.hub.settings.default_region, display_name=name,
                                 identities=[IdentityIn(kind=IdentityKind.PHONE, value=phone)])
        return contact.id  # type: ignore[return-value]


def compose(world: World, api_key: Any, contact_id: int, text: str = "Your order has shipped.", **extra: Any) -> Any:
    """POST /channels/sms/messages; `api_key` is the fixture, or ready headers to reuse one key."""
    headers = api_key if isinstance(api_key, dict) else api_key("timeline:write")
    return world.http.post(f"{world.url}/channels/sms/messages", headers=headers,
                           json={"contact_id": contact_id, "text": text, **extra})


def delivery(world: World, delivery_id: int) -> Delivery:
    with world.hub.session(read_only=True) as s:
        return s.get(Delivery, delivery_id)  # type: ignore[return-value]


def count(world: World, model: Any, *where: Any) -> int:
    with world.hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))  # type: ignore[return-value]


def message_posts(world: World) -> list[Seen]:
    return [s for s in world.server.seen if s.method == "POST" and s.path.endswith("/Messages.json")]


def consent(world: World, contact_id: int) -> list[tuple[str, str, str]]:
    with world.hub.session(read_only=True) as s:
        rows = s.scalars(select(ConsentRecord).where(ConsentRecord.contact_id == contact_id)
                         .order_by(ConsentRecord.id)).all()
        return [(r.purpose, r.status, r.source) for r in rows]


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_send_then_scrambled_repeated_callbacks_end_delivered(world: World, api_key: Any, order: str) -> None:
    contact_id = make_contact(world)
    answer = compose(world, api_key, contact_id, "Привет! Ваш заказ отправлен 📦")
    assert answer.status_code == 202, answer.text
    assert answer.json()["segments"]["encoding"] == "ucs-2"
    delivery_id = answer.json()["delivery_id"]
    assert Worker(world.hub).tick() == 1

    sent = delivery(world, delivery_id)
    assert sent.status == DeliveryStatus.SENT
    (request,) = message_posts(world)
    assert sent.provider_id == world.server.messages[sent.provider_id]["sid"]
    assert request.params["StatusCallback"] == f"{world.url}/channels/sms/status"
    assert request.params["From"] == HUB_NUMBER and request.params["To"] == CUSTOMER

    answers = world.server.flush_callbacks(order=order, duplicate=True)  # type: ignore[arg-type]
    statuses = [a.params["MessageStatus"] for a in answers]
    assert sorted(set(statuses)) == ["delivered", "queued", "sent"] and len(statuses) > 3
    assert all(a.status_code == 200 for a in answers)
    done = delivery(world, delivery_id)
    assert done.status == DeliveryStatus.DELIVERED
    with world.hub.session(read_only=True) as s:
        event = s.get(TimelineEvent, done.event_id)
        assert event.status == DeliveryStatus.DELIVERED and event.data["provider_id"] == sent.provider_id
    assert world.server.violations == []


def test_an_undelivered_message_keeps_the_carrier_error(world: World, api_key: Any) -> None:
    contact_id = make_contact(world)
    world.server.outcomes[CUSTOMER] = "undelivered"
    delivery_id = compose(world, api_key, contact_id).json()["delivery_id"]
    Worker(world.hub).tick()
    world.server.flush_callbacks(order="reversed", duplicate=True)
    done = delivery(world, delivery_id)
    assert done.status == DeliveryStatus.UNDELIVERED
    assert done.last_error == "Twilio error 30003"


def test_callbacks_that_arrive_before_the_send_is_recorded_are_kept_and_applied(hub: Any, api_key: Any) -> None:
    # The server posts every callback before it even answers the API call, so the hub hears
    # "delivered" for a MessageSid that no delivery carries yet.
    with make_world(hub, callback_mode="before_response", callback_order="reversed") as world:
        contact_id = make_contact(world)
        delivery_id = compose(world, api_key, contact_id).json()["delivery_id"]
        Worker(world.hub).tick()
        assert [d.status_code for d in world.server.signer.log] == [200, 200, 200]
        assert delivery(world, delivery_id).status == DeliveryStatus.DELIVERED
        assert count(world, PendingStatus) == 0


def test_duplicate_inbound_webhooks_give_one_event(world: World) -> None:
    first = world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "Can I move my delivery to Friday?", sid="SM" + "ab" * 16)
    again = world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "Can I move my delivery to Friday?", sid="SM" + "ab" * 16)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.body.startswith("<?xml") and "<Response" in first.body
    assert count(world, TimelineEvent, TimelineEvent.channel == "sms") == 1
    assert count(world, Contact) == 1
    with world.hub.session(read_only=True) as s:
        event = s.scalars(select(TimelineEvent)).one()
        assert event.thread_key == f"sms:{HUB_NUMBER}:{CUSTOMER}"


def test_mms_media_is_recorded(world: World) -> None:
    media = [("https://example.com/photo.jpg", "image/jpeg"), ("https://example.com/receipt.pdf", "application/pdf")]
    assert world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "See attached", media=media).status_code == 200
    with world.hub.session(read_only=True) as s:
        event = s.scalars(select(TimelineEvent)).one()
    assert event.external_id.startswith("MM")
    assert [(m["url"], m["content_type"]) for m in event.data["media"]] == media


def test_agent_reply_and_inbound_message_share_the_thread(world: World, api_key: Any) -> None:
    contact_id = make_contact(world)
    world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "Hello?")
    compose(world, api_key, contact_id, "Hello! How can we help?")
    with world.hub.session(read_only=True) as s:
        keys = set(s.scalars(select(TimelineEvent.thread_key).where(TimelineEvent.channel == "sms")))
    assert keys == {f"sms:{HUB_NUMBER}:{CUSTOMER}"}


def _inbound_params(world: World) -> dict[str, str]:
    return {"AccountSid": world.server.account_sid, "ApiVersion": "2010-04-01", "MessageSid": "SM" + "cd" * 16,
            "SmsSid": "SM" + "cd" * 16, "SmsStatus": "received", "From": CUSTOMER, "To": HUB_NUMBER,
            "Body": "STOP", "NumMedia": "0"}


def test_forged_missing_or_misplaced_signatures_get_403_and_store_nothing(world: World) -> None:
    params = _inbound_params(world)
    attempts = [
        world.post("/channels/sms/inbound", params, signature=None),
        world.post("/channels/sms/inbound", params, signature="bm90IGEgcmVhbCBzaWduYXR1cmU="),
        world.post("/channels/sms/inbound", params, signed_url="https://evil.example/channels/sms/inbound"),
        world.post("/channels/sms/inbound", {**params, "Body": "START"}, signature=_signature(world, params)),
        world.post("/channels/sms/status", {"MessageSid": "SM" + "ef" * 16, "MessageStatus": "delivered",
                                            "To": CUSTOMER, "From": HUB_NUMBER}, signature="forged"),
    ]
    assert [a.status_code for a in attempts] == [403] * 5
    assert attempts[0].headers["content-type"].startswith("application/problem+json")
    assert count(world, TimelineEvent) == count(world, Contact) == count(world, ConsentRecord) == 0
    assert count(world, PendingStatus) == 0
    # The same request, signed by Twilio's rules over the URL the hub is reachable at, goes in.
    assert world.post("/channels/sms/inbound", params).status_code == 200
    assert count(world, TimelineEvent) == 1


def _signature(world: World, params: dict[str, str]) -> str:
    from channels.twilio_common.signature import sign
    from tests.channels.sms.harness import AUTH_TOKEN

    return sign(token=AUTH_TOKEN, url=f"{world.url}/channels/sms/inbound", params=params)


def test_signatures_behind_a_reverse_proxy(hub: Any) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hub.example.com"}
    public = "https://hub.example.com/channels/sms/inbound"
    with make_world(hub, sms={"trusted_proxies": ["127.0.0.0/8"]}) as world:
        params = _inbound_params(world)
        assert world.post("/channels/sms/inbound", params, signed_url=public, headers=forwarded).status_code == 200
    with make_world(hub) as world:
        # The same headers from a peer that is not a configured proxy are not believed.
        params = {**_inbound_params(world), "MessageSid": "SM" + "9f" * 16}
        assert world.post("/channels/sms/inbound", params, signed_url=public, headers=forwarded).status_code == 403


def test_stop_then_start(world: World, api_key: Any) -> None:
    contact_id = make_contact(world)
    with world.hub.session() as s, s.begin():
        marketing = outbox.enqueue(s, channel="sms", address=CUSTOMER, content={"text": "Spring sale!"},
                                   idempotency_key="campaign-1", contact_id=contact_id, purpose=Purpose.MARKETING,
                                   send_after=now() + timedelta(days=1)).id
        reminder = outbox.enqueue(s, channel="sms", address=CUSTOMER, content={"text": "Your visit is tomorrow"},
                                  idempotency_key="reminder-1", contact_id=contact_id,
                                  send_after=now() + timedelta(days=1)).id

    assert world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "  stop ").status_code == 200
    assert [(p, st) for p, st, _ in consent(world, contact_id)] == [("marketing", "withdrawn"),
                                                                     ("transactional", "withdrawn")]
    assert all(source.startswith("sms keyword STOP (SM") for _, _, source in consent(world, contact_id))
    assert delivery(world, marketing).status == DeliveryStatus.CANCELLED
    assert delivery(world, reminder).status == DeliveryStatus.QUEUED
    refused = compose(world, api_key, contact_id)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/sms-opted-out"

    assert world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "Start").status_code == 200
    history = consent(world, contact_id)
    assert [(p, st) for p, st, _ in history[2:]] == [("marketing", "granted"), ("transactional", "granted")]
    assert history[-1][2].startswith("sms keyword START")
    assert compose(world, api_key, contact_id).status_code == 202
    assert world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "help").status_code == 200
    assert len(consent(world, contact_id)) == 4  # HELP changes nothing


def test_error_21610_withdraws_consent_and_is_never_retried(world: World, frozen_clock: Any, api_key: Any) -> None:
    contact_id = make_contact(world)
    world.server.opted_out.add(CUSTOMER)  # the customer texted STOP before the hub ever heard of it
    with world.hub.session() as s, s.begin():
        later = outbox.enqueue(s, channel="sms", address=CUSTOMER, content={"text": "Spring sale!"},
                               idempotency_key="campaign-2", contact_id=contact_id, purpose=Purpose.MARKETING,
                               send_after=frozen_clock.current + timedelta(hours=2)).id
    delivery_id = compose(world, api_key, contact_id).json()["delivery_id"]
    Worker(world.hub).tick()
    dead = delivery(world, delivery_id)
    assert dead.status == DeliveryStatus.DEAD and dead.attempts == 1
    assert "21610" in (dead.last_error or "")
    assert [(p, st) for p, st, _ in consent(world, contact_id)] == [("marketing", "withdrawn"),
                                                                     ("transactional", "withdrawn")]
    assert delivery(world, later).status == DeliveryStatus.CANCELLED
    frozen_clock.advance(days=1)
    Worker(world.hub).tick()
    assert len(message_posts(world)) == 1


def test_429_and_5xx_are_retried_with_backoff(world: World, frozen_clock: Any, api_key: Any) -> None:
    contact_id = make_contact(world)
    delivery_id = compose(world, api_key, contact_id).json()["delivery_id"]
    world.server.fail_next(429, retry_after="7")
    Worker(world.hub).tick()
    first = delivery(world, delivery_id)
    assert first.status == DeliveryStatus.QUEUED and "429" in (first.last_error or "")
    assert first.send_after == frozen_clock.current + timedelta(seconds=7)  # Retry-After honoured

    world.server.fail_next(503)
    frozen_clock.advance(seconds=7)
    Worker(world.hub).tick()
    second = delivery(world, delivery_id)
    assert second.status == DeliveryStatus.QUEUED and second.attempts == 2
    assert second.send_after > frozen_clock.current  # exponential backoff, not at once

    frozen_clock.current = second.send_after
    Worker(world.hub).tick()
    assert delivery(world, delivery_id).status == DeliveryStatus.SENT
    assert len(message_posts(world)) == 3


def test_bodies_over_twilios_limit_are_refused_before_any_api_call(world: World, api_key: Any) -> None:
    contact_id = make_contact(world)
    too_long = compose(world, api_key, contact_id, "a" * 1601)
    assert too_long.status_code == 422 and too_long.json()["type"] == "/problems/sms-too-long"
    with world.hub.session() as s, s.begin(), pytest.raises(ValueError, match="1600"):
        outbox.enqueue(s, channel="sms", address=CUSTOMER, content={"text": "a" * 1601}, idempotency_key="long")
    assert compose(world, api_key, contact_id, "a" * 1600).status_code == 202
    assert count(world, Delivery) == 1 and message_posts(world) == []


def test_compose_checks_the_number_and_the_scope(world: World, api_key: Any) -> None:
    contact_id = make_contact(world)
    assert compose(world, api_key, contact_id, to="+15005550123").status_code == 422
    assert compose(world, api_key, 999_999).status_code == 404
    denied = world.http.post(f"{world.url}/channels/sms/messages", headers=api_key("timeline:read"),
                             json={"contact_id": contact_id, "text": "hi"})
    assert denied.status_code == 403
    agent = api_key("timeline:write")
    same = [compose(world, agent, contact_id, client_id="draft-1").json()["delivery_id"] for _ in range(2)]
    assert same[0] == same[1] and count(world, Delivery) == 1


def test_segment_counter_endpoint(world: World, api_key: Any) -> None:
    answer = world.http.post(f"{world.url}/channels/sms/segments", headers=api_key("timeline:read"),
                             json={"text": "a" * 161})
    assert answer.status_code == 200
    assert answer.json()["segments"] == 2 and answer.json()["encoding"] == "gsm-7"
    assert world.http.post(f"{world.url}/channels/sms/segments", json={"text": "x"}).status_code == 401


def test_sms_is_unconfigured_without_credentials(hub: Any, api_key: Any) -> None:
    sms = hub.channels["sms"]
    assert sms.configured is False
    with make_world(hub, sms={"auth_token": None}) as world:
        contact_id = make_contact(world)
        refused = compose(world, api_key, contact_id)
        assert refused.status_code == 409 and refused.json()["type"] == "/problems/channel-not-configured"
        # No token, no webhook: nothing can be verified, so nothing is accepted.
        assert world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "hello").status_code == 403


def test_an_opt_out_in_plain_words_withdraws_consent_and_confirms_once(world: World, api_key: Any) -> None:
    contact_id = make_contact(world)
    with world.hub.session() as s, s.begin():
        marketing = outbox.enqueue(s, channel="sms", address=CUSTOMER, content={"text": "Spring sale!"},
                                   idempotency_key="campaign-2", contact_id=contact_id, purpose=Purpose.MARKETING,
                                   send_after=now() + timedelta(days=1)).id
    sid = "SM" + "cd" * 16
    answer = world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "Please stop texting me!", sid=sid)
    assert answer.status_code == 200
    # Twilio did not recognise these words, so the hub confirms, once, in the reply to the webhook.
    assert answer.body.count("<Message>") == 1 and "You are unsubscribed" in answer.body
    assert [(p, st) for p, st, _ in consent(world, contact_id)] == [("marketing", "withdrawn"),
                                                                     ("transactional", "withdrawn")]
    assert delivery(world, marketing).status == DeliveryStatus.CANCELLED
    assert compose(world, api_key, contact_id).status_code == 409
    # Twilio retries the same webhook: no second confirmation, no second consent record.
    again = world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "Please stop texting me!", sid=sid)
    assert again.status_code == 200 and "<Message>" not in again.body
    assert len(consent(world, contact_id)) == 2
    with world.hub.session(read_only=True) as s:
        event = s.scalars(select(TimelineEvent).where(TimelineEvent.external_id == sid)).one()
        assert event.data["opt_out"]["confirmation"].startswith("You are unsubscribed")


def test_a_russian_opt_out_is_confirmed_in_russian(world: World) -> None:
    contact_id = make_contact(world)
    answer = world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "Стоп.")
    assert answer.status_code == 200 and answer.body.count("<Message>") == 1 and "Вы отписались" in answer.body
    assert {st for _, st, _ in consent(world, contact_id)} == {"withdrawn"}


def test_twilios_own_keyword_gets_no_second_confirmation(world: World) -> None:
    contact_id = make_contact(world)
    answer = world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "STOP")
    assert answer.status_code == 200 and "<Message>" not in answer.body  # Twilio's own reply is the one
    assert {st for _, st, _ in consent(world, contact_id)} == {"withdrawn"}


def test_a_possible_opt_out_opens_a_task_and_keeps_consent(world: World, api_key: Any) -> None:
    from hub.models import Task

    contact_id = make_contact(world)
    answer = world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "stop sending me the wrong invoices?")
    assert answer.status_code == 200 and "<Message>" not in answer.body
    assert consent(world, contact_id) == []
    assert compose(world, api_key, contact_id).status_code == 202
    with world.hub.session(read_only=True) as s:
        (task,) = s.scalars(select(Task).where(Task.contact_id == contact_id)).all()
        event = s.scalars(select(TimelineEvent).where(TimelineEvent.channel == "sms",
                                                      TimelineEvent.direction == "in")).one()
        assert task.status == "open" and task.title.startswith("Возможно, Ada Lovelace просит больше не присылать SMS")
        assert "stop sending me the wrong invoices?" in (task.notes or "")
        assert task.source_event_id == event.id and event.data["opt_out"]["task_id"] == task.id
    # An ordinary message opens nothing.
    world.server.inbound_sms(CUSTOMER, HUB_NUMBER, "Can you cancel my appointment on Friday?")
    assert count(world, Task, Task.contact_id == contact_id) == 1
