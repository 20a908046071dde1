"""Managers' workload: per key-account manager, their accounts, the profit and agent time those make
and cost, the mean temperature of their key accounts, and their open tasks, against the cap."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Account, Task, TaskStatus, User
from keyaccounts.models import TemperatureSnapshot
from keyaccounts.profit import Rates, all_profits


@dataclass
class Load:
    user_id: int
    name: str
    accounts: int = 0
    key_accounts: int = 0
    profit: Decimal = Decimal(0)
    minutes: Decimal = Decimal(0)
    temperature: float | None = None  # mean of its key accounts' latest scores
    open_tasks: int = 0
    over_cap: bool = False


def workload(session: Session, *, since: datetime, until: datetime, rates: Rates, cap: int) -> list[Load]:
    """One row per user who manages at least one account, the most loaded first."""
    profits = all_profits(session, since=since, until=until, rates=rates)
    names = dict(session.execute(select(User.id, User.display_name)).all())
    loads: dict[int, Load] = {}
    key_ids: dict[int, list[int]] = defaultdict(list)
    for account_id, owner_id, is_key in session.execute(
            select(Account.id, Account.owner_id, Account.is_key).where(Account.owner_id.is_not(None))):
        load = loads.setdefault(owner_id, Load(owner_id, names.get(owner_id) or f"#{owner_id}"))
        load.accounts += 1
        figure = profits.get(("account", account_id))
        if figure is not None:
            load.profit += figure.profit
            load.minutes += figure.minutes
        if is_key:
            load.key_accounts += 1
            key_ids[owner_id].append(account_id)
    latest = (select(TemperatureSnapshot.account_id, func.max(TemperatureSnapshot.computed_at).label("at"))
              .group_by(TemperatureSnapshot.account_id).subquery())
    scores = dict(session.execute(
        select(TemperatureSnapshot.account_id, TemperatureSnapshot.score).join(
            latest, (latest.c.account_id == TemperatureSnapshot.account_id)
            & (latest.c.at == TemperatureSnapshot.computed_at))).all())
    tasks = dict(session.execute(
        select(Task.assignee_id, func.count()).where(Task.status == TaskStatus.OPEN, Task.assignee_id.in_(list(loads)))
        .group_by(Task.assignee_id)).all()) if loads else {}
    for owner_id, load in loads.items():
        measured = [scores[a] for a in key_ids[owner_id] if a in scores]
        load.temperature = sum(measured) / len(measured) if measured else None
        load.open_tasks = tasks.get(owner_id, 0)
        load.over_cap = load.key_accounts > cap
    return sorted(loads.values(), key=lambda l: (-l.key_accounts, -l.accounts, l.name))
