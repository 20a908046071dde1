"""The temperature at a glance (contact card, screen pop) and recomputed soon after new events:
the trigger marks the key account due in the event's transaction, the job takes the temperature,
an event during a recompute is not lost, and two concurrent recomputes on PostgreSQL write one
consistent snapshot and open one cooling episode."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from hub.accounts import create_account
from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.ingest import InboundEvent, ingest
from hub.models import Task, TimelineEvent
from keyaccounts import due
from keyaccounts.models import CoolingEpisode, TemperatureDue, TemperatureSnapshot
from keyaccounts.watch import RunResult, Thresholds, run, watch_one
from tests.accounts.test_temperature import NOW, key_account  # noqa: F401  (the fixture)
from tests.web.conftest import login


def _due(hub) -> dict[int, int]:
    with hub.session(read_only=True) as s:
        return dict(s.execute(select(TemperatureDue.account_id, TemperatureDue.version)).all())


def _count(hub, model) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_the_card_and_the_screen_pop_show_the_key_accounts_temperature(hub, key_account, frozen_clock, web):
    login(web, hub, "reader@example.com", locale="ru")
    cid, aid = key_account["contact"], key_account["account"]
    assert "data-badge" not in web.get(f"/contacts/{cid}").text  # not measured yet: nothing to show
    run(hub, thresholds=Thresholds())
    card = web.get(f"/contacts/{cid}/card").text
    assert "badge-ok" in card and f'href="/accounts/{aid}"' in card and "Температура" in card
    frozen_clock.advance(days=30)  # silent: the next run finds it cooling
    run(hub, thresholds=Thresholds())
    with hub.session(read_only=True) as s:
        latest = s.scalars(select(TemperatureSnapshot.score).order_by(TemperatureSnapshot.id.desc())).first()
    pop = web.get(f"/pop/{cid}")
    assert pop.status_code == 200
    assert "ООО Кедр" in pop.text and "Ключевой клиент" in pop.text  # the account and its key flag
    assert "badge-bad" in pop.text and f"<strong>{latest}</strong>" in pop.text
    assert 'title="остывает; молчит 37 дней при обычных 7' in pop.text  # why, in her language
    card = web.get(f"/contacts/{cid}").text
    assert "badge-bad" in card and "молчит 37 дней" in card
    with hub.session() as s, s.begin():  # a contact of an ordinary account shows no temperature
        plain = create_account(s, actor=SYSTEM, name="Обычный")
        other = create_contact(s, actor=SYSTEM, region="RU", display_name="Иван", account_id=plain.id).id
    assert "data-badge" not in web.get(f"/pop/{other}").text


def test_new_events_of_a_key_account_make_it_due_and_the_job_takes_it(hub, key_account, frozen_clock):
    aid, cid = key_account["account"], key_account["contact"]
    assert _due(hub) == {aid: 40}  # 20 inbound emails and 20 replies, one mark bumped by each
    assert _count(hub, TemperatureSnapshot) == 0  # nothing computed inside the requests
    result = due.recompute_due(hub, thresholds=Thresholds())
    assert result.scored == 1 and _due(hub) == {} and _count(hub, TemperatureSnapshot) == 1
    with hub.session() as s, s.begin():
        plain = create_account(s, actor=SYSTEM, name="Не ключевой")
        other = create_contact(s, actor=SYSTEM, region="RU", display_name="Пётр", account_id=plain.id).id
    ingest(hub, InboundEvent(channel="email", kind="message", direction="in", contact_id=other, external_id="o1"))
    ingest(hub, InboundEvent(channel="email", kind="campaign.message", direction="out", contact_id=cid,
                             external_id="camp1"))  # a campaign send says nothing about the relationship
    assert _due(hub) == {}
    frozen_clock.advance(days=30)  # silent for 37 days; then an agent writes a note
    ingest(hub, InboundEvent(channel="note", kind="note", direction="internal", contact_id=cid, external_id="n1"))
    assert _due(hub) == {aid: 1}
    assert due.recompute_due(hub, thresholds=Thresholds()).opened == [aid]  # the cooling alert, from the job
    assert _due(hub) == {}  # the alert's own timeline event does not mark it again
    assert _count(hub, CoolingEpisode) == 1 and _count(hub, Task) == 1
    frozen_clock.advance(minutes=5)  # the same hour: the trend keeps one point for it, refreshed
    ingest(hub, InboundEvent(channel="sms", kind="message", direction="out", contact_id=cid, external_id="r1",
                             actor_user_id=key_account["owner"]))
    assert _due(hub) == {aid: 1}
    due.recompute_due(hub, thresholds=Thresholds())
    with hub.session(read_only=True) as s:
        times = list(s.scalars(select(TemperatureSnapshot.computed_at).order_by(TemperatureSnapshot.computed_at)))
    assert len(times) == 2 and times[-1] == frozen_clock.current
    assert _count(hub, CoolingEpisode) == 1 and _count(hub, Task) == 1  # still one alert for the episode


def test_a_batch_through_post_events_marks_the_key_account_due(hub, key_account):
    """post_events hands the triggers read-only rows: a key account's contact's new events still mark
    it due, once per event, and a replayed one does not."""
    from hub.ingest import post_events

    aid, cid = key_account["account"], key_account["contact"]
    before = _due(hub)[aid]

    def batch(*numbers: int) -> list[InboundEvent]:
        return [InboundEvent(channel="email", kind="message", direction="in", contact_id=cid, external_id=f"pe{n}")
                for n in numbers]

    with hub.session() as s, s.begin():
        post_events(s, events=batch(1, 2))
    assert _due(hub) == {aid: before + 2}
    with hub.session() as s, s.begin():
        post_events(s, events=batch(2, 3))
    assert _due(hub) == {aid: before + 3}


def test_an_event_arriving_during_a_recompute_keeps_the_account_due(hub, key_account, frozen_clock, monkeypatch):
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("a second writer during a transaction: PostgreSQL (SQLite runs one writer at a time)")
    aid, cid = key_account["account"], key_account["contact"]
    real = due.watch_one

    def slow_watch(session, **kwargs):
        ingest(hub, InboundEvent(channel="email", kind="message", direction="in", contact_id=cid,
                                 external_id="during"))  # commits while the recompute is under way
        return real(session, **kwargs)

    monkeypatch.setattr(due, "watch_one", slow_watch)
    due.recompute_due(hub, thresholds=Thresholds())
    assert _due(hub) == {aid: 41}  # the mark it read (40) was bumped: it stays for the next tick
    monkeypatch.setattr(due, "watch_one", real)
    due.recompute_due(hub, thresholds=Thresholds())
    assert _due(hub) == {}


def test_two_concurrent_recomputes_write_one_snapshot_and_open_one_episode(hub, key_account, frozen_clock):
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL")
    aid = key_account["account"]
    frozen_clock.advance(days=30)  # cooling: both recomputes would open an episode on their own
    now = frozen_clock.current
    first_done = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []
    results = [RunResult(), RunResult()]

    def recompute(index: int) -> None:
        try:
            with hub.session() as s:
                watch_one(s, account_id=aid, now=now, thresholds=Thresholds(), result=results[index])
                if index == 0:
                    first_done.set()
                    release.wait(30)  # hold the transaction open until the second is blocked on it
                s.commit()
        except BaseException as exc:  # noqa: BLE001  - reported by the main thread
            errors.append(exc)
            first_done.set()

    a = threading.Thread(target=recompute, args=(0,))
    a.start()
    assert first_done.wait(30)
    b = threading.Thread(target=recompute, args=(1,))
    b.start()
    deadline = time.monotonic() + 30
    with hub.db.engine.connect() as conn:  # wait until the second really waits for the first's row lock
        while not conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
            assert time.monotonic() < deadline, "the second recompute never waited"
            time.sleep(0.05)
    release.set()
    a.join(30)
    b.join(30)
    assert not errors, errors
    assert results[0].opened == [aid] and results[1].opened == []
    with hub.session(read_only=True) as s:
        snapshots = list(s.scalars(select(TemperatureSnapshot)))
        episodes = list(s.scalars(select(CoolingEpisode)))
        cooling_events = s.scalar(select(func.count()).select_from(TimelineEvent)
                                  .where(TimelineEvent.kind == "account.cooling"))
    assert len(snapshots) == 1 and snapshots[0].computed_at == now
    parts = snapshots[0].signals.values()  # the row is one recompute's, whole: its score is its parts' sum
    assert snapshots[0].score == max(0, min(100, round(sum(p["points"] for p in parts))))
    assert len(episodes) == 1 and episodes[0].open_account_id == aid and cooling_events == 1
    assert _count(hub, Task) == 1
