"""The scheduler: jobs under fixed ids, channel and package jobs, once-only ticks under a lock."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hub.channel import PeriodicJob
from hub.locks import lock_key, once_lock
from hub.models import SchedulerLease
from hub.runtime import Hub
from hub.scheduler import DISPATCH_JOB_ID, REAP_JOB_ID, JobError, build_scheduler, collect_jobs, run_job, validate_jobs
from hub.triggers import TriggerRegistry
from hub.worker import Worker
from tests.conftest import test_registry
from tests.fakes.channel import FakeChannel
from tests.test_outbox import get, queue
from tests.test_worker import PROC_TIMEOUT, result_of, spawn, url_of


def _nothing(hub: Hub) -> None:
    pass


class TickingChannel(FakeChannel):
    name = "ticking"

    def jobs(self) -> list[PeriodicJob]:
        return [
            PeriodicJob("ticking.poll", _nothing, seconds=45),
            PeriodicJob("ticking.morning_digest", _nothing, cron="0 9 * * *"),
        ]


def sample_jobs() -> list[PeriodicJob]:
    """What an installed package's `hub.jobs` entry point returns."""
    return [PeriodicJob("sample.tick", _nothing, seconds=30, once=True)]


def test_outbox_jobs_are_registered_with_fixed_ids_and_run_once_after_downtime(hub):
    scheduler = build_scheduler(hub, worker=Worker(hub))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert {DISPATCH_JOB_ID, REAP_JOB_ID} <= set(jobs)
    assert (DISPATCH_JOB_ID, REAP_JOB_ID) == ("outbox.dispatch_due", "outbox.reap_expired")
    dispatch = jobs[DISPATCH_JOB_ID]
    assert isinstance(dispatch.trigger, IntervalTrigger)
    assert dispatch.trigger.interval == timedelta(seconds=hub.settings.outbox.poll_seconds)
    for job in jobs.values():
        # Missed runs coalesce into one, however late; never two at once in a process.
        assert (job.coalesce, job.misfire_grace_time, job.max_instances) == (True, None, 1)
    # Interval ticks run at start: work that fell due while nothing ran is not left waiting.
    assert dispatch.next_run_time <= datetime.now(timezone.utc)


def test_channel_jobs_are_registered_and_cron_reads_the_hubs_time_zone(hub):
    registry = test_registry()
    registry.register(TickingChannel)
    ticking = Hub(hub.settings, registry=registry, triggers=TriggerRegistry(), db=hub.db, broker=hub.broker)
    jobs = {job.id: job for job in build_scheduler(ticking, worker=Worker(ticking)).get_jobs()}
    assert {"ticking.poll", "ticking.morning_digest", DISPATCH_JOB_ID} <= set(jobs)
    digest = jobs["ticking.morning_digest"].trigger
    assert isinstance(digest, CronTrigger)
    # 09:00 in Europe/Moscow (UTC+3) is 06:00 UTC.
    fire = digest.get_next_fire_time(None, datetime(2026, 1, 15, 5, 0, tzinfo=timezone.utc))
    assert fire.astimezone(timezone.utc) == datetime(2026, 1, 15, 6, 0, tzinfo=timezone.utc)
    disabled = Hub(hub.settings.model_copy(update={"channels": {"ticking": {"enabled": False}}}), registry=registry,
                   triggers=TriggerRegistry(), db=hub.db, broker=hub.broker)
    ids = [job.id for job in collect_jobs(disabled, worker=Worker(disabled))]
    assert "ticking.poll" not in ids and DISPATCH_JOB_ID in ids


def test_jobs_of_installed_packages_come_from_the_hub_jobs_entry_point_group(hub, tmp_path: Path, monkeypatch):
    dist = tmp_path / "sample_jobs-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sample-jobs\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hub.jobs]\nsample = tests.test_scheduler:sample_jobs\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ids = [job.id for job in collect_jobs(hub, worker=Worker(hub))]
    assert "sample.tick" in ids and DISPATCH_JOB_ID in ids


