"""Demo data for the agents' inbox (idempotent: a second run adds nothing).

Two teams — a round-the-clock contact centre for SMS, calls and forms, and an email desk with
London office hours — and three agents with their presence; open conversations on several
channels in every service-level state (one breached, one near breach, on time, waiting on the
customer, snoozed, unassigned email); a month of resolved ones with first-response and resolution
times, so the reports page has figures; shared and personal canned responses in Russian and English.

Unlike the other demos' invented history this goes through the real triggers: every message is
posted with `post_event` and the inbox's own trigger opens, joins, assigns and answers the
conversations (inbox.service); resolving and snoozing go through the service too."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.auth import SYSTEM, create_user, user_principal
from hub.contacts import IdentityIn, create_contact
from hub.ingest import InboundEvent, post_event
from hub.models import Direction, IdentityKind, Role, User
from inbox import canned, service, teams
from inbox.assignment import set_presence
from inbox.hours import DAYS
from inbox.models import Conversation, Presence, Priority, Status, Team

if TYPE_CHECKING:
    from hub.runtime import Hub

MARK = "inbox-demo"
DESK, MAIL = "Контакт-центр", "Email support"
# (email, name, locale, zone, presence); agent@example.com is the core demo's agent when it is there.
AGENTS = (("agent@example.com", "Мария Операторова", "ru", "Europe/Moscow", Presence.ONLINE),
          ("alexey@example.com", "Алексей Сменный", "ru", "Europe/Moscow", Presence.ONLINE),
          ("sam@example.com", "Sam Support", "en", "Europe/London", Presence.AWAY))
CANNED = (  # (shortcut, title, locale, body, shared)
    ("privet", "Приветствие", "ru", "Здравствуйте, {{ contact.first_name }}! Меня зовут {{ agent.first_name }}, "
     "я помогу разобраться.", True),
    ("dostavka", "Где заказ", "ru", "{{ contact.first_name }}, ваш заказ передан курьеру: он позвонит за час до "
     "приезда. Отследить доставку: {{ links.site }}", True),
    ("spasibo", "Закрыть вопрос", "ru", "Рады были помочь! Если появятся вопросы — просто ответьте на это сообщение. "
     "{{ agent.name }}", True),
    ("hello", "Greeting", "en", "Hello {{ contact.first_name }}, this is {{ agent.first_name }} — happy to help.", True),
    ("delivery", "Where is my order", "en", "{{ contact.first_name }}, your order is with the courier, who will "
     "call an hour ahead. Track it at {{ links.site }}", True),
    ("thanks", "Close the question", "en", "Glad we could help! Just reply if anything else comes up. "
     "{{ agent.name }}", True),
    ("perezvon", "Перезвоню", "ru", "Я перезвоню вам сегодня до 18:00. {{ agent.name }}", False),
)


@dataclass(frozen=True)
class Person:
    name: str
    locale: str
    phone: str | None = None
    email: str | None = None
    owned: bool = False  # the demo agent owns the contact: the owner rule gives her its conversations


# Open conversations: (person, channel, kind, minutes ago, text, what happens next).
OPEN = (
    (Person("Дмитрий Соколов", "ru", phone="+79161110001", owned=True), "sms", "message", 120,
     "Курьер так и не приехал, заказ №4512. Что происходит?", "breached"),
    (Person("Ольга Лебедева", "ru", phone="+79161110002", owned=True), "sms", "message", 20,
     "Можно сегодня изменить адрес доставки?", "near"),
    (Person("Иван Морозов", "ru", phone="+79161110003"), "phone", "call", 10, None, "missed call"),
    (Person("Grace Hall", "en", email="grace.hall@inbox-demo.example", phone="+447700900101"), "forms", "form.submitted", 5,
     "We'd like a coffee tasting at our office next week.", "form"),
    (Person("Анна Козлова", "ru", phone="+79161110004", owned=True), "sms", "message", 40,
     "Пришлите, пожалуйста, номер заказа — потеряла письмо.", "waiting"),
    (Person("Павел Новиков", "ru", phone="+79161110005", owned=True), "sms", "message", 30,
     "Напишите мне завтра утром, сейчас за рулём.", "snoozed"),
    (Person("Charlotte Evans", "en", email="charlotte.evans@inbox-demo.example"), "email", "message", 180,
     "Could you send an invoice for our last purchase, please?", "unassigned"),
    (Person("Елена Волкова", "ru", email="elena.volkova@inbox-demo.example"), "email", "message", 60,
     "Добрый день. Пришлите счёт на оплату для нашей компании.", "unassigned"),
    (Person("Thomas Green", "en", email="thomas.green@inbox-demo.example"), "email", "message", 25,
     "After descaling, my machine doesn't turn on any more. Urgent: we have guests at noon!", "urgent"),
)
HISTORY_PEOPLE = (
    ("Сергей Попов", "ru"), ("Наталья Васильева", "ru"), ("Oliver Wright", "en"), ("Михаил Зайцев", "ru"),
    ("Hannah Walker", "en"), ("Татьяна Павлова", "ru"), ("Егор Голубев", "ru"), ("Jessica Taylor", "en"),
    ("Ирина Фёдорова", "ru"), ("Daniel Hughes", "en"), ("Светлана Богданова", "ru"), ("Никита Семёнов", "ru"),
    ("Amelia Clarke", "en"), ("Андрей Виноградов", "ru"),
)
HISTORY_TEXT = {"ru": ("Подскажите, когда привезут заказ?", "Отвечаю: заказ у курьера, привезёт завтра."),
                "en": ("Hi, when will my order arrive?", "Hello! It is with the courier and arrives tomorrow.")}


def demo(hub: Hub, *, seed: int) -> str:
    with hub.session(read_only=True) as session:
        if session.scalars(select(Team.id).where(Team.name == DESK)).first() is not None:
            return "the inbox's teams and conversations are already there (/inbox)"
    rng = random.Random(f"{MARK}:{seed}")
    now = clock.now()
    with hub.session() as session, session.begin():
        agents = _agents(session)
        maria, alexey, sam = agents
        every_day = {day: "00:00-24:00" for day in DAYS}
        office = {day: "09:00-18:00" for day in DAYS[:5]}
        teams.save(session, actor=SYSTEM, data=teams.TeamIn(
            name=DESK, time_zone="Europe/Moscow", hours=every_day, channels=["sms", "phone", "forms", "telegram"],
            lead_id=maria, member_ids=[maria, alexey]))
        teams.save(session, actor=SYSTEM, data=teams.TeamIn(
            name=MAIL, time_zone="Europe/London", hours=office, channels=["email"], lead_id=sam, member_ids=[sam]))
        for (_email, _name, _locale, _zone, presence), user_id in zip(AGENTS, agents):
            set_presence(session, user_id=user_id, presence=presence)
        _canned(session, maria)
        poster = _Poster(session)
        _history(session, poster, rng, now=now, agents=agents)
        opened = _open(session, poster, now=now, owner=maria)
    return (f"inbox: two teams, {opened} open conversations (one breached, one near breach, one waiting, one "
            f"snoozed, unassigned email) and a month of resolved ones (/inbox, /inbox/reports)")


def _agents(session: Session) -> list[int]:
    from hub.demo import DEMO_PASSWORD

    ids = []
    for email, name, locale, zone, _presence in AGENTS:
        user = session.scalars(select(User).where(User.email == email)).first()
        if user is None:
            user = create_user(session, email=email, password=DEMO_PASSWORD, role=Role.AGENT, display_name=name,
                               locale=locale, time_zone=zone)
        ids.append(user.id)
    return ids  # type: ignore[return-value]


def _canned(session: Session, owner_id: int) -> None:
    owner = user_principal(session.get(User, owner_id))  # type: ignore[arg-type]
    for shortcut, title, locale, body, shared in CANNED:
        canned.create(session, data=canned.CannedIn(shortcut=shortcut, title=title, body=body, locale=locale,
                                                    shared=shared), actor=SYSTEM if shared else owner)


class _Poster:
    """Contacts and their messages through the one write path, with the demo's external ids."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.n = 0

    def contact(self, person: Person, *, owner_id: int | None = None) -> int:
        identities = [IdentityIn(kind=IdentityKind.PHONE, value=person.phone)] if person.phone else []
        identities += [IdentityIn(kind=IdentityKind.EMAIL, value=person.email)] if person.email else []
        zone = "Europe/Moscow" if person.locale == "ru" else "Europe/London"
        return create_contact(self.session, actor=SYSTEM, region="RU" if person.locale == "ru" else "GB",
                              display_name=person.name, identities=identities, locale=person.locale, time_zone=zone,
                              owner_id=owner_id if person.owned else None).id  # type: ignore[return-value]

    def post(self, contact_id: int, *, channel: str, kind: str, at: datetime, direction: Direction = Direction.IN,
             text: str | None = None, subject: str | None = None, actor: int | None = None,
             data: dict | None = None) -> None:
        self.n += 1
        post_event(self.session, event=InboundEvent(
            channel=channel, kind=kind, direction=direction, contact_id=contact_id, occurred_at=at, text=text,
            subject=subject, actor_user_id=actor, data=data or {}, external_id=f"{MARK}:{self.n}"))


