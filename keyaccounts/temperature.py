"""The temperature of a key relationship: a score 0–100 from weighted signals, each explained.

Six signals, each a part in [0, 1] (1 = warm) times its weight; the weights add up to 100 and a
signal with no data is neutral (0.5). docs/accounts.md has the table.

| signal     | weight | warm (1)                                  | cold (0)                                 |
|------------|--------|-------------------------------------------|------------------------------------------|
| recency    | 25     | the customer wrote or called within its usual gap (median gap of its inbound contact over 180 days) | silent for 3× that gap or more |
| frequency  | 15     | inbound contact in the last 30 days at or above its own 30-day average of the 180 days before | none |
| response   | 15     | we answered their messages of the last 90 days within 4 h (median) | 72 h or more, or not at all |
| survey     | 20     | the last score is top of its scale, and not below the ones before | the bottom, and falling |
| orders     | 15     | orders of the last 90 days match the count and value of its own 90-day average over the year before | none |
| detractors | 10     | no open follow-up task from a low survey score | two or more |

`signals_of_many` reads the inputs of a chunk of accounts in three queries, one pass over their
contacts’ timelines (whatever the chunk's size); `score` is pure.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, case, func, literal, null, or_, select, union_all
from sqlalchemy.orm import Session

from hub.db import among
from hub.json_sql import json_number
from hub.events import COMMERCE_CHANNEL, ORDER_COMPLETED
from hub.models import Contact, Direction, Task, TaskStatus, TimelineEvent
from hub.web.i18n import N_
from keyaccounts.batch import rows_of

WEIGHTS = {"recency": 25, "frequency": 15, "response": 15, "survey": 20, "orders": 15, "detractors": 10}
NEUTRAL = 0.5
WARM_PART = 0.6  # a signal below this is named in the explanation
RHYTHM_WINDOW = timedelta(days=180)
RECENT = timedelta(days=30)
RESPONSE_WINDOW = timedelta(days=90)
ORDER_RECENT, ORDER_HISTORY = timedelta(days=90), timedelta(days=365)
FAST_REPLY_H, SLOW_REPLY_H = 4.0, 72.0
CONVERSATION_CHANNELS = ("email", "sms", "phone", "forms")  # inbound contact that a person makes
SURVEY_KINDS = ("survey.answered", "survey.response", "survey.completed")
# Why a signal is cold, in the words pages translate.
SILENT = N_("silent %(days)d days against a usual %(rhythm)d")
FEWER = N_("inbound contact down %(change)d%% against its 180-day rhythm")
MORE = N_("inbound contact up %(change)d%% against its 180-day rhythm")
UNANSWERED = N_("their messages are not answered")
ANSWERED_IN = N_("answered in %(hours)d h (median)")
LAST_NPS = N_("last NPS %(score)s")
LAST_CSAT = N_("last CSAT %(score)s")
ORDERS = N_("orders at %(count)d%% of their usual count, %(value)d%% of their usual value")
DETRACTORS = N_("%(num)d open detractor task(s)")
SIGNAL_LABELS = {"recency": N_("Recency of their contact"), "frequency": N_("Frequency of their contact"),
                 "response": N_("Our response time"), "survey": N_("Survey scores"), "orders": N_("Orders"),
                 "detractors": N_("Open detractor tasks")}


@dataclass
class Signals:
    """What the score is computed from (one account, at one time)."""

    inbound_gaps_days: list[float] = field(default_factory=list)  # gaps between inbound contacts, oldest first
    days_since_inbound: float | None = None
    inbound_recent: int = 0  # in the last 30 days
    inbound_before_per_30: float | None = None  # the 30-day average over the 180 days before
    reply_hours: list[float] = field(default_factory=list)  # per inbound message of the last 90 days (inf: none)
    survey_scores: list[float] = field(default_factory=list)  # normalised 0–1, oldest first
    last_survey: tuple[float, int] | None = None  # the last raw score and its scale
    orders_recent: int = 0
    value_recent: Decimal = Decimal(0)
    orders_before_per_90: float | None = None
    value_before_per_90: Decimal | None = None
    open_detractor_tasks: int = 0


@dataclass(frozen=True)
class Part:
    name: str
    value: float  # 0–1
    points: float  # value × weight
    template: str = ""  # an N_() message saying why, with %(…)s figures; "" when it has nothing to say
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The reason in English (pages translate `template` and fill in `params`)."""
        return self.template % self.params if self.template else ""


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _recency(s: Signals) -> Part:
    if s.days_since_inbound is None or len(s.inbound_gaps_days) < 2:
        return Part("recency", NEUTRAL, 0, "")
    rhythm = max(1.0, statistics.median(s.inbound_gaps_days))
    ratio = s.days_since_inbound / rhythm
    value = 1.0 if ratio <= 1 else _clamp(1 - (ratio - 1) / 2)
    return Part("recency", value, 0, SILENT, {"days": round(s.days_since_inbound), "rhythm": round(rhythm)})