@pytest.mark.parametrize(
    ("jobs", "match"),
    [
        ([PeriodicJob("nodots", _nothing, seconds=1)], "dotted"),
        ([PeriodicJob("Mixed.Case", _nothing, seconds=1)], "dotted"),
        ([PeriodicJob("a.b", _nothing, seconds=1), PeriodicJob("a.b", _nothing, seconds=2)], "two jobs"),
        ([PeriodicJob("a.b", _nothing)], "exactly one"),
        ([PeriodicJob("a.b", _nothing, seconds=1, cron="* * * * *")], "exactly one"),
    ],
)
def test_bad_jobs_stop_start_up_naming_the_job(jobs, match):
    with pytest.raises(JobError, match=match):
        validate_jobs(jobs)


def test_an_invalid_cron_expression_is_refused(hub):
    with pytest.raises(JobError, match="invalid cron"):
        build_scheduler(hub, worker=Worker(hub), jobs=[PeriodicJob("a.b", _nothing, cron="61 * * * *")])


# --- once-only ticks -----------------------------------------------------------------------------

def test_lock_keys_are_stable_signed_64_bit_hashes():
    assert lock_key("job:campaigns.dispatch_due") == -806197042528516213
    assert lock_key("a") != lock_key("b")


def test_a_once_lock_has_one_holder_at_a_time(hub):
    with once_lock(hub, "job:x") as first:
        with once_lock(hub, "job:x") as second:
            assert (first, second) == (True, False)
        with once_lock(hub, "job:y") as other:
            assert other
    with once_lock(hub, "job:x") as again:
        assert again


def test_a_once_lock_held_here_is_refused_to_another_process(hub):
    with once_lock(hub, "job:shared") as held:
        assert held
        assert result_of(spawn("lock", url_of(hub), "--name", "job:shared")) == {"acquired": False}
    assert result_of(spawn("lock", url_of(hub), "--name", "job:shared")) == {"acquired": True}


def test_a_crashed_holders_sqlite_lease_expires(hub, frozen_clock):
    if hub.db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's advisory locks end with the holder's connection")
    with hub.db.transaction() as s:
        s.add(SchedulerLease(name="job:x", holder="crashed", expires_at=frozen_clock.current + timedelta(seconds=60)))
    with once_lock(hub, "job:x") as acquired:
        assert not acquired
    frozen_clock.advance(seconds=61)
    with once_lock(hub, "job:x") as acquired:
        assert acquired
    with hub.db.session() as s:
        assert s.get(SchedulerLease, "job:x") is None  # released on exit


def test_a_once_only_job_never_runs_in_two_holders_at_once(hub):
    entered, gate = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow(hub: Hub) -> None:
        runs.append(threading.current_thread().name)
        entered.set()
        gate.wait(PROC_TIMEOUT)

    job = PeriodicJob("test.once", slow, seconds=60, once=True)
    results: list[bool] = []
    first = threading.Thread(target=lambda: results.append(run_job(hub, job)), name="first")
    first.start()
    try:
        assert entered.wait(PROC_TIMEOUT)
        assert run_job(hub, job) is False  # the second holder skips the tick
        assert result_of(spawn("lock", url_of(hub), "--name", "job:test.once")) == {"acquired": False}
    finally:
        gate.set()
        first.join(PROC_TIMEOUT)
    assert runs == ["first"] and results == [True]
    gate.set()
    assert run_job(hub, job) is True and len(runs) == 2


def test_a_failing_tick_is_logged_with_its_traceback(hub, caplog):
    def broken(hub: Hub) -> None:
        raise RuntimeError("tick broke")

    with caplog.at_level(logging.ERROR, logger="hub.scheduler"):
        assert run_job(hub, PeriodicJob("test.broken", broken, seconds=1, once=False)) is False
    [record] = [r for r in caplog.records if r.name == "hub.scheduler"]
    assert "test.broken" in record.getMessage() and isinstance(record.exc_info[1], RuntimeError)


def test_the_outbox_jobs_send_due_rows_and_reap_expired_claims(hub, frozen_clock):
    from hub import outbox

    jobs = {job.id: job for job in collect_jobs(hub, worker=Worker(hub))}
    first = queue(hub, "a")
    assert run_job(hub, jobs[DISPATCH_JOB_ID])
    assert get(hub, first).status == "sent"
    second = queue(hub, "b")
    outbox.claim_due(hub, worker="crashed", limit=1)
    frozen_clock.advance(seconds=hub.settings.outbox.lease_seconds + 1)
    assert run_job(hub, jobs[REAP_JOB_ID])
    assert get(hub, second).status == "queued"
    assert run_job(hub, jobs[DISPATCH_JOB_ID])
    assert get(hub, second).status == "sent"
