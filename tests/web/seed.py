"""A realistic customer for the workspace's tests, screenshots and benchmark: plain functions, no fixtures."""

from __future__ import annotations

from datetime import timedelta

from hub import clock
from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact, record_consent
from hub.events import BusinessEvent, record_business_event
from hub.ingest import InboundEvent, post_event
from hub.models import ConsentStatus, Direction, IdentityKind
from hub.runtime import Hub
from hub.tasks import create_task


def seed_customer(hub: Hub, *, owner_id: int | None = None, assignee_id: int | None = None) -> int:
    """Maria: two orders, an email thread, an SMS exchange, calls, a survey answer, notes and a task."""
    now = clock.now()
    with hub.session() as session, session.begin():
        contact = create_contact(
            session, actor=SYSTEM, region=hub.settings.default_region, display_name="Мария Соколова",
            identities=[IdentityIn(kind=IdentityKind.EMAIL, value="maria.sokolova@example.ru"),
                        IdentityIn(kind=IdentityKind.PHONE, value="+7 916 555-12-34")],
            tags=["VIP", "Москва", "Золотая карта"], owner_id=owner_id, lifecycle_stage="customer",
            attributes={"city": "Москва", "customer_since": "2021", "preferred_store": "Тверская, 12",
                        "loyalty_card": "GOLD-88412"},
            time_zone="Europe/Moscow", locale="ru",
        )
        cid = contact.id
        record_consent(session, contact=contact, actor=SYSTEM, channel="email", status=ConsentStatus.GRANTED,
                       source="checkout", occurred_at=now - timedelta(days=90))
        record_consent(session, contact=contact, actor=SYSTEM, channel="sms", status=ConsentStatus.WITHDRAWN,
                       source="replied STOP", occurred_at=now - timedelta(days=10))
        for days, order_id, amount in ((40, "A-10021", "18490.00"), (6, "A-10388", "7250.50")):
            record_business_event(session, actor=SYSTEM, event=BusinessEvent.model_validate({
                "event_id": f"ord-{order_id}", "type": "order.completed", "source": "shop",
                "occurred_at": (now - timedelta(days=days)).isoformat(),
                "contact": {"email": "maria.sokolova@example.ru"},
                "order": {"order_id": order_id, "amount": amount, "currency": "RUB",
                          "items": [{"name": "Кофемашина" if days > 10 else "Кофе в зёрнах, 1 кг",
                                     "quantity": 1, "unit_price": amount}]},
            }))

        def post(minutes_ago: float, **values: object) -> None:
            post_event(session, event=InboundEvent(contact_id=cid, occurred_at=now - timedelta(minutes=minutes_ago),
                                                   **values))  # type: ignore[arg-type]

        thread = "email:<order-A-10388@example.ru>"
        post(5 * 1440 + 30, channel="email", kind="email", direction=Direction.IN, subject="Где мой заказ A-10388?",
             text="Здравствуйте! На прошлой неделе заказала кофе в зёрнах, а статус доставки не меняется уже три дня.",
             html="<p>Здравствуйте!</p><p>На прошлой неделе заказала <b>кофе в зёрнах</b>, а статус доставки "
                  "не меняется уже три дня.</p><p>Мария</p>", thread_key=thread)
        post(5 * 1440, channel="email", kind="email", direction=Direction.OUT, subject="Re: Где мой заказ A-10388?",
             text="Мария, добрый день! Посылка на сортировочном центре в Москве, доставим завтра.",
             thread_key=thread, status="read")
        post(4 * 1440, channel="email", kind="email", direction=Direction.IN, subject="Re: Где мой заказ A-10388?",
             text="Поняла, спасибо за быстрый ответ!", thread_key=thread)
        post(2 * 1440 + 200, channel="phone", kind="call.completed", direction=Direction.IN,
             subject="Звонок, 4 мин 12 с", text="Спрашивала, как очистить кофемашину от накипи.", data={"duration": 252})
        post(2 * 1440 + 180, channel="note", kind="note", direction=Direction.INTERNAL,
             text="Предпочитает почту звонкам. Интересуется курсом бариста в марте.")
        sms = "sms:+79165551234"
        post(1440 + 60, channel="sms", kind="sms", direction=Direction.OUT,
             text="Заказ A-10388 передан курьеру, доставка сегодня с 14:00 до 18:00.", thread_key=sms,
             status="delivered")
        post(1440 + 45, channel="sms", kind="sms", direction=Direction.IN, text="Спасибо! Оставьте, пожалуйста, у консьержа.",
             thread_key=sms)
        post(1440 + 40, channel="sms", kind="sms", direction=Direction.OUT, text="Хорошо, курьер передаст консьержу.",
             thread_key=sms, status="failed")
        post(300, channel="surveys", kind="survey.answered", direction=Direction.IN, subject="Оценка доставки",
             text="«Быстро и вежливо, спасибо!»", data={"score": 9, "scale": 10, "survey": "Delivery NPS"})
        post(90, channel="email", kind="email", direction=Direction.OUT, subject="Приглашение на курс бариста",
             text="Мы оставили для вас место на мартовском курсе бариста.", status="delivered")
        post(20, channel="phone", kind="call.missed", direction=Direction.IN, subject="Пропущенный звонок")
        create_task(session, actor=SYSTEM, title="Перезвонить насчёт курса бариста",
                    due_at=now + timedelta(hours=3), assignee_id=assignee_id, contact_id=cid)
        create_task(session, actor=SYSTEM, title="Отправить инструкцию по очистке от накипи", due_at=now - timedelta(hours=5),
                    assignee_id=assignee_id, contact_id=cid)
    return cid  # type: ignore[return-value]


def seed_events(hub: Hub, *, contact_id: int, count: int, channels: tuple[str, ...] = ("email", "sms", "phone", "note"),
                batch: int = 1000) -> None:
    """`count` older events on a contact's timeline, one minute apart, through the one write path."""
    start = clock.now() - timedelta(days=30)
    for first in range(0, count, batch):
        with hub.session() as session, session.begin():
            for n in range(first, min(first + batch, count)):
                channel = channels[n % len(channels)]
                post_event(session, event=InboundEvent(
                    contact_id=contact_id, channel=channel, kind="message" if channel != "note" else "note",
                    direction=Direction.IN if n % 2 else Direction.OUT, external_id=f"seed:{contact_id}:{n}",
                    occurred_at=start - timedelta(minutes=n), subject=f"Older message {n}",
                    text=f"Message number {n} on the {channel} channel.",
                    status=None if n % 2 else "delivered",
                ))
