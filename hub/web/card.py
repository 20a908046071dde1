"""The contact card's data: the contact service's card plus lifetime value and the last survey score."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.contacts import ContactCard, contact_card
from hub.events import OrderTotals, order_totals
from hub.extensions import CardBadge, Extension
from hub.models import Account, Task, TaskStatus, TimelineEvent, User
from hub.web.i18n import N_
from hub.web.timeline_view import score_kinds

MAX_ATTRIBUTES = 8
# Lifecycle stages as pages show them (`stage_label`): the edit form's and the demo's. A stage
# written by an import or the API that is not here shows as written.
STAGE_LABELS = {"subscriber": N_("Subscriber"), "lead": N_("Lead"), "prospect": N_("Prospect"),
                "opportunity": N_("Opportunity"), "customer": N_("Customer"), "evangelist": N_("Evangelist"),
                "churned": N_("Churned")}


def stage_label(stage: str | None) -> str:
    """The msgid of a lifecycle stage (translate it with `_`), or the stage itself when unknown."""
    return STAGE_LABELS.get(stage or "", stage or "")


@dataclass(frozen=True)
class SurveyScore:
    score: float
    scale: int | None
    occurred_at: Any
    survey: str | None

    @property
    def tone(self) -> str:
        if self.scale == 5:  # CSAT: 4–5 satisfied, 3 neutral, 1–2 not
            return "ok" if self.score >= 4 else "bad" if self.score <= 2 else "warn"
        top = self.scale or 10
        ratio = self.score / top if top else 0
        return "ok" if ratio >= 0.85 else "bad" if ratio <= 0.6 else "warn"


@dataclass(frozen=True)
class CardData:
    card: ContactCard
    orders: OrderTotals
    survey: SurveyScore | None
    attributes: list[tuple[str, Any]]
    more_attributes: int
    open_tasks: list[Task]
    users: list[User]
    account: Account | None = None  # the company or household it belongs to
    badges: list[CardBadge] = field(default_factory=list)  # extensions' facts (Extension.card_badges)

    @property
    def totals(self) -> list[tuple[str, Decimal]]:
        return sorted(self.orders.totals.items())


def display_phone(value: str) -> str:
    """+79161234567 as +7 916 123-45-67 (international format)."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(value, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return value


def active_users(session: Session) -> list[User]:
    """Who can own a contact or be given a task."""
    return list(session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.display_name, User.id)))


def display_names(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    """id -> display_name for users or contacts shown by name in a list, in one query."""
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.display_name).where(model.id.in_(sorted(ids)))).all())


def last_survey_score(session: Session, *, contact_id: int) -> SurveyScore | None:
    rows = session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.contact_id == contact_id, TimelineEvent.kind.in_(score_kinds()))
        .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc())
        .limit(5)
    )
    for event in rows:
        data = event.data or {}
        # The hub's surveys write "nps" (0–10) and "csat" (1–5); events posted through the API
        # may carry a generic "score" and "scale".
        for key, default_scale in (("nps", 10), ("csat", 5), ("score", None)):
            score = data.get(key)
            if isinstance(score, (int, float)) and not isinstance(score, bool):
                scale = data.get("scale") if key == "score" else default_scale
                return SurveyScore(score=float(score), scale=scale if isinstance(scale, int) else None,
                                   occurred_at=event.occurred_at, survey=data.get("survey") or event.subject)
    return None


def card_data(session: Session, *, contact_id: int, extensions: Iterable[Extension] = (),
              locale: str = "ru") -> CardData:
    """What the card and the screen pop show, with each installed extension's badges."""
    card = contact_card(session, contact_id=contact_id)
    attributes = [(k, v) for k, v in sorted(card.attributes.items()) if not isinstance(v, (dict, list))]
    open_tasks = list(session.scalars(
        select(Task).where(Task.contact_id == card.id, Task.status == TaskStatus.OPEN)
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id).limit(5)
    ))
    users = active_users(session)
    badges = [badge for extension in extensions
              for badge in extension.card_badges(session, contact_id=card.id, account_id=card.account_id,
                                                 locale=locale)]
    return CardData(
        card=card,
        orders=order_totals(session, contact_id=card.id),
        survey=last_survey_score(session, contact_id=card.id),
        attributes=attributes[:MAX_ATTRIBUTES],
        more_attributes=max(0, len(card.attributes) - MAX_ATTRIBUTES),
        open_tasks=open_tasks,
        users=users,
        account=session.get(Account, card.account_id) if card.account_id is not None else None,
        badges=badges,
    )
