"""Choosing key accounts: every account ranked by profit, the Pareto curve, the trap, a suggested set.

The base is every account plus every contact without an account that had any figure in the period
(each is its own account). Key accounts are at most `key_share` of that base (20%): the suggested set
is the most profitable accounts up to that size, profit above zero. The trap, as the brief tells it:
- **costly VIPs**: accounts flagged key, or with a contact tagged "vip", whose profit is negative or
  in the bottom half of the ranking;
- **overlooked**: accounts in the suggested set nobody treats as key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from markupsafe import Markup, escape
from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from hub.db import contains_folded
from hub.models import Account, Contact, User
from keyaccounts.models import StoredFigure
from keyaccounts.profit import Owner, Profit, Rates, all_profits

VIP_TAG = "vip"
MAX_POINTS = 400
RANKING_ROWS = 100  # the ranking table's rows per page, in rank order
LISTED = 50  # the trap's and the suggested set's rows a page lists (the rest are counted)


@dataclass(frozen=True)
class Figure:
    """An owner's figures as the figures job stored them (`account_figure`): what a ranking row shows."""

    profit: Decimal
    margin: Decimal
    cost_to_serve: Decimal


@dataclass
class Ranked:
    owner: Owner
    name: str
    profit: Profit | Figure
    is_key: bool = False
    is_vip: bool = False
    manager: str | None = None
    rank: int = 0
    suggested: bool = False
    costly_vip: bool = False

    @property
    def account_id(self) -> int | None:
        return self.owner[1] if self.owner[0] == "account" else None

    @property
    def href(self) -> str:
        return f"/accounts/{self.owner[1]}" if self.owner[0] == "account" else f"/contacts/{self.owner[1]}"


@dataclass
class Board:
    rows: list[Ranked] = field(default_factory=list)
    total_profit: Decimal = Decimal(0)
    top_share: float | None = None  # share of the total profit made by the top 20%
    top_count: int = 0
    cumulative: list[float] = field(default_factory=list)  # cumulative share of profit after each rank
    computed_at: datetime | None = None  # when the figures job computed the figures shown; None: now

    @property
    def suggested(self) -> list[Ranked]:
        return [r for r in self.rows if r.suggested]

    @property
    def costly_vips(self) -> list[Ranked]:
        return [r for r in self.rows if r.costly_vip]

    @property
    def overlooked(self) -> list[Ranked]:
        return [r for r in self.rows if r.suggested and not r.is_key and r.account_id is not None]

    @property
    def pages(self) -> int:
        return max(1, math.ceil(len(self.rows) / RANKING_ROWS))

    def page(self, number: int) -> list[Ranked]:
        """The ranking table's rows of page `number` (1-based), in rank order: a page is a bounded
        render however many accounts there are (20,000 rows with a form each would be megabytes)."""
        start = (min(max(1, number), self.pages) - 1) * RANKING_ROWS
        return self.rows[start:start + RANKING_ROWS]

    @property
    def keys(self) -> list[Ranked]:
        return [r for r in self.rows if r.is_key]


def _vip_accounts(session: Session) -> set[Owner]:
    """Accounts (and lone contacts) with a contact tagged "vip", in one query."""
    rows = session.execute(
        select(Contact.account_id, Contact.id).where(Contact.merged_into.is_(None),
                                                     contains_folded(session, cast(Contact.tags, String), f'"{VIP_TAG}"'))
    )
    return {("account", a) if a is not None else ("contact", c) for a, c in rows}


def board(session: Session, *, since: datetime, until: datetime, rates: Rates, key_share: float) -> Board:
    """The ranking of the period with its curve, its trap and its suggested set, computed now."""
    profits = all_profits(session, since=since, until=until, rates=rates)
    managers = dict(session.execute(select(User.id, User.display_name)).all())
    rows: list[Ranked] = []
    for account_id, name, is_key, owner_id in session.execute(
            select(Account.id, Account.name, Account.is_key, Account.owner_id)):
        owner: Owner = ("account", account_id)
        rows.append(Ranked(owner, name, profits.pop(owner, Profit(owner)), is_key=is_key,
                           manager=managers.get(owner_id) if owner_id else None))
    lone = [o for o in profits if o[0] == "contact"]
    names = dict(session.execute(select(Contact.id, Contact.display_name).where(
        Contact.id.in_([o[1] for o in lone]))).all()) if lone else {}
    rows += [Ranked(o, names.get(o[1], f"#{o[1]}"), profits[o]) for o in lone]
    return _ranked(session, rows, key_share=key_share)


def stored_board(session: Session, *, period_days: int, key_share: float) -> Board | None:
    """The ranking the figures job stored for `period_days` (None when it has not stored one): a few
    column reads, nothing summed. Accounts created since rank at zero; contacts that joined an account
    or were merged since drop out until the next run."""
    f = StoredFigure
    computed_at = session.scalar(select(func.max(f.computed_at)).where(f.period_days == period_days))
    if computed_at is None:
        return None
    managers = dict(session.execute(select(User.id, User.display_name)).all())
    zero = Figure(Decimal(0), Decimal(0), Decimal(0))
    rows: list[Ranked] = []
    for account_id, name, is_key, owner_id, profit, margin, cost in session.execute(
            select(Account.id, Account.name, Account.is_key, Account.owner_id, f.profit, f.margin, f.cost_to_serve)
            .outerjoin(f, (f.owner_kind == "account") & (f.owner_id == Account.id))):
        rows.append(Ranked(("account", account_id), name, zero if profit is None else Figure(profit, margin, cost),
                           is_key=is_key, manager=managers.get(owner_id) if owner_id else None))
    for contact_id, name, profit, margin, cost in session.execute(
            select(Contact.id, Contact.display_name, f.profit, f.margin, f.cost_to_serve)
            .join(f, (f.owner_kind == "contact") & (f.owner_id == Contact.id))
            .where(Contact.account_id.is_(None), Contact.merged_into.is_(None))):
        rows.append(Ranked(("contact", contact_id), name, Figure(profit, margin, cost)))
    result = _ranked(session, rows, key_share=key_share)
    result.computed_at = computed_at
    return result


