"""Demo data: a few hundred Russian- and English-speaking contacts with months of mixed-channel history.

Everything is generated from a seeded random source (no network, nothing downloaded) and every
timeline event goes through the one write path with an external id prefixed "demo:", so loading
again adds nothing and a smaller set is a prefix of a larger one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.auth import create_user
from hub.ingest import IdentityRef, InboundEvent, post_event, post_events, survivor
from hub.models import ConsentRecord, ConsentStatus, Contact, Direction, IdentityKind, Purpose, Role, Task, TaskStatus, TimelineEvent, User
from hub.plugin import load_group
from hub.triggers import TriggerRegistry

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.demo")

DEMO_PASSWORD = "demo-password-123"
DEMO_USERS: tuple[tuple[str, Role, str, str, str], ...] = (
    ("admin@example.com", Role.ADMIN, "Demo Admin", "en", "Europe/London"),
    ("agent@example.com", Role.AGENT, "Мария Операторова", "ru", "Europe/Moscow"),
    ("marketer@example.com", Role.MARKETER, "Mark Marketer", "en", "America/New_York"),
)
MAX_CONTACTS = 5000
MARK = "demo"  # recorded_by / created_by of the rows the loader writes outside the timeline
SUPPORT = {"ru": "support@example.com", "en": "hello@example.com"}

_RU_MEN = [("Дмитрий", "dmitry"), ("Алексей", "alexey"), ("Сергей", "sergey"), ("Иван", "ivan"), ("Андрей", "andrey"),
           ("Михаил", "mikhail"), ("Никита", "nikita"), ("Павел", "pavel"), ("Артём", "artem"), ("Егор", "egor")]
_RU_WOMEN = [("Анна", "anna"), ("Мария", "maria"), ("Елена", "elena"), ("Ольга", "olga"), ("Татьяна", "tatiana"),
             ("Наталья", "natalia"), ("Екатерина", "ekaterina"), ("Ирина", "irina"), ("Дарья", "daria"), ("Светлана", "svetlana")]
# Male surname forms; the female form adds "а" / "a".
_RU_SURNAMES = [("Смирнов", "smirnov"), ("Иванов", "ivanov"), ("Кузнецов", "kuznetsov"), ("Попов", "popov"),
                ("Соколов", "sokolov"), ("Лебедев", "lebedev"), ("Козлов", "kozlov"), ("Новиков", "novikov"),
                ("Морозов", "morozov"), ("Волков", "volkov"), ("Соловьёв", "solovyov"), ("Васильев", "vasiliev"),
                ("Зайцев", "zaitsev"), ("Павлов", "pavlov"), ("Семёнов", "semenov"), ("Голубев", "golubev"),
                ("Виноградов", "vinogradov"), ("Богданов", "bogdanov"), ("Воробьёв", "vorobyov"), ("Фёдоров", "fedorov")]
_EN_FIRST = ["Emily", "Olivia", "Sophie", "Grace", "Charlotte", "Hannah", "Jessica", "Amelia", "Chloe",
             "James", "Oliver", "Jack", "Harry", "Thomas", "Daniel", "Michael", "William", "Ethan", "Noah"]
_EN_LAST = ["Carter", "Smith", "Johnson", "Williams", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thompson",
            "Walker", "Wright", "Robinson", "Hughes", "Edwards", "Green", "Hall", "Wood", "Clarke", "Turner"]
# (time zone, cities, phone country) per region the demo covers.
_PLACES = {
    "ru-msk": ("Europe/Moscow", ["Москва", "Санкт-Петербург", "Нижний Новгород", "Казань"], "RU"),
    "ru-ekb": ("Asia/Yekaterinburg", ["Екатеринбург", "Челябинск", "Пермь", "Тюмень"], "RU"),
    "gb": ("Europe/London", ["London", "Manchester", "Bristol", "Leeds"], "GB"),
    "us": ("America/New_York", ["New York", "Boston", "Philadelphia", "Atlanta"], "US"),
}
_COMPANIES = {
    "ru": ["ООО «Ромашка»", "ООО «Вектор»", "АО «Северный ветер»", "ООО «Альфа-Трейд»", "ИП Белов", "ООО «Кофейня на углу»"],
    "en": ["Northwind Traders", "Bluebird Studio", "Carter & Sons Ltd", "Harbour Coffee Co.", "Maple Office Supply"],
}
# US numbers only in the 555-0100..0199 block, which is reserved for fiction and still valid.
_US_AREAS = [201, 202, 212, 215, 267, 305, 347, 404, 617, 646, 718, 732, 857, 904, 917, 929, 973]
_DOMAINS = ["example.com", "example.org", "example.net"]
_CURRENCY = {"RU": "RUB", "GB": "GBP", "US": "USD"}
_SKUS = ["AUR-1", "FLT-2", "KTL-3", "CAP-50", "SRV-1", "BNS-1K"]  # the same goods in both catalogues
_CATALOG = {
    "ru": [("Кофемашина «Аврора»", "45990.00"), ("Фильтр для воды", "1290.00"), ("Чайник электрический", "3490.00"),
           ("Капсулы, 50 шт.", "2190.00"), ("Сервисное обслуживание", "4900.00"), ("Кофе в зёрнах, 1 кг", "1850.00")],
    "en": [("Aurora espresso machine", "599.00"), ("Water filter", "19.99"), ("Electric kettle", "49.00"),
           ("Capsule pack (50)", "29.50"), ("Service plan", "89.00"), ("Coffee beans, 1 kg", "24.90")],
}
# (subject, who writes first, the messages in turn); a thread stops after any of them.
_THREADS = {
    "ru": [
        ("Вопрос по доставке", Direction.IN, ["Здравствуйте! Подскажите, когда привезут мой заказ?",
         "Добрый день! Заказ передан в службу доставки, курьер позвонит накануне.", "Спасибо, буду ждать.",
         "Хорошего дня!"]),
        ("Счёт для юрлица", Direction.IN, ["Добрый день. Пришлите, пожалуйста, счёт на оплату для нашей компании.",
         "Здравствуйте! Счёт во вложении, реквизиты проверили.", "Получили, оплатим сегодня."]),
        ("Кофемашина не включается", Direction.IN, ["После чистки машина перестала включаться. Что делать?",
         "Попробуйте отключить её от сети на 10 минут. Если не поможет — оформим сервисный выезд.",
         "Не помогло, оформляйте выезд.", "Мастер приедет в четверг с 10 до 14."]),
        ("Возврат товара", Direction.IN, ["Хочу вернуть чайник, он не подошёл по цвету.",
         "Конечно, оформили возврат. Курьер заберёт товар в течение трёх дней.", "Спасибо!"]),
        ("Оптовые цены", Direction.IN, ["Интересуют оптовые цены на капсулы от 100 упаковок.",
         "Отправили прайс-лист. Скидка от 100 упаковок — 12%.", "Спасибо, обсудим и вернёмся с заказом."]),
        ("Новинки месяца", Direction.OUT, ["Здравствуйте! В каталоге появились новые сорта кофе из Эфиопии и Колумбии.",
         "Интересно. Есть ли пробники?", "Да, добавим пробник к следующему заказу бесплатно."]),
    ],
    "en": [
        ("Where is my order?", Direction.IN, ["Hi, could you tell me when my order will arrive?",
         "Hello! Your order is with the courier and should arrive tomorrow.", "Great, thanks!", "You're welcome!"]),
        ("Invoice request", Direction.IN, ["Hello, could you send an invoice for our last purchase, please?",
         "Hi! The invoice is attached. Let us know if anything needs changing.", "Got it, thank you."]),
        ("Machine won't turn on", Direction.IN, ["After descaling, my machine doesn't turn on any more. Any ideas?",
         "Please unplug it for ten minutes. If that doesn't help, we'll book a service visit.",
         "Still dead, please book the visit.", "Booked: a technician will come on Thursday between 10 and 2."]),
        ("Return", Direction.IN, ["I'd like to return the kettle, it doesn't match my kitchen.",
         "No problem, the return is booked and a courier will collect it within three days.", "Thanks!"]),
        ("Wholesale pricing", Direction.IN, ["Do you offer wholesale pricing on capsules for 100+ packs?",
         "Price list attached: 12% off from 100 packs.", "Thanks, we'll come back with an order."]),
        ("New this month", Direction.OUT, ["Hello! We've added new single-origin coffees from Ethiopia and Colombia.",
         "Sounds good. Do you have samples?", "Yes, we'll add a free sample to your next order."]),
    ],
}
_SMS_OUT = {
    "ru": ["Ваш заказ передан в доставку. Курьер позвонит заранее.", "Напоминаем о встрече завтра в 11:00.",
           "Скидка 10% на капсулы до конца недели по коду КОФЕ10.", "Спасибо за покупку! Оцените нас: ответьте от 1 до 5."],
    "en": ["Your order is on its way. The courier will call ahead.", "Reminder: your appointment is tomorrow at 11:00.",
           "10% off capsules this week with code COFFEE10.", "Thanks for your order! Reply 1-5 to rate us."],
}
_SMS_IN = {
    "ru": ["Спасибо, жду!", "Можно перенести на пятницу?", "5", "Ок, удобно."],
    "en": ["Thanks, great!", "Can we move it to Friday?", "5", "OK, works for me."],
}
_NOTES = {
    "ru": ["Клиент просит звонить после 18:00.", "Предпочитает общение по email.", "Интересуется подпиской на капсулы.",
           "Жалоба на курьера, извинились, дали скидку 5%.", "Крупный клиент, согласовать скидку с руководителем."],
    "en": ["Prefers calls after 6pm.", "Likes to be contacted by email.", "Interested in a capsule subscription.",
           "Complained about the courier; apologised and gave 5% off.", "Big account: discounts need a manager's OK."],
}
_FORMS = {
    "ru": [("contact-us", "Свяжитесь со мной по поводу покупки кофемашины."), ("demo-request", "Хотим дегустацию в офисе."),
           ("newsletter-signup", "")],
    "en": [("contact-us", "Please get in touch about buying a coffee machine."), ("demo-request", "We'd like a tasting at our office."),
           ("newsletter-signup", "")],
}
_MEETINGS = {"ru": ["Дегустация в офисе", "Консультация по выбору кофемашины", "Обсуждение оптового договора"],
             "en": ["Office tasting", "Coffee machine consultation", "Wholesale contract call"]}
_TASKS = {"ru": ["Перезвонить по поводу заказа", "Отправить коммерческое предложение", "Уточнить адрес доставки"],
          "en": ["Call back about the order", "Send a quote", "Confirm the delivery address"]}


@dataclass(frozen=True)
class DemoSummary:
    """What a demo load did; counts are of rows this call created."""

    contacts: int
    contacts_created: int
    events_created: int
    events_existing: int
    orders_created: int
    consents_created: int
    tasks_created: int
    users_created: tuple[str, ...]
    extras: tuple[str, ...] = ()  # one line per package that added its own demo rows
    logins: tuple[tuple[str, str], ...] = tuple((email, role.value) for email, role, *_ in DEMO_USERS)
    password: str = DEMO_PASSWORD


@dataclass
class _Person:
    key: str
    name: str
    locale: str
    time_zone: str
    city: str
    country: str
    email: str | None
    phone: str | None
    company: str | None
    customer: bool
    vip: bool
    wholesale: bool


@dataclass
class _Plan:
    """One contact's history, generated before anything is written so the random stream never depends on the store."""

    person: _Person
    rng: random.Random
    now: datetime
    start: datetime
    agent_id: int | None
    identities: list[IdentityRef]
    events: list[InboundEvent] = field(default_factory=list)
    threads: int = 0
    orders: int = 0  # numbering only; the history may be cut short after generation

    def _add(self, at: datetime, **values: Any) -> None:
        self.events.append(InboundEvent(external_id=f"demo:{self.person.key}:{len(self.events):04d}", occurred_at=at,
                                        identities=self.identities, **values))

    def _when(self) -> datetime:
        span = (self.now - self.start).total_seconds() - 7200
        return self.start + timedelta(seconds=3600 + self.rng.uniform(0, span))

    def _status(self, channel: str) -> str:
        weights = (15, 50, 30, 5) if channel == "email" else (15, 78, 0, 7)
        return self.rng.choices(["sent", "delivered", "read", "failed"], weights)[0]

    def _texts(self, pool: dict[str, list[Any]]) -> list[Any]:
        return pool[self.person.locale]

    def form(self, at: datetime | None = None, slug: str | None = None) -> None:
        p = self.person
        choices = self._texts(_FORMS)
        slug, message = next((f for f in choices if f[0] == slug), None) or self.rng.choice(choices)
        fields = {"name": p.name, "email": p.email, "phone": p.phone, "message": message or None}
        self._add(at or self._when(), channel="forms", kind="form.submitted", direction=Direction.IN, text=message or None,
                  data={"form": slug, "fields": {k: v for k, v in fields.items() if v}})

    def email_thread(self) -> None:
        p, rng = self.person, self.rng
        subject, first, messages = rng.choice(self._texts(_THREADS))
        self.threads += 1
        thread = f"demo:{p.key}:thread:{self.threads}"
        at, inbound = self._when(), first == Direction.IN
        for n, body in enumerate(messages[: rng.randint(1, len(messages))]):
            if at >= self.now:
                break
            ours, theirs = SUPPORT[p.locale], p.email
            self._add(at, channel="email", kind="message", direction=Direction.IN if inbound else Direction.OUT,
                      subject=subject if n == 0 else f"Re: {subject}", text=body, thread_key=thread,
                      status=None if inbound else self._status("email"),
                      data={"from": theirs if inbound else ours, "to": ours if inbound else theirs,
                            "message_id": f"<{p.key}.{len(self.events)}@demo.example.com>"})
            inbound = not inbound
            at += timedelta(minutes=rng.uniform(20, 2880))

    def sms(self) -> None:
        p, rng = self.person, self.rng
        at, inbound = self._when(), rng.random() < 0.3
        for _ in range(rng.choice([1, 1, 2, 3])):
            if at >= self.now:
                break
            self._add(at, channel="sms", kind="message", direction=Direction.IN if inbound else Direction.OUT,
                      text=rng.choice(self._texts(_SMS_IN if inbound else _SMS_OUT)), thread_key=f"sms:{p.phone}",
                      status=None if inbound else self._status("sms"))
            inbound = not inbound
            at += timedelta(minutes=rng.uniform(1, 240))

    def call(self) -> None:
        rng = self.rng
        direction = rng.choice([Direction.IN, Direction.OUT])
        outcome = rng.choices(["answered", "missed", "voicemail"], (65, 20, 15))[0]
        duration = {"answered": rng.randint(25, 900), "missed": 0, "voicemail": rng.randint(8, 60)}[outcome]
        at = self._when()
        self._add(at, channel="phone", kind="call", direction=direction,
                  data={"duration_seconds": duration, "outcome": outcome, "direction": direction.value})
        if outcome == "answered" and rng.random() < 0.35:
            self.note(at + timedelta(seconds=duration + 60))

    def note(self, at: datetime | None = None) -> None:
        self._add(min(at or self._when(), self.now - timedelta(seconds=30)), channel="note", kind="note",
                  direction=Direction.INTERNAL, text=self.rng.choice(self._texts(_NOTES)), actor_user_id=self.agent_id)

    def order(self) -> None:
        """An order in the shape POST /api/v1/events stores (decimal strings, source and event id beside it)."""
        p, rng = self.person, self.rng
        picks = rng.sample(range(len(_SKUS)), rng.randint(1, 3))
        scale = 20 if p.wholesale else 1
        items = [{"sku": _SKUS[i], "name": _CATALOG[p.locale][i][0], "quantity": str(rng.randint(1, 3) * scale),
                  "unit_price": _CATALOG[p.locale][i][1]} for i in sorted(picks)]
        amount = sum((Decimal(i["unit_price"]) * Decimal(i["quantity"]) for i in items), Decimal("0"))
        currency = _CURRENCY[p.country]
        self.orders += 1
        order_id = f"D{p.key[1:]}-{self.orders:03d}"
        at = self._when()
        each = "по" if p.locale == "ru" else "at"
        lines = [f"{amount:.2f} {currency}", *(f"{i['quantity']} × {i['name']} ({i['sku']}) {each} {i['unit_price']}" for i in items)]
        self._add(at, channel="commerce", kind="order.completed", direction=Direction.IN,
                  subject=f"Заказ {order_id} оформлен" if p.locale == "ru" else f"Order {order_id} completed",
                  text="\n".join(lines),
                  data={"source": "demo", "event_id": order_id, "data": {},
                        "order": {"order_id": order_id, "amount": f"{amount:.2f}", "currency": currency, "items": items}})
        if p.email and rng.random() < 0.7:
            subject = f"Ваш заказ {order_id} оформлен" if p.locale == "ru" else f"Your order {order_id} is confirmed"
            self._add(at + timedelta(minutes=1), channel="email", kind="message", direction=Direction.OUT, subject=subject,
                      text=subject + ".", status=self._status("email"), thread_key=f"demo:{p.key}:order:{order_id}",
                      data={"from": SUPPORT[p.locale], "to": p.email, "order_id": order_id})

    def meeting(self) -> None:
        p, rng = self.person, self.rng
        at = self._when()
        # At a business hour in the contact's own zone, as a booking page would offer.
        local = (at + timedelta(days=rng.randint(1, 12))).astimezone(ZoneInfo(p.time_zone))
        starts = local.replace(hour=rng.randint(10, 17), minute=0, second=0, microsecond=0).astimezone(timezone.utc)
        topic = rng.choice(self._texts(_MEETINGS))
        data = {"meeting_id": f"demo-{p.key}-{len(self.events)}", "topic": topic, "starts_at": starts.isoformat(),
                "duration_minutes": 30, "time_zone": p.time_zone}
        self._add(at, channel="meetings", kind="meeting.booked", direction=Direction.IN, subject=topic, data=data)
        if starts + timedelta(minutes=30) < self.now:
            self._add(starts + timedelta(minutes=30), channel="meetings", kind="meeting.completed",
                      direction=Direction.INTERNAL, subject=topic, data=data)


