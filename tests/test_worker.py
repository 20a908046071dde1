"""Workers side by side (real second OS processes), restarts that lose nothing, graceful stops."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.channel import OutboundMessage, SendResult
from hub import outbox
from hub.models import Delivery
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from hub.worker import EmbeddedWorker, Worker
from tests import forked
from tests.conftest import test_registry
from tests.fakes.channel import FakeChannel
from tests.test_outbox import get, queue

PROC_TIMEOUT = 120


def spawn(command: str, url: str, *args: str) -> forked.Forked:
    """A second worker process on the same database (forked ready-imported: tests/forked.py); returns
    once it has built its Hub. `claim` and `lock` then wait for go (result_of sends it)."""
    log = Path(tempfile.mkdtemp(prefix="hub-worker-proc-")) / "stderr.log"  # named if it dies
    return forked.start("tests.worker_proc:main", command, "--url", url, *args, talk=True, log=log)


def result_of(proc: forked.Forked, go: bool = True) -> dict:
    if go:
        proc.go()
    answer = proc.answer(timeout=PROC_TIMEOUT)
    assert proc.wait(timeout=PROC_TIMEOUT) == 0
    return answer


def url_of(hub: Hub) -> str:
    return hub.settings.database_url


def statuses(hub: Hub) -> dict[int, str]:
    with hub.session(read_only=True) as s:
        return dict(s.execute(select(Delivery.id, Delivery.status)).all())


def queue_many(hub: Hub, n: int) -> list[int]:
    with hub.session() as s, s.begin():
        return [
            outbox.enqueue(s, channel="fake", address=f"+7916000{i:04d}", content={"text": f"#{i}"},
                           idempotency_key=f"bulk-{i}").id
            for i in range(n)
        ]


# --- a second worker process never claims a delivery the first one holds -----------------------

def test_a_second_process_never_claims_what_the_first_holds(hub):
    ids = queue_many(hub, 30)
    held = {m.delivery_id for m in outbox.claim_due(hub, worker="first", limit=12)}
    other = spawn("claim", url_of(hub), "--worker", "second", "--limit", "5")
    theirs = set(result_of(other)["ids"])
    assert held.isdisjoint(theirs)
    assert held | theirs == set(ids)
    with hub.session(read_only=True) as s:
        owners = dict(s.execute(select(Delivery.id, Delivery.claimed_by)).all())
    assert {owners[i] for i in held} == {"first"} and {owners[i] for i in theirs} == {"second"}


def test_a_second_process_skips_rows_locked_mid_claim_without_waiting(hub):
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    ids = queue_many(hub, 20)
    with hub.db.session() as s, s.begin():
        # The first worker is between its SELECT … FOR UPDATE and its commit.
        locked = set(s.scalars(select(Delivery.id).order_by(Delivery.id).limit(8).with_for_update()).all())
        other = spawn("claim", url_of(hub), "--worker", "second", "--limit", "50")
        theirs = set(result_of(other)["ids"])  # returns while the locks are still held
    assert locked.isdisjoint(theirs)
    assert theirs == set(ids) - locked
    assert all(statuses(hub)[i] == "queued" for i in locked)


def test_two_processes_claiming_at_once_get_disjoint_sets_covering_everything(hub):
    ids = queue_many(hub, 150)
    procs = [spawn("claim", url_of(hub), "--worker", f"w{n}", "--limit", "3") for n in range(2)]
    for proc in procs:  # both are ready: let them race
        proc.go()
    claimed = [set(result_of(proc, go=False)["ids"]) for proc in procs]
    assert claimed[0].isdisjoint(claimed[1])
    assert claimed[0] | claimed[1] == set(ids)
    assert set(statuses(hub).values()) == {"sending"}


# --- a restart loses no due work ---------------------------------------------------------------

def test_a_crashed_workers_claims_are_reaped_and_sent_by_the_next_worker(hub, frozen_clock):
    ids = queue_many(hub, 3)
    crashed = Worker(hub, "crashed")
    claimed = outbox.claim_due(hub, worker=crashed.claimant, limit=10)  # …and then the process died
    assert len(claimed) == 3
    successor = Worker(hub, "successor")
    assert successor.tick() == 0  # the claims still look alive
    frozen_clock.advance(seconds=hub.settings.outbox.lease_seconds + 1)
    assert outbox.reap_expired(hub) == 3
    assert successor.tick() == 3
    assert sorted(m.delivery_id for m in FakeChannel.sent) == ids
    assert set(statuses(hub).values()) == {"sent"}
    assert {get(hub, i).attempts for i in ids} == {2}


def test_rows_due_while_no_worker_ran_go_out_when_one_starts(hub):
    ids = queue_many(hub, 4)
    embedded = EmbeddedWorker(hub)
    embedded.start()
    try:
        wait_for(lambda: set(statuses(hub).values()) == {"sent"})
    finally:
        embedded.stop()
    assert sorted(m.delivery_id for m in FakeChannel.sent) == ids


def test_the_app_runs_an_embedded_worker_and_stops_it_on_shutdown(hub):
    from fastapi.testclient import TestClient

    from hub.app import create_app

    ids = queue_many(hub, 2)
    with TestClient(create_app(hub, check_schema=False, start_worker=True)):
        wait_for(lambda: set(statuses(hub).values()) == {"sent"})
    later = queue(hub, "after-shutdown")
    assert Worker(hub).tick() == 1  # the embedded worker is gone; the row waited for the next one
    assert sorted(m.delivery_id for m in FakeChannel.sent) == [*ids, later]


def test_an_enqueue_wakes_the_embedded_worker_without_waiting_for_the_poll(hub):
    hub.settings.outbox.poll_seconds = 3600
    embedded = EmbeddedWorker(hub)
    embedded.start()
    try:
        job = embedded.scheduler.get_job("outbox.dispatch_due")
        wait_for(lambda: job.next_run_time is not None and job.next_run_time.timestamp() > time.time() + 1000 and not embedded.worker.busy)
        delivery_id = queue(hub, "reply")
        wait_for(lambda: get(hub, delivery_id).status == "sent")
    finally:
        embedded.stop()


def test_hub_worker_process_sends_due_rows_and_stops_gracefully_on_sigterm(hub):
    ids = queue_many(hub, 3)
    proc = spawn("run", url_of(hub), "--worker", "sigterm-test")
    try:
        wait_for(lambda: set(statuses(hub).values()) == {"sent"})
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.answer(timeout=PROC_TIMEOUT) == "stopped"
    assert proc.wait(timeout=PROC_TIMEOUT) == 0
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Delivery.provider_id).order_by(Delivery.id)).all() == [f"fake-{i}-1" for i in ids]


# --- graceful stop -----------------------------------------------------------------------------

def test_stop_releases_claims_so_another_worker_sends_them(hub):
    ids = queue_many(hub, 3)
    worker = Worker(hub, "stopping")
    outbox.claim_due(hub, worker=worker.claimant, limit=10)
    assert worker.stop() == 3
    assert set(statuses(hub).values()) == {"queued"}
    assert worker.tick() == 0  # a stopped worker claims nothing
    assert Worker(hub, "next").tick() == 3
    assert sorted(m.delivery_id for m in FakeChannel.sent) == ids
    assert {get(hub, i).attempts for i in ids} == {1}  # the released claim was not an attempt


def test_tick_works_even_when_called_inside_a_running_event_loop(hub):
    ids = queue_many(hub, 2)

    async def from_async_code() -> int:
        return Worker(hub).tick()  # the app's lifespan, or a test driving a browser, runs a loop here

    # In a thread of its own, so the test does not depend on whether this thread already runs a loop.
    handled: list[int] = []
    runner = threading.Thread(target=lambda: handled.append(asyncio.run(from_async_code())))
    runner.start()
    runner.join(PROC_TIMEOUT)
    assert handled == [2]
    assert sorted(m.delivery_id for m in FakeChannel.sent) == ids


class GatedChannel(FakeChannel):
    """Sends block until the test opens the gate, so a stop can arrive mid-send."""

    name = "gated"
    entered = threading.Event()
    gate = threading.Event()

    async def send(self, message: OutboundMessage) -> SendResult:
        self.entered.set()
        await asyncio.to_thread(self.gate.wait, PROC_TIMEOUT)
        return await super().send(message)


@pytest.fixture
def gated_hub(hub: Hub) -> Iterator[Hub]:
    registry = test_registry()
    registry.register(GatedChannel)
    GatedChannel.entered.clear()
    GatedChannel.gate.clear()
    gated = Hub(hub.settings, registry=registry, triggers=TriggerRegistry(), db=hub.db, broker=hub.broker)
    yield gated
    GatedChannel.gate.set()


def test_stop_lets_the_batch_in_flight_finish_and_claims_no_more(gated_hub):
    hub = gated_hub
    hub.settings.outbox.batch_size = 2
    with hub.session() as s, s.begin():
        ids = [outbox.enqueue(s, channel="gated", address=f"+7{i}", content={"text": "x"}, idempotency_key=f"g{i}").id
               for i in range(4)]
    worker = Worker(hub, "graceful")
    dispatching = threading.Thread(target=worker.dispatch_due)
    dispatching.start()
    assert GatedChannel.entered.wait(PROC_TIMEOUT)
    released: list[int] = []
    stopping = threading.Thread(target=lambda: released.append(worker.stop()))
    stopping.start()
    wait_for(lambda: worker.stopping)
    assert stopping.is_alive()  # stop waits for the sends in flight
    GatedChannel.gate.set()
    dispatching.join(PROC_TIMEOUT)
    stopping.join(PROC_TIMEOUT)
    state = statuses(hub)
    assert [state[i] for i in ids] == ["sent", "sent", "queued", "queued"]
    assert released == [0]


def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for background threads or processes (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_the_worker_sends_on_uvloop_where_it_is_installed() -> None:
    """uvicorn[standard] installs uvloop; the worker's sending loop uses it (cheaper SMTP/HTTP clients)."""
    import uvloop

    from hub.worker import new_event_loop

    loop = new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
        assert loop.run_until_complete(asyncio.sleep(0, result="ran")) == "ran"
    finally:
        loop.close()