def _ranked(session: Session, rows: list[Ranked], *, key_share: float) -> Board:
    """Rank the rows by profit and mark the curve, the trap and the suggested set."""
    vips = _vip_accounts(session)
    rows.sort(key=lambda r: (-r.profit.profit, r.name, r.owner))
    result = Board(rows=rows)
    if not rows:
        return result
    result.total_profit = sum((r.profit.profit for r in rows), Decimal(0))
    result.top_count = max(1, math.floor(len(rows) * key_share))
    median = rows[len(rows) // 2].profit.profit
    running = Decimal(0)
    for rank, row in enumerate(rows, start=1):
        row.rank = rank
        row.is_vip = row.owner in vips
        running += row.profit.profit
        if result.total_profit > 0:
            result.cumulative.append(float(running / result.total_profit))
        row.suggested = rank <= result.top_count and row.profit.profit > 0
        low = row.profit.profit <= 0 or (row.profit.profit <= median and rank > len(rows) // 2)
        row.costly_vip = (row.is_key or row.is_vip) and low
    if result.total_profit > 0:
        top = sum((r.profit.profit for r in rows[:result.top_count]), Decimal(0))
        result.top_share = float(top / result.total_profit)
    return result


def pareto_svg(data: Board, *, title: str = "", width: int = 640, height: int = 240) -> Markup:
    """The Pareto curve as inline SVG: cumulative share of profit against share of accounts, the 20%
    line marked; empty when the total profit is not positive (there is no share to speak of)."""
    if not data.cumulative:
        return Markup("")
    pad_l, pad_r, pad_t, pad_b = 44, 12, 12, 28
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = len(data.cumulative)
    top = max(1.0, *data.cumulative)
    bottom = min(0.0, *data.cumulative)

    def x(i: float) -> float:
        return pad_l + plot_w * i / n

    def y(v: float) -> float:
        return pad_t + plot_h - plot_h * (v - bottom) / (top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'id="pareto-chart" aria-label="{escape(title)}">']
    for frac in (0, 0.5, 1):
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(frac):.1f}" y2="{y(frac):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{pad_l - 6}" y="{y(frac) + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#6b7280">{int(frac * 100)}%</text>')
    cut = x(data.top_count)
    parts.append(f'<line x1="{cut:.1f}" x2="{cut:.1f}" y1="{pad_t}" y2="{pad_t + plot_h}" stroke="#d97706" '
                 f'stroke-dasharray="4 3"/>')
    # At most ~MAX_POINTS vertices: 20,000 accounts would make a curve no screen can show, in 300 KB.
    step = max(1, n // MAX_POINTS)
    kept = [i for i in range(n) if i % step == 0 or i == n - 1]
    coords = " ".join([f"{x(0):.1f},{y(0):.1f}", *(f"{x(i + 1):.1f},{y(data.cumulative[i]):.1f}" for i in kept)])
    parts.append(f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{coords}"/>')
    marked = [(i, row) for i, row in enumerate(data.rows) if row.is_key or row.costly_vip]
    for i, row in marked[:MAX_POINTS]:  # as many marks as vertices at most
        if data.cumulative:
            colour = "#dc2626" if row.costly_vip else "#16a34a"
            parts.append(f'<circle cx="{x(i + 1):.1f}" cy="{y(data.cumulative[i]):.1f}" r="3.5" fill="{colour}">'
                         f'<title>{escape(row.name)}</title></circle>')
    parts.append(f'<text x="{pad_l}" y="{height - 8}" font-size="11" fill="#6b7280">1</text>'
                 f'<text x="{width - pad_r}" y="{height - 8}" text-anchor="end" font-size="11" fill="#6b7280">{n}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_svg(points: list[tuple[datetime, int]], *, title: str, fmt_date: object = None, width: int = 640,
              height: int = 160) -> Markup:
    """A key account's temperature over time as inline SVG (0–100, the cold zone below 40 shaded)."""
    if not points:
        return Markup("")
    pad_l, pad_r, pad_t, pad_b = 36, 12, 10, 24
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = len(points)

    def x(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return pad_t + plot_h - plot_h * v / 100

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'id="temperature-chart" aria-label="{escape(title)}">',
             f'<rect x="{pad_l}" y="{y(40):.1f}" width="{plot_w}" height="{y(0) - y(40):.1f}" fill="#fdecec"/>']
    for value in (0, 50, 100):
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{pad_l - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">{value}</text>')
    coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_at, v) in enumerate(points))
    parts.append(f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{coords}"/>')
    for i, (at, v) in enumerate(points):
        label = fmt_date(at) if callable(fmt_date) else at.date().isoformat()
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="#2563eb"><title>{escape(label)}: {v}</title></circle>')
    for i in sorted({0, n - 1}):
        label = fmt_date(points[i][0]) if callable(fmt_date) else points[i][0].date().isoformat()
        anchor = "start" if i == 0 and n > 1 else "end" if n > 1 else "middle"
        parts.append(f'<text x="{x(i):.1f}" y="{height - 6}" text-anchor="{anchor}" font-size="11" fill="#6b7280">'
                     f'{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
