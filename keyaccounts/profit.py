"""Profitability per account and period: margin from orders minus the cost to serve from the timeline.

Profit = gross margin − cost to serve, in the settings' currency (docs/accounts.md):

- **Margin.** `order.completed` events (channel "commerce") in the period, each order once (its
  latest report wins, as `hub.events.order_totals` counts them); `order.refunded` subtracts. The
  order's own `margin` when the shop sent it, else amount × `default_margin_rate`. Orders in another
  currency are listed as not counted rather than converted at a guessed rate.
- **Cost to serve**, agent time × `agent_hour_cost`:
  calls by their talk time (`talk_seconds`, else `duration_seconds`); completed meetings by their
  length (`ends_at − starts_at`); emails and SMS an agent wrote, and notes, at their minutes per
  item; tasks about the contact created in the period at `minutes_per_task`;
  plus marketing deliveries sent in the period at `marketing_send_cost[channel]` each.
- A contact without an account is its own account (key `("contact", id)`).

One account's figure: one set-based query per input (`load_inputs`), then `compute`, a pure
function of those rows and the rates, so the figure is reproducible and every line keeps the ids of
the rows behind it. Every account's at once (`all_profits`): the same rules summed in SQL
(`keyaccounts.totals`), one row per account and line, never one per event. The account page's panel
(`account_panel`): its figures summed in SQL the same way, and only each source's newest rows read to
list them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from hub.db import among
from hub.events import COMMERCE_CHANNEL, ORDER_COMPLETED, ORDER_REFUNDED
from hub.models import Contact, Delivery, Purpose, Task, TimelineEvent

Owner = tuple[str, int]  # ("account", id) or ("contact", id) for a contact without an account
CENT = Decimal("0.01")
# The cost lines, in the order pages show them.
LINES = ("calls", "meetings", "emails", "sms", "notes", "tasks", "marketing")
AGENT_WRITTEN = {("email", "out"): "emails", ("sms", "out"): "sms", ("note", "internal"): "notes"}


@dataclass(frozen=True)
class Rates:
    """What the computation assumes; from `[extensions.keyaccounts]` (keyaccounts.extension)."""

    currency: str = "RUB"
    default_margin_rate: Decimal = Decimal("0.25")
    agent_hour_cost: Decimal = Decimal("1200")
    minutes_per_email: Decimal = Decimal("6")
    minutes_per_sms: Decimal = Decimal("2")
    minutes_per_note: Decimal = Decimal("3")
    minutes_per_task: Decimal = Decimal("10")
    marketing_send_cost: dict[str, Decimal] = field(default_factory=lambda: {"email": Decimal("0.30"),
                                                                              "sms": Decimal("3.50")})

    def minutes_per(self, line: str) -> Decimal:
        return {"emails": self.minutes_per_email, "sms": self.minutes_per_sms, "notes": self.minutes_per_note,
                "tasks": self.minutes_per_task}[line]


# --- the inputs: one row type per source, each keeping the id it came from ----------------------

@dataclass(frozen=True)
class OrderRow:
    event_id: int
    owner: Owner
    occurred_at: datetime
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ItemRow:
    """A call, meeting, agent-written message, note, task or marketing send: one cost item."""

    line: str  # one of LINES
    ref: str  # "event:<id>", "task:<id>" or "delivery:<id>"
    owner: Owner
    occurred_at: datetime
    seconds: int | None = None  # a call's talk time, a meeting's length
    channel: str | None = None  # a marketing send's channel


@dataclass
class Inputs:
    orders: list[OrderRow] = field(default_factory=list)
    items: list[ItemRow] = field(default_factory=list)


def _owner(account_id: int | None, contact_id: int) -> Owner:
    return ("account", account_id) if account_id is not None else ("contact", contact_id)


def _scoped(session: Session, stmt: Select[Any], column: Any, contact_ids: Sequence[int] | None) -> Select[Any]:
    return stmt if contact_ids is None else stmt.where(among(session, column, contact_ids))


def _sources(session: Session, *, since: datetime, until: datetime,
             contact_ids: Sequence[int] | None) -> dict[str, tuple[Select[Any], Any, Any]]:
    """Each input source's statement, its time column (for a newest-first page) and its row maker."""
    member = (Contact.account_id, Contact.id)
    e = TimelineEvent
    in_period = and_(e.occurred_at >= since, e.occurred_at < until)
    events = select(e.id, e.occurred_at, e.channel, e.direction, e.kind, e.data, *member).join(
        Contact, Contact.id == e.contact_id)

    def order(eid: int, at: datetime, _ch: str, _dir: str, kind: str, data: Any, account_id: int | None,
              contact_id: int) -> OrderRow:
        return OrderRow(eid, _owner(account_id, contact_id), at, kind, data or {})

    def call(eid: int, at: datetime, _ch: str, _dir: str, _kind: str, data: Any, account_id: int | None,
             contact_id: int) -> ItemRow:
        data = data or {}
        seconds = _int(data.get("talk_seconds")) or _int(data.get("duration_seconds")) or 0
        return ItemRow("calls", f"event:{eid}", _owner(account_id, contact_id), at, seconds=seconds)

    def meeting(eid: int, at: datetime, _ch: str, _dir: str, _kind: str, data: Any, account_id: int | None,
                contact_id: int) -> ItemRow:
        return ItemRow("meetings", f"event:{eid}", _owner(account_id, contact_id), at,
                       seconds=_meeting_seconds(data or {}))

    def written(eid: int, at: datetime, channel: str, direction: str, account_id: int | None,
                contact_id: int) -> ItemRow:
        return ItemRow(AGENT_WRITTEN[(channel, direction)], f"event:{eid}", _owner(account_id, contact_id), at)

    def task(tid: int, at: datetime, account_id: int | None, contact_id: int) -> ItemRow:
        return ItemRow("tasks", f"task:{tid}", _owner(account_id, contact_id), at)

    def send(did: int, at: datetime, channel: str, account_id: int | None, contact_id: int) -> ItemRow:
        return ItemRow("marketing", f"delivery:{did}", _owner(account_id, contact_id), at, channel=channel)

    sources: dict[str, tuple[Select[Any], Any, Any, Any]] = {
        "orders": (events.where(in_period, e.channel == COMMERCE_CHANNEL, e.kind.in_([ORDER_COMPLETED, ORDER_REFUNDED])),
                   e.contact_id, (e.occurred_at, e.id), order),
        "calls": (events.where(in_period, e.channel == "phone", e.kind == "call"), e.contact_id, (e.occurred_at, e.id),
                  call),
        "meetings": (events.where(in_period, e.channel == "meetings", e.kind == "meeting.completed"), e.contact_id,
                     (e.occurred_at, e.id), meeting),
        "written": (select(e.id, e.occurred_at, e.channel, e.direction, *member)
                    .join(Contact, Contact.id == e.contact_id)
                    .where(in_period, e.actor_user_id.is_not(None),
                           or_(*(and_(e.channel == ch, e.direction == d) for ch, d in AGENT_WRITTEN))),
                    e.contact_id, (e.occurred_at, e.id), written),
        "tasks": (select(Task.id, Task.created_at, *member).join(Contact, Contact.id == Task.contact_id)
                  .where(Task.created_at >= since, Task.created_at < until), Task.contact_id, (Task.created_at, Task.id),
                  task),
        "marketing": (select(Delivery.id, Delivery.sent_at, Delivery.channel, *member)
                      .join(Contact, Contact.id == Delivery.contact_id)
                      .where(Delivery.purpose == Purpose.MARKETING, Delivery.sent_at >= since, Delivery.sent_at < until),
                      Delivery.contact_id, (Delivery.sent_at, Delivery.id), send),
    }
    return {name: (_scoped(session, stmt, column, contact_ids), timing, make)
            for name, (stmt, column, timing, make) in sources.items()}