def _phone(rng: random.Random, country: str, taken: set[str]) -> str:
    """A number phonenumbers accepts as valid, written the way people write it (normalized on ingest)."""
    for _ in range(10_000):
        if country == "RU":
            raw = f"+7 9{rng.randint(0, 99):02d} {rng.randint(0, 999):03d}-{rng.randint(0, 99):02d}-{rng.randint(0, 99):02d}"
        elif country == "GB":
            raw = f"+44 7{rng.randint(400, 999)} {rng.randint(0, 999999):06d}"
        else:
            raw = f"+1 {rng.choice(_US_AREAS)}-555-01{rng.randint(0, 99):02d}"
        number = phonenumbers.parse(raw)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number) and e164 not in taken:
            taken.add(e164)
            return raw
    raise RuntimeError(f"ran out of demo phone numbers for {country}")


def _email(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    local = rng.choice([f"{first}.{last}", f"{first}{last[0]}", f"{first[0]}.{last}", f"{first}_{last}"])
    domain = rng.choice(_DOMAINS)
    address, n = f"{local}@{domain}", 1
    while address.casefold() in taken:
        n += 1
        address = f"{local}{n}@{domain}"
    taken.add(address.casefold())
    # Some written with capitals, as people type them; the hub case-folds them.
    return address.title().replace("@Example", "@example") if rng.random() < 0.15 else address


def _people(count: int, seed: int) -> list[_Person]:
    """The demo's contacts, in a fixed order: the first `n` are the same whatever `count` is."""
    phones: set[str] = set()
    emails: set[str] = set()
    people = []
    for index in range(count):
        rng = random.Random(f"hub-demo:{seed}:person:{index}")
        region = rng.choices(["ru-msk", "ru-ekb", "gb", "us"], (42, 16, 22, 20))[0]
        time_zone, cities, country = _PLACES[region]
        locale = "ru" if country == "RU" else "en"
        if locale == "ru":
            female = rng.random() < 0.5
            (first, first_lat), (last, last_lat) = rng.choice(_RU_WOMEN if female else _RU_MEN), rng.choice(_RU_SURNAMES)
            if female:
                last, last_lat = last + "а", last_lat + "a"
        else:
            first, last = rng.choice(_EN_FIRST), rng.choice(_EN_LAST)
            first_lat, last_lat = first.lower(), last.lower()
        has_email, has_phone = rng.random() < 0.93, rng.random() < 0.85
        if not (has_email or has_phone):
            has_email = True
        company = rng.choice(_COMPANIES[locale]) if rng.random() < 0.3 else None
        customer = rng.random() < 0.65
        people.append(_Person(
            key=f"c{index:04d}", name=f"{first} {last}", locale=locale, time_zone=time_zone, city=rng.choice(cities),
            country=country, email=_email(rng, first_lat, last_lat, emails) if has_email else None,
            phone=_phone(rng, country, phones) if has_phone else None, company=company, customer=customer,
            vip=customer and rng.random() < 0.12, wholesale=customer and company is not None and rng.random() < 0.5,
        ))
    return people


def _plan(person: _Person, *, seed: int, now: datetime, count: int, months: int, agent_id: int | None) -> _Plan:
    rng = random.Random(f"hub-demo:{seed}:history:{person.key}")
    identities = [IdentityRef(kind=IdentityKind.EMAIL, value=person.email)] if person.email else []
    if person.phone:
        identities.append(IdentityRef(kind=IdentityKind.PHONE, value=person.phone))
    plan = _Plan(person, rng, now, now - timedelta(days=30 * months), agent_id, identities)
    # Everyone arrived through a form and has an agent's note, so every timeline mixes channels.
    plan.form(plan.start, slug="newsletter-signup" if person.email and rng.random() < 0.3 else "contact-us")
    plan.note()
    episodes: list[tuple[Callable[[], None], int]] = [(plan.note, 2), (plan.form, 1), (plan.meeting, 1)]
    if person.email:
        episodes.append((plan.email_thread, 6))
    if person.phone:
        episodes += [(plan.sms, 3), (plan.call, 4)]
    if person.customer:
        episodes.append((plan.order, 3))
    steps, weights = zip(*episodes)
    while len(plan.events) < count:
        rng.choices(steps, weights)[0]()
    del plan.events[count:]
    plan.events.sort(key=lambda e: (e.occurred_at, e.external_id))
    plan.events[0] = plan.events[0].model_copy(update={"display_name": person.name})
    return plan


class _HistoryRuntime:
    """The runtime as post_event sees it during a demo load: the same, but with no triggers.

    Triggers react to things happening now (a sale schedules a survey invitation); replaying months
    of invented history through them would queue real messages about orders that never happened.
    """

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.triggers = TriggerRegistry()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hub, name)


