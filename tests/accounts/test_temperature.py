"""Temperature: each signal moves the score in the documented direction; the signals are read from
the account's timeline (both stores); the scheduler's job keeps snapshots and sends one alert per
cooling episode — none while it lasts, none after recovery, none again after a restart."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from hub.accounts import create_account
from hub.auth import SYSTEM, create_user
from hub.contacts import create_contact
from hub.ingest import InboundEvent, ingest
from hub.models import Role, Task, TimelineEvent
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from keyaccounts.models import CoolingEpisode, TemperatureSnapshot
from keyaccounts.temperature import Signals, score, signals_of
from keyaccounts.watch import Thresholds, run
from tests.conftest import test_registry

WARM = Signals(inbound_gaps_days=[7.0] * 10, days_since_inbound=3, inbound_recent=4, inbound_before_per_30=4.0,
               reply_hours=[2.0, 3.0], survey_scores=[0.9, 0.9], last_survey=(9, 10), orders_recent=3,
               value_recent=Decimal(300), orders_before_per_90=3.0, value_before_per_90=Decimal(300))


def cooler(**changes) -> int:
    return score(dataclasses.replace(WARM, **changes))[0]


def test_each_signal_moves_the_score_in_the_documented_direction():
    warm, _parts, explanation = score(WARM)
    assert warm == 96 and explanation == "every signal is warm"  # 25+15+15+15.6 (NPS 9, flat)+15+10
    assert cooler(days_since_inbound=14) < cooler(days_since_inbound=10) < warm  # silence beyond its rhythm
    assert cooler(inbound_recent=1) < cooler(inbound_recent=3) < warm  # fewer inbound contacts
    assert cooler(reply_hours=[48.0]) < cooler(reply_hours=[12.0]) < warm  # slower answers
    assert cooler(reply_hours=[float("inf")]) < cooler(reply_hours=[48.0])  # unanswered
    assert cooler(survey_scores=[0.9, 0.4], last_survey=(4, 10)) < cooler(survey_scores=[0.4, 0.4], last_survey=(4, 10))
    assert cooler(survey_scores=[0.4, 0.4], last_survey=(4, 10)) < warm  # a low score, and falling is worse
    assert cooler(orders_recent=1, value_recent=Decimal(100)) < cooler(orders_recent=2, value_recent=Decimal(200)) < warm
    assert cooler(open_detractor_tasks=2) < cooler(open_detractor_tasks=1) < warm
    assert score(Signals())[0] == 55  # no data: neutral everywhere but the (empty) detractor list


def test_the_explanation_names_the_cold_signals_with_their_figures():
    _, _, explanation = score(dataclasses.replace(WARM, inbound_recent=1, survey_scores=[0.9, 0.4],
                                                  last_survey=(4, 10)))
    assert "inbound contact down 75% against its 180-day rhythm" in explanation
    assert "last NPS 4" in explanation


NOW = datetime(2026, 9, 1, 9, tzinfo=timezone.utc)


@pytest.fixture
def key_account(hub, frozen_clock):
    """A key account whose customer wrote every 7 days for 20 weeks, each answered in 2 hours."""
    frozen_clock.current = NOW
    with hub.session() as s, s.begin():
        owner = create_user(s, email="kam@example.com", password="x" * 12, role=Role.AGENT, display_name="KAM")
        account = create_account(s, actor=SYSTEM, name="ООО Кедр", is_key=True, owner_id=owner.id)
        contact = create_contact(s, actor=SYSTEM, region="RU", display_name="Закупщик Кедра", account_id=account.id)
        ids = {"account": account.id, "contact": contact.id, "owner": owner.id}
    for week in range(20):
        at = NOW - timedelta(days=7 * (20 - week))
        ingest(hub, InboundEvent(channel="email", kind="message", direction="in", contact_id=ids["contact"],
                                 external_id=f"in{week}", occurred_at=at))
        ingest(hub, InboundEvent(channel="email", kind="message", direction="out", contact_id=ids["contact"],
                                 external_id=f"out{week}", occurred_at=at + timedelta(hours=2),
                                 actor_user_id=ids["owner"]))
    return ids


def test_signals_are_read_from_the_accounts_timeline(hub, key_account):
    with hub.session(read_only=True) as s:
        signals = signals_of(s, account_id=key_account["account"], now=NOW)
    assert signals.days_since_inbound == pytest.approx(7)
    assert set(signals.inbound_gaps_days) == {7.0} and signals.reply_hours and max(signals.reply_hours) == 2.0
    assert 80 <= score(signals)[0]



def test_a_chunks_signals_take_one_pass_over_the_timeline(hub, key_account):
    """Every signal's rows come from one read of the members' timeline (a scan per signal was the
    temperature job's largest cost): the chunk is three statements, whatever signals have data."""
    from sqlalchemy import event

    from keyaccounts.temperature import signals_of_many

    contact = key_account["contact"]
    for n, score_ in enumerate((9, 4)):  # an NPS of 9, then of 4
        ingest(hub, InboundEvent(channel="surveys", kind="survey.answered", direction="in", contact_id=contact,
                                 external_id=f"nps{n}", occurred_at=NOW - timedelta(days=20 - n), data={"nps": score_}))
    for n, (days, amount) in enumerate(((10, "1500.00"), (200, "500.00"))):  # one recent order, one older
        ingest(hub, InboundEvent(channel="commerce", kind="order.completed", direction="in", contact_id=contact,
                                 external_id=f"o{n}", occurred_at=NOW - timedelta(days=days),
                                 data={"source": "shop", "order": {"order_id": f"O{n}", "amount": amount,
                                                                   "currency": "RUB"}}))
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):  # not SQLite's BEGIN
            statements.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", count)
    try:
        with hub.session(read_only=True) as s:
            signals = signals_of_many(s, account_ids=[key_account["account"]], now=NOW)[key_account["account"]]
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", count)
    assert len(statements) == 3, statements  # the members, the timeline pass, the detractor tasks
    assert set(signals.inbound_gaps_days) == {7.0} and max(signals.reply_hours) == 2.0
    assert signals.survey_scores == [0.9, 0.4] and signals.last_survey == (4.0, 10)
    assert (signals.orders_recent, signals.value_recent) == (1, Decimal("1500"))
    assert signals.orders_before_per_90 == pytest.approx(1 / (365 / 90))
    assert signals.value_before_per_90 == pytest.approx(Decimal(500) / Decimal(str(365 / 90)))


