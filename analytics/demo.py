"""Demo data that makes the dashboards tell something (idempotent: a second run adds nothing).

Two years of a shop's customers: people arriving through the newsletter form (with UTM parameters
from a spring and an autumn campaign), a VK advert's form, inbound email, SMS and calls; orders
drawn from the BG/NBD story (each with their own pace and a chance to drop out after every order), so
cohorts fade, some customers lapse and come back, and the value model has something to learn; survey
answers by email and SMS; agents' replies. Then one recompute, so the pages are full on first visit.
History goes in through `post_events` without triggers (no survey invitation for an invented order),
in one batch after the customers are written."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from hub import clock
from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.ingest import InboundEvent, post_events
from hub.models import Direction, Role, TimelineEvent, User
from hub.demo import history_session

if TYPE_CHECKING:
    from hub.runtime import Hub

MARK = "analytics-demo"
PEOPLE = 160
SOURCES = (  # (weight, channel, kind, form name, utm)
    (30, "forms", "form.submitted", "Подписка на новости", {"source": "newsletter", "medium": "email", "campaign": "spring"}),
    (20, "forms", "form.submitted", "Подписка на новости", {"source": "newsletter", "medium": "email", "campaign": "autumn"}),
    (20, "forms", "form.submitted", "Заявка с сайта", {"source": "vk", "medium": "cpc", "campaign": "vk-ads"}),
    (15, "email", "message", None, None),
    (10, "sms", "message", None, None),
    (5, "phone", "call", None, None),
)


def demo(hub: Hub, *, seed: int) -> str:
    with hub.session(read_only=True) as session:
        if session.scalars(select(TimelineEvent.id).where(TimelineEvent.external_id == f"{MARK}:0:first")).first():
            return "the analytics demo customers are already there (/analytics)"
    rng = random.Random(f"{MARK}:{seed}")
    now = clock.now()
    start = now - timedelta(days=730)
    session = history_session(hub)
    orders = answers = 0
    history: list[InboundEvent] = []
    with session, session.begin():
        agents = list(session.scalars(select(User.id).where(User.is_active.is_(True), User.role == Role.AGENT)))
        survey_id = _survey(session)
        for i in range(PEOPLE):
            arrived = start + timedelta(days=rng.uniform(0, 700))
            contact = create_contact(session, actor=SYSTEM, region="RU", display_name=_name(rng, i),
                                     locale="ru" if rng.random() < 0.8 else "en")
            contact.created_at = arrived
            _, channel, kind, form_name, utm = rng.choices(SOURCES, weights=[s[0] for s in SOURCES])[0]
            data: dict[str, Any] = {}
            if form_name:
                url = f"https://shop.example/landing?utm_source={utm['source']}&utm_medium={utm['medium']}" \
                      f"&utm_campaign={utm['campaign']}"
                data = {"form": "demo", "form_name": form_name, "source_url": url, "utm": utm}
            history.append(InboundEvent(channel=channel, kind=kind, direction=Direction.IN,
                                        contact_id=contact.id, external_id=f"{MARK}:{i}:first",
                                        occurred_at=arrived, subject=form_name or "Первое обращение", data=data))
            if agents and channel in ("email", "sms"):
                history.append(InboundEvent(
                    channel=channel, kind="message", direction=Direction.OUT, contact_id=contact.id,
                    external_id=f"{MARK}:{i}:reply", occurred_at=arrived + timedelta(hours=rng.uniform(0.2, 20)),
                    subject="Ответ", actor_user_id=rng.choice(agents)))
            if rng.random() < 0.25:
                continue  # never bought
            placed = _orders(history, rng, contact.id, i, arrived + timedelta(days=rng.expovariate(1 / 20)), now)
            orders += placed
            if placed and rng.random() < 0.6:
                answers += _answer(session, rng, survey_id, contact.id, now, arrived)
        post_events(session, events=history)
    from analytics.compute import run
    from analytics.extension import AnalyticsSettings

    extension = getattr(hub, "extensions", {}).get("analytics")
    run(hub, options=(extension.settings if extension else AnalyticsSettings()).options())  # type: ignore[attr-defined]
    return f"analytics: {PEOPLE} customers over two years, {orders} orders, {answers} survey answers (/analytics)"


def _name(rng: random.Random, i: int) -> str:
    first = ("Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Иван", "Ксения", "Лев", "Мария", "Никита")
    last = ("Орлова", "Петров", "Романова", "Смирнов", "Титова", "Устинов", "Фролова", "Харитонов")
    return f"{first[i % len(first)]} {last[rng.randrange(len(last))]} ({i + 1})"


def _orders(history: list[InboundEvent], rng: random.Random, contact_id: int, i: int, first: datetime,
            now: datetime) -> int:
    """Orders from the BG/NBD story (a weekly pace from Gamma(0.9, 1/6), a drop-out chance from Beta(0.7, 3)),
    added to `history`; how many."""
    pace, drop = rng.gammavariate(0.9, 1 / 6.0), rng.betavariate(0.7, 3.0)
    basket = rng.gammavariate(4.0, 900.0)
    at, n = first, 0
    while at < now:
        amount = Decimal(str(round(rng.gammavariate(6.0, basket / 6.0), -1))) + Decimal("0.00")
        history.append(InboundEvent(
            channel="commerce", kind="order.completed", direction=Direction.IN, contact_id=contact_id,
            external_id=f"{MARK}:shop:{i}-{n}", occurred_at=at, subject=f"Order A{i}-{n} completed",
            data={"source": "demo-shop", "order": {"order_id": f"A{i}-{n}", "amount": f"{amount:.2f}",
                                                   "currency": "RUB", "items": []}}))
        n += 1
        if rng.random() < drop:
            break
        at += timedelta(weeks=rng.expovariate(pace) if pace > 0 else 1000)
    return n


def _survey(session: Any) -> int:
    from campaigns.surveys.models import Survey

    survey = Survey(name="Оценка после заказа (демо аналитики)", status="closed",
                    title={"ru": "Как вам заказ?", "en": "How was your order?"})
    session.add(survey)
    session.flush()
    return survey.id  # type: ignore[return-value]


def _answer(session: Any, rng: random.Random, survey_id: int, contact_id: int, now: datetime, after: datetime) -> int:
    from campaigns.surveys.models import SurveyInvitation, SurveyResponse

    at = after + (now - after) * rng.random()
    channel = "email" if rng.random() < 0.65 else "sms"
    # SMS answers run a little colder: a pattern the channel breakdown should show.
    nps = max(0, min(10, round(rng.gauss(8.2 if channel == "email" else 6.8, 2))))
    csat = max(1, min(5, round(rng.gauss(4.2 if channel == "email" else 3.6, 0.9))))
    invitation = SurveyInvitation(survey_id=survey_id, contact_id=contact_id, cause=f"{MARK}:{contact_id}",
                                  nonce=secrets.token_hex(16), status="answered", send_at=at, sent_at=at, channel=channel)
    session.add(invitation)
    session.flush()
    session.add(SurveyResponse(invitation_id=invitation.id, survey_id=survey_id, contact_id=contact_id, completed=True,
                               nps=nps, csat=csat, submitted_at=at, answers={"nps": nps, "csat": csat}))
    return 1