def _conv(session: Session, contact_id: int) -> Conversation:
    return session.scalars(select(Conversation).where(Conversation.contact_id == contact_id)
                           .order_by(Conversation.id.desc())).first()  # type: ignore[return-value]


def _inbound_data(person: Person, channel: str, kind: str, text: str | None) -> dict:
    if channel == "phone":
        return {"outcome": "missed", "duration_seconds": 0, "direction": "in", "from": person.phone}
    if channel == "forms":
        return {"form": "demo-request", "fields": {"name": person.name, "email": person.email, "message": text}}
    return {"from": person.email if channel == "email" else person.phone}


def _history(session: Session, poster: _Poster, rng: random.Random, *, now: datetime, agents: list[int]) -> None:
    """Resolved conversations of the last four weeks, in office hours: answered in minutes to hours."""
    zone = ZoneInfo("Europe/Moscow")
    for i, (name, locale) in enumerate(HISTORY_PEOPLE):
        channel = ("sms", "email", "phone")[i % 3]
        person = Person(name, locale, phone=f"+7916222{i:04d}", email=f"history{i}@inbox-demo.example")
        contact_id = poster.contact(person)
        day = (now - timedelta(days=1 + (i * 2) % 27)).astimezone(zone).date()
        at = datetime.combine(day, time(rng.randint(9, 16), rng.randint(0, 59)), zone)
        asked, answer = HISTORY_TEXT[locale]
        kind = "call" if channel == "phone" else "message"
        poster.post(contact_id, channel=channel, kind=kind, at=at, text=None if channel == "phone" else asked,
                    subject="Заказ" if channel == "email" else None, data=_inbound_data(person, channel, kind, asked))
        conv = _conv(session, contact_id)
        agent = agents[2] if channel == "email" else agents[i % 2]
        if conv.assignee_id != agent:
            service.assign(session, conv_id=conv.id, assignee_id=agent, actor=SYSTEM)  # type: ignore[arg-type]
        answered = at + timedelta(minutes=rng.choice([4, 9, 15, 25, 40, 75, 130]))
        poster.post(contact_id, channel=channel, kind=kind, at=answered, direction=Direction.OUT, actor=agent,
                    text=None if channel == "phone" else answer,
                    data={"outcome": "answered", "duration_seconds": 180} if channel == "phone" else {})
        service.set_status(session, conv_id=conv.id, status=Status.RESOLVED, actor=SYSTEM,  # type: ignore[arg-type]
                           at=answered + timedelta(minutes=rng.randint(20, 60 * 30)))


