"""Helpers for the survey tests: a survey, a contact that can be reached, and the link it was sent."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.surveys.links import token_for
from campaigns.surveys.models import Survey, SurveyInvitation
from campaigns.surveys.service import SurveyIn, create_survey, schedule_invitation, send_due
from hub import clock
from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.models import Contact, IdentityKind
from hub.runtime import Hub
from tests.channels.email.conftest import configure, start_smtp, stop_smtp  # noqa: F401  (re-exported)

QUESTIONS: list[dict[str, Any]] = [
    {"key": "nps", "kind": "nps", "required": True,
     "text": {"ru": "Порекомендуете ли вы нас друзьям?", "en": "How likely are you to recommend us?"}},
    {"key": "wrong", "kind": "text", "show_if": {"question": "nps", "max": 6},
     "text": {"ru": "Что пошло не так?", "en": "What went wrong?"}},
    {"key": "csat", "kind": "csat", "text": {"ru": "Насколько вы довольны доставкой?", "en": "How satisfied are you with delivery?"}},
    {"key": "channel", "kind": "single", "text": {"ru": "Где вы покупали?", "en": "Where did you buy?"},
     "options": [{"key": "web", "text": {"ru": "На сайте", "en": "Website"}},
                 {"key": "shop", "text": {"ru": "В магазине", "en": "In a shop"}}]},
    {"key": "liked", "kind": "multiple", "text": {"ru": "Что понравилось?", "en": "What did you like?"},
     "options": [{"key": "price", "text": {"ru": "Цена", "en": "Price"}},
                 {"key": "speed", "text": {"ru": "Скорость", "en": "Speed"}},
                 {"key": "staff", "text": {"ru": "Персонал", "en": "Staff"}}]},
    {"key": "stars", "kind": "rating", "scale": 5, "text": {"ru": "Оценка товара", "en": "Rate the product"}},
]


def survey_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "После покупки", "title": {"ru": "Как прошла покупка?", "en": "How was your purchase?"},
        "questions": QUESTIONS, "trigger_kind": "order.completed", "delay_minutes": 3 * 24 * 60,
        "channels": ["email", "sms"], "reminder_days": 2, "expiry_days": 7, "cooldown_days": 30,
        "status": "active",
    }
    data.update(overrides)
    return data


def make_survey(hub: Hub, **overrides: Any) -> Survey:
    with hub.session() as session, session.begin():
        survey = create_survey(session, actor=SYSTEM, data=SurveyIn.model_validate(survey_data(**overrides)))
        session.expunge(survey)
    return survey


def make_contact(hub: Hub, email: str | None = "anna@example.com", *, phone: str | None = None,
                 locale: str | None = "ru", owner_id: int | None = None, name: str = "Анна Смирнова") -> Contact:
    identities = []
    if email:
        identities.append(IdentityIn(kind=IdentityKind.EMAIL, value=email))
    if phone:
        identities.append(IdentityIn(kind=IdentityKind.PHONE, value=phone))
    with hub.session() as session, session.begin():
        contact = create_contact(session, actor=SYSTEM, region="RU", display_name=name, identities=identities,
                                 locale=locale, owner_id=owner_id)
        session.expunge(contact)
    return contact


def invite_now(hub: Hub, survey: Survey, contact: Contact, *, cause: str = "test:1") -> tuple[SurveyInvitation, str]:
    """Schedule and send an invitation at once; (invitation, token of its link)."""
    with hub.session() as session, session.begin():
        invitation = schedule_invitation(session, survey=session.get(Survey, survey.id), contact_id=contact.id,
                                         cause=cause, send_at=clock.now())
        assert invitation is not None
        invitation_id = invitation.id
    send_due(hub)
    with hub.session(read_only=True) as session:
        invitation = session.get(SurveyInvitation, invitation_id)
        session.expunge(invitation)
    return invitation, token_for(hub.settings, invitation)


def invitations(hub: Hub) -> list[SurveyInvitation]:
    with hub.session(read_only=True) as session:
        rows = list(session.scalars(select(SurveyInvitation).order_by(SurveyInvitation.id)))
        session.expunge_all()
    return rows


def link_in(text: str) -> str:
    match = re.search(r"/s/([A-Za-z0-9_\-.]+)", text)
    assert match, "no survey link in the message"
    return match.group(1)


@pytest.fixture
def email_ready(hub: Hub):  # type: ignore[no-untyped-def]
    """The email adapter configured (no server: nothing is sent unless a test runs the worker)."""
    return configure(hub, smtp_host="127.0.0.1", smtp_port=1)

