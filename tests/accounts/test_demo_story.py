"""The demo tells the brief's story: a "VIP" that loses money, a quiet profitable account that the
scheduler's first run alerts on, a cooling key account with a falling trend."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from hub import clock
from hub.auth import create_user
from hub.models import Account, Role, Task
from keyaccounts.choosing import board
from keyaccounts.demo import BANK, CHAIN, PLANT, demo
from keyaccounts.models import TemperatureSnapshot
from keyaccounts.profit import Rates
from keyaccounts.watch import Thresholds, run


def test_the_demo_tells_the_story_once(hub, frozen_clock):
    with hub.session() as s, s.begin():
        create_user(s, email="kam@example.com", password="x" * 12, role=Role.AGENT, display_name="KAM")
    assert "loses money" in demo(hub, seed=1)
    assert "already there" in demo(hub, seed=1)
    with hub.session(read_only=True) as s:
        names = dict(s.execute(select(Account.name, Account.id)).all())
        ranked = board(s, since=clock.now() - timedelta(days=365), until=clock.now(), rates=Rates(), key_share=0.2)
        assert s.scalar(select(func.count()).select_from(TemperatureSnapshot)) == 16
    bank = next(r for r in ranked.rows if r.name == BANK)
    assert bank.profit.profit < 0 and bank.costly_vip
    assert ranked.rows[0].name == PLANT
    first = run(hub, thresholds=Thresholds())
    assert names[PLANT] in first.opened and names[CHAIN] in first.opened and names[BANK] not in first.opened
    with hub.session(read_only=True) as s:
        titles = [t.title for t in s.scalars(select(Task))]
        trend = list(s.scalars(select(TemperatureSnapshot.score).where(TemperatureSnapshot.account_id == names[CHAIN])
                               .order_by(TemperatureSnapshot.computed_at)))
        latest = s.scalars(select(TemperatureSnapshot).where(TemperatureSnapshot.account_id == names[CHAIN])
                           .order_by(TemperatureSnapshot.computed_at.desc())).first()
    assert any(PLANT in t for t in titles) and any(CHAIN in t for t in titles)
    assert trend[-1] <= trend[0] - 25, trend  # the chain is cooling
    assert "NPS 3" in latest.explanation
    assert run(hub, thresholds=Thresholds()).opened == []
