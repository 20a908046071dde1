"""Demo data telling the brief's story in three accounts (idempotent: a second run adds nothing):

- «Банк Северный», flagged key, its people tagged vip: small orders, hours of calls and meetings —
  the VIP that loses money, in the trap on the Key accounts page;
- «Завод Тихий», key and profitable, that used to write every ten days and has been silent for six
  weeks: the scheduler's first run opens a cooling alert for its owner;
- «Сеть Ромашка», key, cooling: fewer and slower conversations, no orders for three months, NPS from
  9 down to 3 and an open detractor task; its temperature trend falls and the first run alerts too.
History goes in without triggers (no survey invitation for an invented order)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from hub import clock
from hub.accounts import create_account
from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.ingest import InboundEvent, post_event
from hub.models import Account, Direction, Role, User
from hub.tasks import create_task
from hub.demo import history_session
from keyaccounts.models import TemperatureSnapshot
from keyaccounts.temperature import parts_json, score, signals_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.runtime import Hub

BANK, PLANT, CHAIN = "Банк Северный", "Завод Тихий", "Сеть Ромашка"


def demo(hub: Hub, *, seed: int) -> str:
    with hub.session(read_only=True) as session:
        if session.scalars(select(Account.id).where(Account.name == BANK)).first() is not None:
            return "the three key-account stories are already there"
    rng = random.Random(f"keyaccounts-demo:{seed}")
    now = clock.now()
    session = history_session(hub)
    with session, session.begin():
        owner = session.scalars(select(User).where(User.is_active.is_(True), User.role == Role.AGENT)
                                .order_by(User.id)).first()
        owner_id = owner.id if owner else None
        ids = {name: create_account(session, actor=SYSTEM, name=name, is_key=True, owner_id=owner_id,
                                    attributes=attrs, interaction_notes=notes).id
               for name, attrs, notes in (
                   (BANK, {"ИНН": "7701000001"}, "Требуют личного менеджера на каждый вопрос."),
                   (PLANT, {"ИНН": "5002000002"}, "Закупщик пишет сам, раз в десять дней."),
                   (CHAIN, {"ИНН": "7803000003"}, "Решения принимает коммерческий директор."))}
        people = {name: create_contact(session, actor=SYSTEM, region="RU", display_name=who, account_id=ids[name],
                                       tags=["vip"] if name == BANK else [], owner_id=owner_id).id
                  for name, who in ((BANK, "Ирина Банкова"), (PLANT, "Пётр Заводов"), (CHAIN, "Ольга Ромашкина"))}
        n = 0

        def event(name: str, at: datetime, channel: str, kind: str, direction: str, **extra: Any) -> int:
            nonlocal n
            n += 1
            data = extra.pop("data", {})
            return post_event(session, event=InboundEvent(
                channel=channel, kind=kind, direction=direction, contact_id=people[name],
                external_id=f"keyaccounts-demo:{n}", occurred_at=at, data=data, **extra)).event.id  # type: ignore[return-value]

        def order(name: str, at: datetime, amount: int, margin: int) -> None:
            event(name, at, "commerce", "order.completed", Direction.IN, subject=f"Order D{n} completed",
                  data={"source": "demo", "order": {"order_id": f"D{n}", "amount": f"{amount}.00", "currency": "RUB",
                                                    "margin": f"{margin}.00", "items": []}})

        # The bank: a monthly small order, two long calls a week, a meeting a month.
        for week in range(40):
            at = now - timedelta(days=7 * week + rng.randint(0, 3))
            event(BANK, at, "phone", "call", Direction.IN, subject="Incoming call", actor_user_id=owner_id,
                  data={"talk_seconds": rng.randint(1800, 3600)})
            event(BANK, at + timedelta(days=2), "email", "message", Direction.OUT, subject="Ответ по вопросу",
                  actor_user_id=owner_id)
            if week % 4 == 0:
                order(BANK, at, 30_000, 3_000)
                event(BANK, at, "meetings", "meeting.completed", Direction.INTERNAL, subject="Встреча",
                      actor_user_id=owner_id, data={"starts_at": at.isoformat(),
                                                    "ends_at": (at + timedelta(hours=2)).isoformat()})
        # The plant: wrote every ten days for half a year, big orders, then six weeks of silence.
        for step in range(18):
            at = now - timedelta(days=42 + 10 * step)
            event(PLANT, at, "email", "message", Direction.IN, subject="Заявка")
            event(PLANT, at + timedelta(hours=3), "email", "message", Direction.OUT, subject="Re: Заявка",
                  actor_user_id=owner_id)
            if step % 2 == 0:
                order(PLANT, at + timedelta(days=1), 900_000, 180_000)
        # The chain: steady for months, then fewer and slower conversations, no orders for three
        # months, falling scores, and three weeks of silence.
        for week in range(3, 26):
            at = now - timedelta(days=7 * week + 1)
            late = week < 10
            if late and week % 2:
                continue
            event(CHAIN, at, "email", "message", Direction.IN, subject="Вопрос")
            event(CHAIN, at + timedelta(hours=80 if late else 2), "email", "message", Direction.OUT,
                  subject="Re: Вопрос", actor_user_id=owner_id)
            if week >= 13 and week % 2 == 0:
                order(CHAIN, at, 200_000, 40_000)
        for weeks_ago, nps in ((20, 9), (12, 8), (6, 5), (2, 3)):
            answer = event(CHAIN, now - timedelta(days=7 * weeks_ago), "surveys", "survey.answered", Direction.IN,
                           subject="NPS", data={"nps": nps})
        task = create_task(session, actor=SYSTEM, title="Низкая оценка от Ольги Ромашкиной", contact_id=people[CHAIN],
                           assignee_id=owner_id)
        task.source_event_id = answer
        session.flush()
        _history(session, [ids[BANK], ids[CHAIN]], now=now)
    return f"key accounts: «{BANK}» loses money, «{PLANT}» has gone quiet, «{CHAIN}» is cooling (/key-accounts)"


def _history(session: Session, account_ids: list[int], *, now: datetime) -> None:
    """Weekly temperature snapshots of the last two months, so the trends have a past (no alerts:
    those are the scheduler's, on its first run)."""
    for account_id in account_ids:
        for weeks_ago in range(8, 0, -1):
            at = now - timedelta(days=7 * weeks_ago)
            value, parts, explanation = score(signals_of(session, account_id=account_id, now=at))
            session.add(TemperatureSnapshot(account_id=account_id, computed_at=at, score=value,
                                            signals=parts_json(parts), explanation=explanation))
