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
