"""Demo data: a post-sale NPS survey, sent after some of the demo orders, with a few answers.

Idempotent: the survey is found by name, invitations are unique per (survey, contact, cause), and a
response is only added where there is none. Nothing is queued for sending: the demo invitations
are recorded as already sent, so loading the demo never emails anyone.
"""

from __future__ import annotations

import random
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from campaigns.surveys.answers import open_link, save_answers
from campaigns.surveys.links import sample_links, token_for
from campaigns.surveys.models import InvitationStatus, Survey, SurveyInvitation, SurveyResponse
from campaigns.surveys.service import SurveyIn, order_context, create_survey
from hub import clock
from hub.auth import SYSTEM
from hub.db import insert_ignore
from hub.models import Contact, TimelineEvent

if TYPE_CHECKING:
    from hub.runtime import Hub

NAME = "NPS после покупки"
INVITED = 16

DEFINITION = {
    "name": NAME, "status": "active", "trigger_kind": "order.completed", "delay_minutes": 3 * 24 * 60,
    "channels": ["email", "sms"], "reminder_days": 3, "expiry_days": 14, "cooldown_days": 60,
    "title": {"ru": "Как прошла покупка?", "en": "How was your purchase?"},
    "intro": {"ru": "Два коротких вопроса о вашем последнем заказе.", "en": "Two short questions about your last order."},
    "thanks": {"ru": "Спасибо! Мы читаем каждый ответ.", "en": "Thank you! We read every answer."},
    "questions": [
        {"key": "nps", "kind": "nps", "required": True,
         "text": {"ru": "Насколько вероятно, что вы порекомендуете нас друзьям?",
                  "en": "How likely are you to recommend us to a friend?"}},
        {"key": "wrong", "kind": "text", "show_if": {"question": "nps", "max": 6},
         "text": {"ru": "Что пошло не так?", "en": "What went wrong?"}},
        {"key": "csat", "kind": "csat", "text": {"ru": "Насколько вы довольны доставкой?",
                                                 "en": "How satisfied are you with the delivery?"}},
        {"key": "liked", "kind": "multiple", "text": {"ru": "Что вам понравилось?", "en": "What did you like?"},
         "options": [{"key": "price", "text": {"ru": "Цена", "en": "Price"}},
                     {"key": "speed", "text": {"ru": "Скорость доставки", "en": "Delivery speed"}},
                     {"key": "staff", "text": {"ru": "Вежливые сотрудники", "en": "Friendly staff"}}]},
        {"key": "comment", "kind": "text", "text": {"ru": "Что нам улучшить?", "en": "What should we improve?"}},
    ],
}
COMPLAINTS = {
    "ru": ["Курьер опоздал на два часа.", "Коробка пришла мятая.", "Долго не могли дозвониться в поддержку."],
    "en": ["The courier was two hours late.", "The box arrived dented.", "Support took ages to answer the phone."],
}
IDEAS = {
    "ru": ["Добавьте доставку по выходным.", "Хотелось бы больше способов оплаты.", ""],
    "en": ["Please deliver on weekends.", "More ways to pay would help.", ""],
}


def demo(hub: Hub, *, seed: int) -> str:
    """Create the demo survey and answer it for some demo customers; one line saying what was added."""
    rng = random.Random(f"surveys-demo:{seed}")
    with hub.session() as session, session.begin():
        survey = session.scalars(select(Survey).where(Survey.name == NAME)).first()
        created = survey is None
        if survey is None:
            survey = create_survey(session, actor=SYSTEM, data=SurveyIn.model_validate(DEFINITION))
        survey_id = survey.id
        orders = list(session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == "order.completed")
            .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc()).limit(INVITED * 4)))
    seen: set[int] = set()
    picked = []
    for event in rng.sample(orders, len(orders)):
        if event.contact_id not in seen:
            seen.add(event.contact_id)
            picked.append(event)
        if len(picked) == INVITED:
            break
    now = clock.now()
    added = answered = 0
    for n, event in enumerate(picked):
        with hub.session() as session, session.begin():
            new_id = insert_ignore(session, SurveyInvitation, dict(
                survey_id=survey_id, contact_id=event.contact_id, cause=f"demo:{event.id}",
                nonce=secrets.token_urlsafe(24), status=InvitationStatus.SENT.value,
                send_at=now - timedelta(days=n + 1), sent_at=now - timedelta(days=n + 1), channel="email",
                expires_at=now + timedelta(days=14), source_event_id=event.id, context=order_context(event),
                created_at=now,
            ), ["survey_id", "contact_id", "cause"])
            added += new_id is not None
        if n % 4 == 3:
            continue  # not everyone answers
        with hub.session() as session:
            invitation = session.scalars(select(SurveyInvitation).where(
                SurveyInvitation.survey_id == survey_id, SurveyInvitation.contact_id == event.contact_id,
                SurveyInvitation.cause == f"demo:{event.id}")).one()
            if session.scalars(select(SurveyResponse.id).where(
                    SurveyResponse.invitation_id == invitation.id)).first() is not None:
                continue
            contact = session.get(Contact, event.contact_id)
            locale = (contact.locale if contact else None) or "ru"
            score = rng.choice([10, 10, 9, 9, 9, 8, 8, 7, 6, 4, 2])
            form = {"q_nps": [str(score)], "q_csat": [str(rng.choice([5, 5, 4, 4, 3, 2]))],
                    "q_liked": rng.sample(["price", "speed", "staff"], rng.randint(0, 2)),
                    "q_comment": [rng.choice(IDEAS[locale])]}
            if score <= 6:
                form["q_wrong"] = [rng.choice(COMPLAINTS[locale])]
            link = open_link(session, hub.settings, token_for(hub.settings, invitation))
            response = save_answers(session, link=link, form=form, complete=True, locale=locale)
            assert response is not None  # only a draft can find nothing to save
            # Spread the answers over the past weeks, so the trend chart has a shape.
            session.execute(update(SurveyResponse).where(SurveyResponse.id == response.id).values(
                submitted_at=invitation.sent_at + timedelta(hours=rng.randint(2, 60))))  # type: ignore[operator]
            session.commit()
            answered += 1
    what = "created" if created else "found"
    with hub.session(read_only=True) as session:
        link = sample_links(session, hub.settings, [survey_id], now=clock.now()).get(survey_id)
    answer = f"; answer it as a customer: {link}" if link else ""
    return f"survey {NAME!r} {what}; {added} invitations and {answered} answers added{answer}"