def test_a_worker_process_freezes_its_start_up_heap_out_of_full_collections(hub):
    """`hub worker` (run_worker) moves its start-up objects out of the collector's full passes, as
    served processes do: a campaign worker otherwise walked them twice in a 4,000-message run, ~0.5 s
    each (docs/benchmarks.md, "Campaign")."""
    import gc
    import os
    import signal
    import threading

    from hub.worker import run_worker

    gc.unfreeze()  # the suite's own freeze (tests/conftest.py) is put back after the test
    stop = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    stop.start()
    try:
        run_worker(hub, name="freeze-test")
    finally:
        stop.cancel()
    assert gc.get_freeze_count() > 0


def test_a_worker_process_freezes_again_once_every_job_has_run_once(hub):
    """What the first runs import and cache lives as long as the process: frozen too, not walked by
    every later full collection."""
    import gc
    import time

    from hub.worker import EmbeddedWorker

    gc.unfreeze()  # the suite's own freeze (tests/conftest.py) is put back after the test
    embedded = EmbeddedWorker(hub, "freeze-test", freeze_after_start=True)
    embedded.start()
    try:
        deadline = time.monotonic() + 30
        while embedded._first_runs and time.monotonic() < deadline:  # jobs may freeze for their own run
            time.sleep(0.05)
        assert not embedded._first_runs
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:  # the listener collects, then freezes
            time.sleep(0.05)
        assert gc.get_freeze_count() > 0
    finally:
        embedded.stop()