def history_session(hub: Hub) -> Session:
    """A session for writing invented history: post_event sees the runtime without its triggers
    (plug-ins' demo data use it too)."""
    session = hub.session()
    session.info["hub"] = _HistoryRuntime(hub)
    return session


def _users(session: Session) -> tuple[dict[str, int], list[str]]:
    ids, created = {}, []
    for email, role, name, locale, zone in DEMO_USERS:
        user = session.scalars(select(User).where(User.email == email)).first()
        if user is None:
            user = create_user(session, email=email, password=DEMO_PASSWORD, role=role, display_name=name,
                               locale=locale, time_zone=zone)
            created.append(email)
        ids[role.value] = user.id  # type: ignore[assignment]
    return ids, created


def _consents(session: Session, contact: Contact, person: _Person, rng: random.Random, start: datetime, now: datetime,
              *, fresh: bool) -> tuple[int, bool]:
    """Marketing consent history; returns (records written, email marketing granted now).

    `fresh`: the contact was created by this load, so none of its records can be there yet."""
    current = {"email": False}
    history: list[tuple[str, str, str, datetime]] = []
    for channel, address, p_grant, p_withdraw in (("email", person.email, 0.75, 0.2), ("sms", person.phone, 0.5, 0.25)):
        if not address or rng.random() >= p_grant:
            continue
        granted = start + timedelta(minutes=5)
        history.append((channel, ConsentStatus.GRANTED, rng.choice(["web form", "checkout", "import"]), granted))
        current[channel] = True
        if rng.random() < p_withdraw:
            withdrawn = granted + (now - granted) * rng.uniform(0.3, 0.95)
            source = "unsubscribe link" if channel == "email" else "STOP reply"
            history.append((channel, ConsentStatus.WITHDRAWN, source, withdrawn))
            current[channel] = False
    if not fresh and session.scalars(
        select(ConsentRecord.id).where(ConsentRecord.contact_id == contact.id, ConsentRecord.recorded_by == MARK)
    ).first() is not None:
        return 0, current["email"]
    for channel, status, source, at in history:
        session.add(ConsentRecord(contact_id=contact.id, channel=channel, purpose=Purpose.MARKETING, status=status,
                                  source=source, recorded_by=MARK, occurred_at=at))
    return len(history), current["email"]