def test_key_accounts_are_watched_in_even_chunks():
    """A remainder under half a chunk joins the others: 4,001 key accounts are two chunks, not a
    third of one account paying a timeline pass of its own; nothing is lost or repeated."""
    from keyaccounts.watch import chunks

    ids = list(range(4001))
    assert [len(c) for c in chunks(ids, 2000)] == [2001, 2000]
    assert [len(c) for c in chunks(ids[:3000], 2000)] == [1500, 1500]
    assert [len(c) for c in chunks(ids[:10], 2000)] == [10] and chunks([], 2000) == []
    assert [i for c in chunks(ids, 700) for i in c] == ids and max(map(len, chunks(ids, 700))) <= 700 * 1.5

def _counts(hub, account_id: int) -> tuple[int, int, int, int]:
    with hub.session(read_only=True) as s:
        return (s.scalar(select(func.count()).select_from(CoolingEpisode).where(CoolingEpisode.account_id == account_id)),
                s.scalar(select(func.count()).select_from(Task)),
                s.scalar(select(func.count()).select_from(TimelineEvent).where(TimelineEvent.kind == "account.cooling")),
                s.scalar(select(func.count()).select_from(TemperatureSnapshot)))


def test_one_alert_per_cooling_episode_across_runs_and_a_restart(hub, key_account, frozen_clock, database):
    t = Thresholds()
    assert run(hub, thresholds=t).opened == []  # warm: a snapshot, no alert
    frozen_clock.advance(days=30)  # the customer falls silent: 37 days against a usual 7
    first = run(hub, thresholds=t)
    assert first.opened == [key_account["account"]]
    episodes, tasks, events, snapshots = _counts(hub, key_account["account"])
    assert (episodes, tasks, events, snapshots) == (1, 1, 1, 2)
    with hub.session(read_only=True) as s:
        task = s.scalars(select(Task)).one()
        assert task.assignee_id == key_account["owner"] and "ООО Кедр" in task.title
        assert "silent" in (task.notes or "") or "молч" in (task.notes or "")
    for _ in range(3):  # the job keeps running: the same episode, nothing new
        frozen_clock.advance(hours=1)
        assert run(hub, thresholds=t).opened == []
    restarted = Hub(hub.settings, registry=test_registry(), triggers=TriggerRegistry(), db=database)
    try:
        assert run(restarted, thresholds=t).opened == []  # a restart changes nothing
    finally:
        restarted.broker.stop()
    assert _counts(hub, key_account["account"])[:3] == (1, 1, 1)


def test_recovery_ends_the_episode_and_the_next_cooling_opens_a_new_one(hub, key_account, frozen_clock):
    t = Thresholds()
    run(hub, thresholds=t)
    frozen_clock.advance(days=30)
    assert run(hub, thresholds=t).opened == [key_account["account"]]
    for day in range(4):  # the customer is back, writing every few days, answered at once
        at = frozen_clock.advance(days=2)
        ingest(hub, InboundEvent(channel="email", kind="message", direction="in", contact_id=key_account["contact"],
                                 external_id=f"back{day}", occurred_at=at))
        ingest(hub, InboundEvent(channel="email", kind="message", direction="out", contact_id=key_account["contact"],
                                 external_id=f"reply{day}", occurred_at=at + timedelta(minutes=30),
                                 actor_user_id=key_account["owner"]))
    frozen_clock.advance(hours=1)
    recovered = run(hub, thresholds=t)
    assert recovered.recovered == [key_account["account"]] and recovered.opened == []
    frozen_clock.advance(hours=1)
    assert run(hub, thresholds=t).opened == []  # recovered: no alert
    with hub.session(read_only=True) as s:
        episode = s.scalars(select(CoolingEpisode)).one()
        assert episode.ended_at is not None and episode.open_account_id is None
    frozen_clock.advance(days=40)  # silent again: a new episode, a second task
    assert run(hub, thresholds=t).opened == [key_account["account"]]
    assert _counts(hub, key_account["account"])[:3] == (2, 2, 2)