def load_inputs(session: Session, *, since: datetime, until: datetime,
                contact_ids: Sequence[int] | None = None, newest: int | None = None) -> Inputs:
    """Every input row of the period, for everyone or for these contacts: one query per source.
    With `newest`, only each source's newest rows up to that many (a page lists them; the figures
    come from `keyaccounts.totals`)."""
    inputs = Inputs()
    for name, (stmt, timing, make) in _sources(session, since=since, until=until, contact_ids=contact_ids).items():
        if newest is not None:
            stmt = stmt.order_by(*(c.desc() for c in timing)).limit(newest)
        elif name == "orders":  # in time order: a re-reported order keeps its latest report
            stmt = stmt.order_by(*timing)
        rows = [make(*row) for row in session.execute(stmt)]
        if name == "orders":
            inputs.orders.extend(sorted(rows, key=lambda r: (r.occurred_at, r.event_id)))
        else:
            inputs.items.extend(rows)
    return inputs


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return max(0, int(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _meeting_seconds(data: dict[str, Any]) -> int:
    try:
        starts, ends = datetime.fromisoformat(data["starts_at"]), datetime.fromisoformat(data["ends_at"])
    except (KeyError, TypeError, ValueError):
        return 0
    return max(0, int((ends - starts).total_seconds()))


# --- the computation ----------------------------------------------------------------------------

@dataclass(slots=True)
class Line:
    """One cost line of an account: how many items, how much agent time, what it cost, and the rows."""

    name: str
    count: int = 0
    minutes: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    refs: list[str] = field(default_factory=list)


@dataclass
class OrderFigure:
    """One order as counted: its revenue, its margin and where the margin came from."""

    event_id: int
    order_id: str
    occurred_at: datetime
    revenue: Decimal
    margin: Decimal
    margin_source: str  # "shop" | "default"
    refunded: bool = False


@dataclass(slots=True)
class Profit:
    owner: Owner
    orders: list[OrderFigure] = field(default_factory=list)
    skipped_orders: list[int] = field(default_factory=list)  # event ids in another currency
    lines: dict[str, Line] = field(default_factory=lambda: {name: Line(name) for name in LINES})
    revenue: Decimal = Decimal(0)  # the counted orders' amounts, refunds subtracted
    margin: Decimal = Decimal(0)
    order_count: int = 0  # orders and refunds counted (`orders` may list only some of them)
    skipped_count: int = 0  # reports not counted: another currency, or no amount

    @property
    def cost_to_serve(self) -> Decimal:
        return sum((line.cost for line in self.lines.values()), Decimal(0))

    @property
    def profit(self) -> Decimal:
        return self.margin - self.cost_to_serve

    @property
    def minutes(self) -> Decimal:
        return sum((line.minutes for line in self.lines.values() if line.name != "marketing"), Decimal(0))


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _order_figures(rows: Iterable[OrderRow], rates: Rates, profit_of: Any) -> None:
    latest: dict[tuple[Owner, str, str], OrderRow] = {}
    refunds: list[OrderRow] = []
    for row in rows:  # in time order: a re-reported order keeps its latest report
        order = row.data.get("order") or {}
        if row.kind == ORDER_COMPLETED:
            latest[(row.owner, str(row.data.get("source")), str(order.get("order_id")))] = row
        else:
            refunds.append(row)
    for row, refunded in [*((r, False) for r in latest.values()), *((r, True) for r in refunds)]:
        profit = profit_of(row.owner)
        order = row.data.get("order") or {}
        try:
            amount, currency = Decimal(str(order["amount"])), str(order["currency"])
            shop_margin = None if order.get("margin") is None else Decimal(str(order["margin"]))
        except (KeyError, ArithmeticError):
            profit.skipped_orders.append(row.event_id)  # not written by hub.events: nothing to trust
            profit.skipped_count += 1
            continue
        if currency != rates.currency:
            profit.skipped_orders.append(row.event_id)
            profit.skipped_count += 1
            continue
        margin = shop_margin if shop_margin is not None else _money(amount * rates.default_margin_rate)
        sign = -1 if refunded else 1
        profit.orders.append(OrderFigure(row.event_id, str(order.get("order_id", "")), row.occurred_at,
                                         sign * amount, sign * margin, "shop" if shop_margin is not None else "default",
                                         refunded))
        profit.revenue += sign * amount
        profit.margin += sign * margin
        profit.order_count += 1


def compute(inputs: Inputs, rates: Rates) -> dict[Owner, Profit]:
    """Each owner's profit from the input rows (pure: the same rows and rates give the same figures)."""
    profits: dict[Owner, Profit] = {}

    def profit_of(owner: Owner) -> Profit:
        if owner not in profits:
            profits[owner] = Profit(owner)
        return profits[owner]

    _order_figures(inputs.orders, rates, profit_of)
    per_minute = rates.agent_hour_cost / 60
    for item in inputs.items:
        line = profit_of(item.owner).lines[item.line]
        line.count += 1
        line.refs.append(item.ref)
        if item.line == "marketing":
            line.cost += rates.marketing_send_cost.get(item.channel or "", Decimal(0))
            continue
        minutes = Decimal(item.seconds or 0) / 60 if item.line in ("calls", "meetings") else rates.minutes_per(item.line)
        line.minutes += minutes
        line.cost += minutes * per_minute
    for profit in profits.values():
        for line in profit.lines.values():
            line.cost = _money(line.cost)
            line.minutes = line.minutes.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return profits


def account_profit(session: Session, *, account_id: int, since: datetime, until: datetime,
                   rates: Rates) -> Profit:
    """One account's profit over the period (its surviving contacts' rows), every row kept in `refs`."""
    from hub.accounts import member_ids

    ids = member_ids(session, account_id=account_id)
    owner: Owner = ("account", account_id)
    if not ids:
        return Profit(owner)
    return compute(load_inputs(session, since=since, until=until, contact_ids=ids), rates).get(owner, Profit(owner))


def account_panel(session: Session, *, account_id: int, since: datetime, until: datetime, rates: Rates,
                  newest: int) -> tuple[Profit, Profit]:
    """What the account page shows: the period's figures summed by the database (`totals`), and the
    newest `newest` rows of each source with their own figures (`sample`, whose refs and orders the
    page lists). However long the account's timeline, neither reads more than a page of rows."""
    from hub.accounts import member_ids
    from keyaccounts.totals import load_totals

    ids = member_ids(session, account_id=account_id)
    owner: Owner = ("account", account_id)
    if not ids:
        return Profit(owner), Profit(owner)
    totals = load_totals(session, since=since, until=until, rates=rates, contact_ids=ids).get(owner, Profit(owner))
    sample = compute(load_inputs(session, since=since, until=until, contact_ids=ids, newest=newest), rates)
    return totals, sample.get(owner, Profit(owner))


def all_profits(session: Session, *, since: datetime, until: datetime, rates: Rates) -> dict[Owner, Profit]:
    """Every account's profit over the period, and every contact's without an account that had any:
    summed by the database (keyaccounts.totals), so memory stays flat however many events there are."""
    from keyaccounts.totals import load_totals

    return load_totals(session, since=since, until=until, rates=rates)


def by_line(profit: Profit) -> list[Line]:
    return [profit.lines[name] for name in LINES]