def _task(session: Session, contact: Contact, person: _Person, rng: random.Random, now: datetime, agent_id: int,
          source_event_id: int | None, *, fresh: bool) -> int:
    """A follow-up for every fifth contact, cycling overdue, due soon, next week and done so each kind shows."""
    index = int(person.key[1:])
    if index % 5 != 1:
        return 0
    if not fresh and session.scalars(
            select(Task.id).where(Task.contact_id == contact.id, Task.created_by == MARK)).first() is not None:
        return 0
    hours = {0: rng.randint(-120, -2), 1: rng.randint(1, 30), 2: rng.randint(100, 300), 3: rng.randint(-200, -24)}
    phase = (index // 5) % 4
    due = now + timedelta(hours=hours[phase])
    created = min(due, now) - timedelta(days=rng.randint(1, 5))
    session.add(Task(contact_id=contact.id, title=rng.choice(_TASKS[person.locale]), due_at=due, assignee_id=agent_id,
                     status=TaskStatus.DONE if phase == 3 else TaskStatus.OPEN, created_by=MARK,
                     source_event_id=source_event_id, created_at=created, completed_at=due if phase == 3 else None))
    return 1


def _profile(contact: Contact, person: _Person, *, orders: int, newsletter: bool, owner_id: int) -> None:
    tags = [t for t, on in (("vip", person.vip), ("wholesale", person.wholesale), ("b2b", person.company is not None),
                            ("newsletter", newsletter)) if on]
    attributes = {"city": person.city, **({"company": person.company} if person.company else {})}
    if orders >= 5 and person.vip:
        stage = "evangelist"
    elif orders:
        stage = "customer"
    else:
        stage = {0: "subscriber", 1: "lead", 2: "opportunity"}[int(person.key[1:]) % 3]
    wanted = dict(locale=person.locale, time_zone=person.time_zone, tags=tags, attributes={**contact.attributes, **attributes},
                  lifecycle_stage=stage, owner_id=owner_id if person.company else contact.owner_id)
    changed = {k: v for k, v in wanted.items() if getattr(contact, k) != v}
    for key, value in changed.items():
        setattr(contact, key, value)
    if changed:
        contact.updated_at = clock.now()


def _history(session: Session, events: list[InboundEvent], totals: dict[str, int]) -> tuple[Contact, int | None, bool]:
    """Post one contact's history: its contact, the id of its last call and whether the contact is new.

    The first event resolves the identities (creating the contact); the rest go to that contact in
    one batch through post_events, a few statements instead of two round trips an event.
    """
    first, rest = events[0], events[1:]
    result = post_event(session, event=first)
    contact = survivor(session, result.contact)  # a reload after an agent merged it
    totals["contacts_created"] += result.contact_created
    rest = [e.model_copy(update={"contact_id": contact.id, "identities": []}) for e in rest]
    # post_events reports no replays: what is there already is looked up first (nothing on a first load).
    there = _already_posted(session, rest) if not result.contact_created else set()
    ids = [result.event.id, *post_events(session, events=rest, contacts={contact.id: contact})]
    new = [result.created, *(e.external_id not in there for e in rest)]
    totals["events_created"] += sum(new)
    totals["events_existing"] += len(new) - sum(new)
    totals["orders_created"] += sum(n and e.kind == "order.completed" for n, e in zip(new, events))
    last_call = next((i for i, e in zip(reversed(ids), reversed(events)) if e.kind == "call"), None)
    return contact, last_call, result.contact_created


def _already_posted(session: Session, events: list[InboundEvent]) -> set[str]:
    """External ids among `events` already on the timeline (the demo's are unique across channels)."""
    wanted = [e.external_id for e in events]
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(session.scalars(select(TimelineEvent.external_id).where(
            TimelineEvent.external_id.in_(wanted[start:start + 500]))))
    return found


def load_demo(hub: Hub, *, contacts: int = 300, seed: int = 7, long_history: int = 1500,
              progress: Callable[[int, int], None] | None = None, packages: bool = True) -> DemoSummary:
    """Load the demo set (idempotent: rows it already wrote are left as they are); `progress(done, total)`.

    `packages` also runs the installed packages' demos (a form, a meeting type, a campaign, a survey).
    """
    if not 1 <= contacts <= MAX_CONTACTS:
        raise ValueError(f"contacts must be between 1 and {MAX_CONTACTS}")
    if not 0 <= long_history <= 20_000:
        raise ValueError("long_history must be between 0 and 20000 events")
    now = clock.now()
    with history_session(hub) as session, session.begin():
        role_ids, users_created = _users(session)
    agent_id = role_ids[Role.AGENT.value]
    totals = dict(contacts_created=0, events_created=0, events_existing=0, orders_created=0, consents_created=0,
                  tasks_created=0)
    people = _people(contacts, seed)
    for done, person in enumerate(people, start=1):
        rng = random.Random(f"hub-demo:{seed}:shape:{person.key}")
        months, count = rng.randint(3, 9), rng.randint(10, 60)
        if done == 1 and long_history:  # one dense timeline, to show endless scrolling
            months, count = 9, long_history
        plan = _plan(person, seed=seed, now=now, count=count, months=months, agent_id=agent_id)
        # One transaction per contact: a crash leaves whole contacts, and a reload finishes the rest.
        with history_session(hub) as session, session.begin():
            contact, last_call, fresh = _history(session, plan.events, totals)
            written, newsletter = _consents(session, contact, person, rng, plan.start, now, fresh=fresh)
            totals["consents_created"] += written
            orders = sum(e.kind == "order.completed" for e in plan.events)
            _profile(contact, person, orders=orders, newsletter=newsletter, owner_id=agent_id)
            totals["tasks_created"] += _task(session, contact, person, rng, now, agent_id, last_call, fresh=fresh)
        if progress is not None:
            progress(done, len(people))
    extras = _package_demos(hub, seed=seed) if packages else []
    summary = DemoSummary(contacts=len(people), users_created=tuple(users_created), extras=tuple(extras), **totals)
    log.info("demo data loaded: %s", summary)
    return summary


def _package_demos(hub: Hub, *, seed: int) -> list[str]:
    """Let installed packages add their demo rows (a form, meeting types, a campaign, a survey).

    Each `hub.demo` entry point is `demo(hub, *, seed) -> str`: idempotent, it returns one line
    saying what it added (or found already there).
    """
    lines = []
    for name, demo in load_group("hub.demo", what="demo data").items():
        try:
            lines.append(f"{name}: {demo(hub, seed=seed)}")
        except Exception as exc:
            raise RuntimeError(f"demo data of {name!r} failed: {exc}") from exc
    return lines


def store_is_empty(hub: Hub) -> bool:
    """Whether the store has no contacts yet."""
    with hub.session(read_only=True) as session:
        return session.scalars(select(Contact.id).limit(1)).first() is None


def load_demo_if_empty(hub: Hub, **kwargs: Any) -> DemoSummary | None:
    """Load the demo set into a store that has no contacts yet; None if it has some."""
    if not store_is_empty(hub):
        return None
    return load_demo(hub, **kwargs)