def _frequency(s: Signals) -> Part:
    if not s.inbound_before_per_30:
        return Part("frequency", NEUTRAL if not s.inbound_recent else 1.0, 0, "")
    ratio = s.inbound_recent / s.inbound_before_per_30
    change = round((ratio - 1) * 100)
    return Part("frequency", _clamp(ratio), 0, FEWER if change < 0 else MORE, {"change": abs(change)})


def _response(s: Signals) -> Part:
    if not s.reply_hours:
        return Part("response", NEUTRAL, 0, "")
    median = statistics.median(s.reply_hours)
    value = 1.0 if median <= FAST_REPLY_H else _clamp(1 - (median - FAST_REPLY_H) / (SLOW_REPLY_H - FAST_REPLY_H))
    if median == float("inf"):
        return Part("response", value, 0, UNANSWERED)
    return Part("response", value, 0, ANSWERED_IN, {"hours": round(median)})


def _survey(s: Signals) -> Part:
    if not s.survey_scores:
        return Part("survey", NEUTRAL, 0, "")
    last = s.survey_scores[-1]
    before = s.survey_scores[:-1]
    trend = _clamp(0.5 + (last - statistics.mean(before))) if before else 0.5
    raw, scale = s.last_survey or (last * 10, 10)
    return Part("survey", _clamp(0.7 * last + 0.3 * trend), 0, LAST_NPS if scale == 10 else LAST_CSAT,
                {"score": f"{raw:g}"})


def _orders(s: Signals) -> Part:
    if not s.orders_before_per_90:
        return Part("orders", NEUTRAL if not s.orders_recent else 1.0, 0, "")
    count_ratio = s.orders_recent / s.orders_before_per_90
    value_ratio = float(s.value_recent / s.value_before_per_90) if s.value_before_per_90 else count_ratio
    value = _clamp(0.5 * min(1.0, count_ratio) + 0.5 * min(1.0, value_ratio))
    return Part("orders", value, 0, ORDERS, {"count": round(count_ratio * 100), "value": round(value_ratio * 100)})


def _detractors(s: Signals) -> Part:
    value = {0: 1.0, 1: 0.5}.get(s.open_detractor_tasks, 0.0)
    return Part("detractors", value, 0, DETRACTORS if s.open_detractor_tasks else "", {"num": s.open_detractor_tasks})


def score(signals: Signals) -> tuple[int, list[Part], str]:
    """The score 0–100, each signal's part, and the explanation naming the cold ones (coldest first)."""
    parts = []
    for rule in (_recency, _frequency, _response, _survey, _orders, _detractors):
        part = rule(signals)
        parts.append(dataclasses.replace(part, points=part.value * WEIGHTS[part.name]))
    total = round(sum(p.points for p in parts))
    cold = sorted((p for p in parts if p.value < WARM_PART and p.reason), key=lambda p: p.value)
    explanation = "; ".join(p.reason for p in cold) or "every signal is warm"
    return max(0, min(100, total)), parts, explanation


