"""bench.webhooks: its generator keeps its heap out of full collections, and --trace splits a request's time."""

from __future__ import annotations

import gc

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

import hub.inbound
from bench import webhooks, webhooks_trace


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # what the test froze goes back to the collector, for the rest of the session


def test_the_generator_settles_its_heap_out_of_full_collections_before_a_timed_phase(unfrozen):
    held = [[f"request {i}"] for i in range(1000)]
    assert gc.is_tracked(held[0])
    webhooks._settle()
    # A full pass no longer walks what the generator held before the clock started.
    assert gc.get_freeze_count() >= len(held)
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(o) in tracked for o in held)


def test_the_trace_splits_a_request_into_its_spans(tmp_path, monkeypatch):
    monkeypatch.setattr(hub.inbound, "run_db_call", hub.inbound.run_db_call)  # traced() wraps it; put it back
    engine = create_engine(f"sqlite:///{tmp_path / 'trace.db'}")
    app = FastAPI()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))

    @app.post("/hook")
    async def hook() -> dict[str, bool]:
        await hub.inbound.run_db_call(write)
        return {"ok": True}

    with TestClient(webhooks_trace.traced(app, engine)) as client:
        client.get("/bench/trace")
        assert client.post("/hook", headers={"X-Bench-Seq": "7"}).status_code == 200
        client.post("/hook")  # without the generator's number: not recorded
        recorded = client.get("/bench/trace").json()
    engine.dispose()

    [record] = recorded["requests"]
    assert record["seq"] == 7 and record["path"] == "/hook"
    marks = [record[k] for k in ("arrive", "submit", "thread", "checkout", "commit", "checkin", "thread_end",
                                  "answer", "answered")]
    assert marks == sorted(marks)
    assert record["statements"] == 2 and record["sql_ms"] > 0
    assert record["thread_cpu_ms"] >= 0 and record["thread_runq_ms"] >= 0
    report = webhooks_trace.explain({7: (record["arrive"] - 0.001, record["arrive"], record["answered"] + 0.001)},
                                    recorded, {"checkpoints": 0}, {**recorded, "collections": [], "late": []})
    assert "queue for the 4 database threads" in report and "thread: COMMIT and after-commit" in report


def test_the_record_reads_the_hubs_tail_beside_the_raw_inserts_in_the_same_run():
    usage = {key: [webhooks.Usage(100, 0.1, 0.3)] for key, _ in webhooks.PHASES}
    result = {"hub_rates": [200.0], "raw_rates": [300.0], "hub": 200.0, "raw": 300.0, "target": 160.0,
              "served": 159.0, "latencies": [float(i) for i in range(1, 201)], "raw_target": 240.0,
              "raw_served": 240.0, "raw_latencies": [i / 2 for i in range(1, 201)], "usage": usage}
    section = webhooks._section(result, command="python -m bench.webhooks", concurrency=16, duration=12, rounds=2,
                                load=(0.5, 0.7), pg_version="16", total=1000, statuses=500)
    assert "| raw INSERT | 240 | 240 |" in section
    # p99 of 1..200 ms against the raw loop's 0.5..100 (inclusive quantiles): twice the machine's tail.
    assert "hub p99 / raw p99 | 99.0 ms; 2.0× |" in section
    assert section.count("| open loop, raw insert | 100 |") == 1


def test_the_run_says_how_much_of_the_servers_ceiling_the_open_loop_asked_for():
    # Session 15's recorded quiet run (docs/benchmarks.md, "Webhooks"): the hub's closed loop spent 0.90 core
    # of server CPU at its maximum, and an open-loop request cost 1.26× a closed-loop one, so 80% of that
    # maximum asked the one-process server for 0.91 core: its ceiling. The raw insert's asked for 0.69.
    def cost(requests: int, server_ms: float) -> webhooks.Usage:
        return webhooks.Usage(requests, 0.0, requests * server_ms / 1000)

    result = {"hub": 147.0, "target": 117.6, "raw": 183.0, "raw_target": 146.4,
              "usage": {"hub": [cost(1790, 6.15), cost(1748, 6.15)], "open": [cost(1406, 7.77)],
                        "raw": [cost(2202, 3.87), cost(2199, 4.03)], "open raw": [cost(1752, 4.73)]}}
    dearer, at_max, asked = webhooks._demand(result, "hub", "open")
    assert (round(dearer, 2), round(at_max, 2), round(asked, 2)) == (1.26, 0.90, 0.91)
    assert webhooks._saturated(at_max, asked)
    dearer, at_max, asked = webhooks._demand(result, "raw", "open raw")
    assert (round(dearer, 2), round(at_max, 2), round(asked, 2)) == (1.20, 0.72, 0.69)
    assert not webhooks._saturated(at_max, asked)


def test_stalls_reads_the_open_loops_latencies_by_second_of_the_schedule():
    # One slow second in the middle is a stall; slow seconds from some point on are a backlog.
    assert webhooks._stalls([5.0, 7.0, 300.0, 9.0, 4.0, 6.0], rate=2) == "7 300 6"


def test_the_meter_adds_up_the_cpu_of_the_servers_worker_processes():
    # uvicorn --workers N serves from child processes; the supervisor itself does next to nothing.
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 30
        while True:
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
            child_ticks = int(fields[11]) + int(fields[12])
            if child_ticks >= 0.2 * os.sysconf("SC_CLK_TCK") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        meter = webhooks.Meter.__new__(webhooks.Meter)
        meter.server_pid = os.getpid()
        own = os.times()
        user, system = meter._server_ticks()
        assert user + system >= child_ticks + int((own.user + own.system) * os.sysconf("SC_CLK_TCK")) - 1
    finally:
        child.kill()
        child.wait()