def test_only_key_accounts_are_watched(hub, key_account, frozen_clock):
    with hub.session() as s, s.begin():
        create_account(s, actor=SYSTEM, name="Не ключевой")
    assert run(hub, thresholds=Thresholds()).scored == 1


def test_the_account_page_draws_the_trend_and_explains_the_score(hub, key_account, frozen_clock, web):
    from tests.web.conftest import login

    run(hub, thresholds=Thresholds())
    frozen_clock.advance(days=30)
    run(hub, thresholds=Thresholds())
    login(web, hub, "reader@example.com", locale="ru")
    aid = key_account["account"]
    assert f'hx-get="/key-accounts/accounts/{aid}/temperature"' in web.get(f"/accounts/{aid}").text
    panel = web.get(f"/key-accounts/accounts/{aid}/temperature", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and 'id="temperature-chart"' in panel.text
    assert panel.text.count("<circle") == 2  # two snapshots on the trend
    assert "молчит 37 дней при обычных 7" in panel.text  # the reason, in the reader's language
    assert 'id="cooling"' in panel.text
    assert web.get("/key-accounts/accounts/4242/temperature").status_code == 404


def test_a_runs_alerts_are_written_as_one_batch_each_with_its_event_task_and_audit_entry(hub, frozen_clock):
    """Four more cooling accounts cost the run no more statements than one (the alerts were ~10
    statements each); each still gets its episode, its account.cooling event, its owner's task with
    the task's own event and audit entry, and an owner who left gets an unassigned task."""
    from sqlalchemy import event

    from hub.db import is_postgres
    from hub.models import Account, AuditEntry, User

    frozen_clock.current = NOW
    ids = []
    with hub.session() as s, s.begin():
        for n in range(5):
            owner = create_user(s, email=f"kam{n}@example.com", password="x" * 12, role=Role.AGENT,
                                display_name=f"KAM {n}")
            account = create_account(s, actor=SYSTEM, name=f"ООО Кедр {n}", is_key=n == 0, owner_id=owner.id)
            contact = create_contact(s, actor=SYSTEM, region="RU", display_name=f"Закупщик {n}", account_id=account.id)
            ids.append((account.id, contact.id, owner.id))
        s.get(User, ids[4][2]).is_active = False  # the last account's manager left
    for account_id, contact_id, _owner in ids:  # wrote every 7 days, then fell silent
        for week in range(3):
            ingest(hub, InboundEvent(channel="email", kind="message", direction="in", contact_id=contact_id,
                                     external_id=f"in{account_id}-{week}", occurred_at=NOW - timedelta(days=7 * (3 - week))))
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(hub.db.engine, "before_cursor_execute", count)
    try:
        frozen_clock.advance(days=30)
        assert run(hub, thresholds=Thresholds()).opened == [ids[0][0]]
        one = len(statements)
        with hub.session() as s, s.begin():
            for account_id, _c, _o in ids[1:]:
                s.get(Account, account_id).is_key = True
        frozen_clock.advance(hours=1)
        statements.clear()
        assert run(hub, thresholds=Thresholds()).opened == [i[0] for i in ids[1:]]
        # Not ~10 statements per alert as before. On SQLite the tasks are inserted one by one (SQLAlchemy
        # cannot keep a batch's RETURNING in the rows' order there): one statement per alert.
        assert len(statements) - one < (3 if is_postgres(hub.db.engine) else 3 + 4)
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", count)
    with hub.session(read_only=True) as s:
        for account_id, contact_id, owner_id in ids:
            episode = s.scalars(select(CoolingEpisode).where(CoolingEpisode.account_id == account_id)).one()
            task = s.get(Task, episode.task_id)
            alert = s.get(TimelineEvent, episode.event_id)
            assert alert.kind == "account.cooling" and alert.contact_id == contact_id
            assert alert.data["episode_id"] == episode.id and task.contact_id == contact_id
            assert task.assignee_id == (None if owner_id == ids[4][2] else owner_id)
            assert s.scalar(select(func.count()).select_from(TimelineEvent).where(
                TimelineEvent.external_id == f"task:{task.id}:created")) == 1
            assert s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "task.created", AuditEntry.entity_id == str(task.id))) == 1