def signals_of(session: Session, *, account_id: int, now: datetime) -> Signals:
    """One account's signals at `now`, from its surviving contacts' timelines and tasks."""
    return signals_of_many(session, account_ids=[account_id], now=now)[account_id]


def signals_of_many(session: Session, *, account_ids: Sequence[int], now: datetime) -> dict[int, Signals]:
    """The signals of several accounts at `now` in three queries whatever their number (the watch
    reads key accounts in chunks: the rows of one chunk's members only, never the whole timeline).

    The members' timeline rows that any signal needs are picked in one pass (`ev`, a CTE both stores
    materialise, since four parts read it) and each signal's part is taken from those rows: one scan
    of the timeline per chunk instead of one per signal (four)."""
    found = {account_id: Signals() for account_id in account_ids}
    owner = dict(session.execute(select(Contact.id, Contact.account_id).where(
        among(session, Contact.account_id, list(account_ids)), Contact.merged_into.is_(None))).all())
    if not owner:
        return found
    e = TimelineEvent
    inbound_since, reply_since = now - RHYTHM_WINDOW - RECENT, now - RESPONSE_WINDOW
    order_since = now - ORDER_RECENT - ORDER_HISTORY
    is_inbound = and_(e.direction == Direction.IN, e.channel.in_(CONVERSATION_CHANNELS), e.occurred_at >= inbound_since)
    is_reply = and_(e.channel.in_(("email", "sms")), e.direction.in_((Direction.IN, Direction.OUT)),
                    e.occurred_at >= reply_since)
    is_survey = e.kind.in_(SURVEY_KINDS)
    is_order = and_(e.channel == COMMERCE_CHANNEL, e.kind == ORDER_COMPLETED, e.occurred_at >= order_since)
    ev = (select(e.id, e.contact_id, e.occurred_at, e.direction,
                 case((is_inbound, 1), else_=0).label("inbound"), case((is_reply, 1), else_=0).label("reply"),
                 case((is_survey, json_number(e.data, "nps"))).label("nps"),
                 case((is_survey, json_number(e.data, "csat"))).label("csat"),
                 case((is_survey, 1), else_=0).label("survey"),
                 case((is_order, func.coalesce(json_number(e.data, "order", "amount"), 0))).label("amount"))
          .where(among(session, e.contact_id, list(owner)), e.occurred_at <= now,
                 or_(is_inbound, is_reply, is_survey, is_order))
          .cte("ev"))
    nothing = null()
    # Each part's rows with a tag: (part, contact, time, direction, a, b, c, d); the first part's
    # columns give the union its types.
    inbound_rows = select(literal("i"), ev.c.contact_id, ev.c.occurred_at, sa.cast(nothing, e.direction.type),
                          sa.cast(nothing, sa.BigInteger()), *(sa.cast(nothing, sa.Numeric()) for _ in range(3))
                          ).where(ev.c.inbound == 1)
    reply_rows = select(literal("r"), ev.c.contact_id, ev.c.occurred_at, ev.c.direction, ev.c.id, nothing, nothing,
                        nothing).where(ev.c.reply == 1)
    ranked = (select(ev.c.contact_id, ev.c.nps, ev.c.csat,
                     func.row_number().over(partition_by=Contact.account_id,
                                            order_by=(ev.c.occurred_at.desc(), ev.c.id.desc())).label("nth"))
              .select_from(ev).join(Contact, Contact.id == ev.c.contact_id).where(ev.c.survey == 1).subquery())
    survey_rows = select(literal("s"), ranked.c.contact_id, nothing, nothing, ranked.c.nth, ranked.c.nps,
                         ranked.c.csat, nothing).where(ranked.c.nth <= 10)
    # Orders: counted and summed per contact and window by the database (no event's data in Python),
    # then per account here (a row per contact, never one per order).
    recent = ev.c.occurred_at >= now - ORDER_RECENT
    order_rows = (select(literal("o"), ev.c.contact_id, nothing, nothing, func.count(case((recent, 1))),
                         func.sum(case((recent, ev.c.amount), else_=0)), func.count(case((~recent, 1))),
                         func.sum(case((~recent, ev.c.amount), else_=0)))
                  .where(ev.c.amount.is_not(None)).group_by(ev.c.contact_id))
    inbound: dict[int, list[datetime]] = defaultdict(list)
    replies, surveys = [], []
    before_count: dict[int, int] = defaultdict(int)
    before_value: dict[int, Decimal] = defaultdict(Decimal)
    for part, contact_id, at, direction, a, b, c, d in rows_of(
            session.execute(union_all(inbound_rows, reply_rows, survey_rows, order_rows))):
        account_id = owner[contact_id]
        if part == "i":
            inbound[account_id].append(at)
        elif part == "r":
            replies.append((at, a, direction, contact_id))
        elif part == "s":
            surveys.append((a, contact_id, b, c))
        else:
            found[account_id].orders_recent += int(a)
            found[account_id].value_recent += Decimal(str(b or 0))
            before_count[account_id] += int(c)
            before_value[account_id] += Decimal(str(d or 0))

    for account_id, times in inbound.items():
        times.sort()
        s = found[account_id]
        s.days_since_inbound = (now - times[-1]).total_seconds() / 86400
        window = [t for t in times if t >= now - RHYTHM_WINDOW]
        s.inbound_gaps_days = [(b - a).total_seconds() / 86400 for a, b in zip(window, window[1:])]
        s.inbound_recent = sum(1 for t in times if t >= now - RECENT)
        before = sum(1 for t in times if t < now - RECENT)
        s.inbound_before_per_30 = before / (RHYTHM_WINDOW / RECENT) if before else None

    waiting: dict[int, datetime] = {}
    replies.sort(key=lambda r: (r[0], r[1]))  # in time order, as the conversation went
    for at, _id, direction, contact_id in replies:
        if direction == Direction.IN:
            waiting.setdefault(contact_id, at)
        elif contact_id in waiting:
            found[owner[contact_id]].reply_hours.append((at - waiting.pop(contact_id)).total_seconds() / 3600)
    for contact_id, at in waiting.items():
        late = (now - at) > timedelta(hours=SLOW_REPLY_H)
        found[owner[contact_id]].reply_hours.append(float("inf") if late else (now - at).total_seconds() / 3600)

    surveys.sort(key=lambda r: r[0])  # newest first: each older score goes in front
    for _nth, contact_id, nps, csat in surveys:
        s = found[owner[contact_id]]
        for raw, scale in ((nps, 10), (csat, 5)):
            if raw is not None:
                s.survey_scores.insert(0, float(raw) / scale if scale == 10 else (float(raw) - 1) / 4)
                s.last_survey = s.last_survey or (float(raw), scale)
                break

    periods = ORDER_HISTORY / ORDER_RECENT
    for account_id, count in before_count.items():
        if count:
            found[account_id].orders_before_per_90 = count / periods
            found[account_id].value_before_per_90 = before_value[account_id] / Decimal(str(periods))

    for account_id, count in session.execute(
            select(Contact.account_id, func.count()).select_from(Task)
            .join(TimelineEvent, TimelineEvent.id == Task.source_event_id).join(Contact, Contact.id == Task.contact_id)
            .where(among(session, Task.contact_id, list(owner)), Task.status == TaskStatus.OPEN,
                   TimelineEvent.kind.in_(SURVEY_KINDS)).group_by(Contact.account_id)):
        found[account_id].open_detractor_tasks = int(count)
    return found


def parts_json(parts: list[Part]) -> dict[str, Any]:
    """The parts as a snapshot keeps them (pages translate each template with its params)."""
    return {p.name: {"name": p.name, "value": p.value, "points": p.points, "template": p.template,
                     "params": dict(p.params), "reason": p.reason, "weight": WEIGHTS[p.name]} for p in parts}
