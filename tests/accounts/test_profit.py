"""Profitability: a known set of orders and interactions gives the hand-computed figure (both stores),
each row counted once and traceable, rows outside the account or the period left out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from hub.accounts import create_account
from hub.auth import SYSTEM, create_user
from hub.contacts import IdentityIn, create_contact
from hub.ingest import InboundEvent, ingest
from hub.models import Delivery, IdentityKind, Purpose, Role
from hub.tasks import create_task
from keyaccounts.profit import Rates, account_profit, all_profits, compute, load_inputs

NOW = datetime(2026, 6, 30, 12, tzinfo=timezone.utc)
SINCE, UNTIL = NOW - timedelta(days=90), NOW
DAY = NOW - timedelta(days=10)
RATES = Rates(currency="RUB", default_margin_rate=Decimal("0.25"), agent_hour_cost=Decimal("1200"),
              minutes_per_email=Decimal("6"), minutes_per_sms=Decimal("2"), minutes_per_note=Decimal("3"),
              minutes_per_task=Decimal("10"), marketing_send_cost={"email": Decimal("0.30"), "sms": Decimal("3.50")})


@pytest.fixture
def world(hub, client, api_key, frozen_clock):
    """Account «Ромашка» (buyer + manager contacts), a lone contact, and an outsider's noise."""
    frozen_clock.current = NOW
    with hub.session() as s, s.begin():
        agent = create_user(s, email="kam@example.com", password="x" * 12, role=Role.AGENT, display_name="KAM").id
        account = create_account(s, actor=SYSTEM, name="Ромашка").id
        buyer = create_contact(s, actor=SYSTEM, region="RU", display_name="Закупщик", account_id=account,
                               identities=[IdentityIn(kind=IdentityKind.EMAIL, value="buyer@romashka.ru")]).id
        boss = create_contact(s, actor=SYSTEM, region="RU", display_name="Директор", account_id=account).id
        lone = create_contact(s, actor=SYSTEM, region="RU", display_name="Сам по себе",
                              identities=[IdentityIn(kind=IdentityKind.EMAIL, value="lone@example.com")]).id
    headers = api_key("events:write")

    def order(event_id: str, kind: str, email: str, order_id: str, amount: str, *, margin: str | None = None,
              currency: str = "RUB", at: datetime = DAY) -> None:
        body = {"event_id": event_id, "type": kind, "occurred_at": at.isoformat(), "source": "shop",
                "contact": {"email": email},
                "order": {"order_id": order_id, "amount": amount, "currency": currency,
                          **({"margin": margin} if margin is not None else {})}}
        answer = client.post("/api/v1/events", json=body, headers=headers)
        assert answer.status_code in (200, 201, 202), answer.text

    order("e1", "order.completed", "buyer@romashka.ru", "O1", "10000.00", margin="3000.00")
    order("e2", "order.completed", "buyer@romashka.ru", "O2", "4000.00")  # default rate: 1000
    order("e3", "order.completed", "buyer@romashka.ru", "O2", "4000.00", at=DAY + timedelta(hours=1))  # reported twice
    order("e4", "order.refunded", "buyer@romashka.ru", "O1", "1000.00")  # default rate: −250
    order("e5", "order.completed", "buyer@romashka.ru", "O3", "500.00", currency="EUR")  # not counted
    order("e6", "order.completed", "buyer@romashka.ru", "O0", "99999.00", at=SINCE - timedelta(days=1))  # too old
    order("e7", "order.completed", "lone@example.com", "L1", "800.00", margin="100.00")

    def event(n: int, contact: int, channel: str, kind: str, direction: str, *, by_agent: bool = True, **data) -> None:
        ingest(hub, InboundEvent(channel=channel, kind=kind, direction=direction, contact_id=contact,
                                 external_id=f"x{n}", occurred_at=DAY, data=data,
                                 actor_user_id=agent if by_agent else None))

    event(1, boss, "phone", "call", "out", talk_seconds=1800, duration_seconds=1900)  # 30 min
    event(2, boss, "meetings", "meeting.completed", "internal", starts_at=DAY.isoformat(),
          ends_at=(DAY + timedelta(hours=1)).isoformat())  # 60 min
    event(3, boss, "email", "message", "out")  # 6 min
    event(4, buyer, "email", "message", "out")  # 6 min
    event(5, buyer, "sms", "message", "out")  # 2 min
    event(6, buyer, "note", "note", "internal")  # 3 min
    event(7, buyer, "email", "message", "out", by_agent=False)  # automated: no agent time
    event(8, buyer, "email", "message", "in", by_agent=False)  # the customer's: no agent time
    event(9, lone, "phone", "call", "in", talk_seconds=600)  # the lone contact's 10 min
    frozen_clock.current = DAY
    with hub.session() as s, s.begin():
        create_task(s, actor=SYSTEM, title="Перезвонить", contact_id=buyer)  # 10 min
        for i, (channel, sent) in enumerate([("email", True), ("email", True), ("sms", True), ("email", False)]):
            s.add(Delivery(channel=channel, contact_id=buyer, address="buyer@romashka.ru", purpose=Purpose.MARKETING,
                           idempotency_key=f"m{i}", status="sent" if sent else "queued",
                           sent_at=DAY if sent else None))
    frozen_clock.current = NOW
    return {"account": account, "buyer": buyer, "boss": boss, "lone": lone}