def _open(session: Session, poster: _Poster, *, now: datetime, owner: int) -> int:
    """The conversations on agents' screens now, each left in the state its story names."""
    for person, channel, kind, minutes, text, story in OPEN:
        contact_id = poster.contact(person, owner_id=owner)
        at = now - timedelta(minutes=minutes)
        poster.post(contact_id, channel=channel, kind=kind, at=at, text=text,
                    subject=(text or "")[:60] if channel == "email" else None,
                    data=_inbound_data(person, channel, kind, text))
        conv = _conv(session, contact_id)
        if story in ("waiting", "snoozed"):
            reply = "Конечно, номер заказа — 4619." if story == "waiting" else "Хорошо, напишу завтра в 10:00."
            poster.post(contact_id, channel=channel, kind=kind, at=at + timedelta(minutes=5), direction=Direction.OUT,
                        actor=conv.assignee_id or owner, text=reply)
            if story == "waiting":
                service.set_status(session, conv_id=conv.id, status=Status.WAITING, actor=SYSTEM)  # type: ignore[arg-type]
            else:
                zone = ZoneInfo("Europe/Moscow")
                tomorrow = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(10), zone)
                service.set_status(session, conv_id=conv.id, status=Status.SNOOZED, until=tomorrow,  # type: ignore[arg-type]
                                   actor=SYSTEM)
        elif story == "urgent":
            service.set_priority(session, conv_id=conv.id, priority=Priority.URGENT, actor=SYSTEM)  # type: ignore[arg-type]
    return len(OPEN)