def test_the_account_profit_is_the_hand_computed_figure(hub, world):
    with hub.session(read_only=True) as s:
        profit = account_profit(s, account_id=world["account"], since=SINCE, until=UNTIL, rates=RATES)
    # Revenue 10000 + 4000 − 1000; margin 3000 (shop) + 1000 (25%) − 250 (25% of the refund).
    assert profit.revenue == Decimal("13000.00") and profit.margin == Decimal("3750.00")
    # Agent time 30 + 60 + 6 + 6 + 2 + 3 + 10 = 117 min at 20 ₽/min = 2340; sends 0.30 + 0.30 + 3.50.
    lines = {name: (line.count, line.minutes, line.cost) for name, line in profit.lines.items()}
    assert lines == {"calls": (1, Decimal("30.0"), Decimal("600.00")), "meetings": (1, Decimal("60.0"), Decimal("1200.00")),
                     "emails": (2, Decimal("12.0"), Decimal("240.00")), "sms": (1, Decimal("2.0"), Decimal("40.00")),
                     "notes": (1, Decimal("3.0"), Decimal("60.00")), "tasks": (1, Decimal("10.0"), Decimal("200.00")),
                     "marketing": (3, Decimal("0"), Decimal("4.10"))}
    assert profit.cost_to_serve == Decimal("2344.10")
    assert profit.profit == Decimal("1405.90")
    assert len(profit.skipped_orders) == 1  # the EUR order, listed rather than converted
    assert sorted((o.order_id, o.margin_source) for o in profit.orders) == [
        ("O1", "default"), ("O1", "shop"), ("O2", "default")]
    assert all(ref.startswith(("event:", "task:", "delivery:")) for line in profit.lines.values() for ref in line.refs)


def test_a_contact_without_an_account_is_its_own(hub, world):
    with hub.session(read_only=True) as s:
        everyone = all_profits(s, since=SINCE, until=UNTIL, rates=RATES)
    lone = everyone[("contact", world["lone"])]
    assert lone.margin == Decimal("100.00") and lone.cost_to_serve == Decimal("200.00") and lone.profit == Decimal("-100.00")
    assert everyone[("account", world["account"])].profit == Decimal("1405.90")
    assert ("contact", world["buyer"]) not in everyone  # counted in its account, not twice


def test_the_computation_is_pure_and_the_period_bounds_it(hub, world):
    with hub.session(read_only=True) as s:
        inputs = load_inputs(s, since=SINCE, until=UNTIL)
        empty = load_inputs(s, since=NOW, until=NOW + timedelta(days=1))
    assert compute(inputs, RATES) == compute(inputs, RATES)
    assert compute(empty, RATES) == {}
    dearer = compute(inputs, Rates(**{**RATES.__dict__, "agent_hour_cost": Decimal("2400")}))
    assert dearer[("account", world["account"])].cost_to_serve == Decimal("4684.10")  # time doubles, sends do not


def test_the_api_and_the_panel_show_the_figure_and_its_rows(hub, client, api_key, world):
    headers = api_key("contacts:read")
    answer = client.get(f"/api/v1/accounts/{world['account']}/profit?days=90", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert Decimal(body["profit"]) == Decimal("1405.90") and body["currency"] == "RUB"
    assert {line["name"]: line["count"] for line in body["lines"]}["marketing"] == 3
    assert client.get("/api/v1/accounts/4242/profit", headers=headers).status_code == 404
    assert client.get(f"/api/v1/accounts/{world['account']}/profit?days=0", headers=headers).status_code == 422
