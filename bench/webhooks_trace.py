"""Where a slow webhook's time goes: a per-request trace of the served app, for bench/webhooks.py --trace.

Off unless the benchmark sets BENCH_WEBHOOKS_TRACE=1 in the server's environment. Then
bench/webhooks_app.py wraps the app (`traced`) and records, on the clock the generator uses
(`time.perf_counter`, CLOCK_MONOTONIC, the same in both processes):

- per request (keyed by the generator's X-Bench-Seq header): arrival at the app, the hand-off to the
  database limiter (hub.threads.run_db_call), the worker thread's start and end, the first connection
  checkout, the time inside SQL statements, the commit (from COMMIT's start to the connection's
  check-in, after-commit callbacks included), and the answer's start and end;
- every garbage collection: its generation, start, length and objects collected (`gc.callbacks`);
- the event loop's lateness: a task that sleeps 2 ms and notes each wake-up more than 5 ms late.

GET /bench/trace answers what was recorded since the last GET and forgets it.

The trace costs the server some CPU and, through its reads of /proc (the run-queue figures: the
loop's every 2 ms, each worker thread's twice per request), GIL hand-offs it would not make
otherwise: compare traced runs with traced runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import threading
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENV = "BENCH_WEBHOOKS_TRACE"
HEADER = b"x-bench-seq"
LATE_MS = 5.0

def _waited() -> float:
    """Seconds this thread has waited on a run queue for a CPU (the kernel's schedstat), and its CPU seconds."""
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("bench_trace", default=None)


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


class Recorder:
    """What the served process did, since the last read."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.collections: list[tuple[Any, ...]] = []
        self.late: list[tuple[float, ...]] = []  # wake-up time, ms late, ms waiting for a CPU, process CPU ms
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        # No file read here (the run queue's figure): Python releases the GIL around it, and getting it
        # back from another thread that holds it off the CPU made passes of ~1 ms of CPU last 20-167 ms.
        if phase == "start":
            self._gc_started, self._gc_cpu = now, time.thread_time()
        else:
            # generation, start, ms, collected, CPU ms, in the main thread
            self.collections.append((info["generation"], self._gc_started, (now - self._gc_started) * 1000,
                                     info["collected"], (time.thread_time() - self._gc_cpu) * 1000,
                                     threading.current_thread() is threading.main_thread()))

    def take(self) -> dict[str, Any]:
        with self.lock:
            taken = {"requests": self.requests, "collections": self.collections, "late": self.late,
                     "gc_counts": gc.get_count(), "gc_threshold": gc.get_threshold(),
                     "tracked": len(gc.get_objects()), "frozen": gc.get_freeze_count()}
            self.requests, self.collections, self.late = [], [], []
        return taken


class _Trace:
    """The ASGI wrapper: one record per request that carries the generator's sequence number."""

    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app, self.recorder = app, recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        seq = dict(scope.get("headers") or []).get(HEADER) if scope["type"] == "http" else None
        if seq is None:
            await self.app(scope, receive, send)
            return
        record: dict[str, Any] = {"seq": int(seq), "path": scope["path"], "arrive": time.perf_counter(), "sql_ms": 0.0,
                                  "statements": 0, "sql": []}
        token = _current.set(record)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record["answer"] = time.perf_counter()
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                record["answered"] = time.perf_counter()

        try:
            await self.app(scope, receive, timed_send)
        finally:
            _current.reset(token)
            with self.recorder.lock:
                self.recorder.requests.append(record)


def _mark(key: str) -> None:
    record = _current.get()
    if record is not None and key not in record:
        record[key] = time.perf_counter()


def _watch_engine(engine: Engine) -> None:
    @event.listens_for(engine, "checkout")
    def _checkout(*_args: Any) -> None:
        _mark("checkout")

    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        record = _current.get()
        if record is not None:
            record["_sql"] = time.perf_counter()
            record["sql"].append(" ".join(statement.split())[:90])

    @event.listens_for(engine, "after_cursor_execute")
    def _after(*_args: Any) -> None:
        record = _current.get()
        if record is not None and "_sql" in record:
            record["sql_ms"] += (time.perf_counter() - record.pop("_sql")) * 1000
            record["statements"] += 1

    @event.listens_for(engine, "commit")
    def _commit(*_args: Any) -> None:
        _mark("commit")

    @event.listens_for(engine, "checkin")
    def _checkin(*_args: Any) -> None:
        _mark("checkin")


def _watch_db_calls() -> None:
    """Note when a webhook reaches the limiter (hub.threads.run_db_call) and when, in its worker thread,
    its database work starts and ends, with the thread's CPU and its wait for a CPU meanwhile."""
    import hub.inbound

    run_db_call = hub.inbound.run_db_call

    async def traced_run_db_call(func: Any, *args: Any, **kwargs: Any) -> Any:
        _mark("submit")

        def timed(*args: Any, **kwargs: Any) -> Any:
            _mark("thread")  # anyio runs the call in a copy of the request's context
            cpu, waited = time.thread_time(), _waited()
            try:
                return func(*args, **kwargs)
            finally:
                _mark("thread_end")
                record = _current.get()
                if record is not None:
                    record["thread_cpu_ms"] = (time.thread_time() - cpu) * 1000
                    record["thread_runq_ms"] = (_waited() - waited) * 1000

        return await run_db_call(timed, *args, **kwargs)

    hub.inbound.run_db_call = traced_run_db_call


async def _watch_loop(recorder: Recorder) -> None:
    while True:
        before, waited, cpu = time.perf_counter(), _waited(), time.process_time()
        await asyncio.sleep(0.002)
        late = (time.perf_counter() - before - 0.002) * 1000
        if late > LATE_MS:
            recorder.late.append((before + 0.002, late, (_waited() - waited) * 1000, (time.process_time() - cpu) * 1000))


def traced(app: FastAPI, engine: Engine) -> ASGIApp:
    """`app` with the trace recorded and served at GET /bench/trace."""
    recorder = Recorder()
    gc.callbacks.append(recorder.on_gc)
    _watch_engine(engine)
    _watch_db_calls()

    @app.get("/bench/trace", include_in_schema=False)
    async def trace() -> JSONResponse:
        if not hasattr(recorder, "loop_task"):
            recorder.loop_task = asyncio.get_running_loop().create_task(_watch_loop(recorder))  # type: ignore[attr-defined]
        return JSONResponse(recorder.take())

    return _Trace(app, recorder)


# What each span of a request is, between which marks (generator's or server's); "sql" and "commit"
# lie inside "thread".
SPANS = (
    ("wait for a connection (generator)", "scheduled", "free"),
    ("to the app (socket, uvicorn, a busy loop)", "free", "arrive"),
    ("body and signature (loop)", "arrive", "submit"),
    ("queue for the 4 database threads", "submit", "thread"),
    ("thread: to the first checkout", "thread", "checkout"),
    ("thread: until COMMIT", "checkout", "commit"),
    ("thread: COMMIT and after-commit", "commit", "checkin"),
    ("back on the loop, to the answer", "thread_end", "answer"),
    ("answer to the generator", "answer", "done"),
)


def _pauses(who: str, recorded: dict[str, Any], window: tuple[float, float]) -> list[str]:
    """One process's garbage collections and event-loop lateness within `window`."""
    lines = []
    collections = [c for c in recorded["collections"] if window[0] <= c[1] <= window[1]]
    for generation in (0, 1, 2):
        mine = [c for c in collections if c[0] == generation]
        if mine:
            longest = max(mine, key=lambda c: c[2])
            lines.append(f"  {who} gc generation {generation}: {len(mine)} passes, {sum(c[2] for c in mine):.1f} ms in all "
                         f"(CPU {sum(c[4] for c in mine):.1f} ms), longest {longest[2]:.1f} ms (CPU {longest[4]:.1f} ms)")
    late = [entry for entry in recorded["late"] if window[0] <= entry[0] <= window[1]]
    lines.append(f"  {who} event loop late > {LATE_MS:g} ms: {len(late)} times, {sum(e[1] for e in late):.0f} ms in all "
                 f"(loop thread on a run queue {sum(e[2] for e in late):.0f} ms; process CPU meanwhile "
                 f"{sum(e[3] for e in late):.0f} ms), longest {max((e[1] for e in late), default=0):.1f} ms")
    lines.append(f"  {who} heap: {recorded['tracked']:,} objects tracked, {recorded['frozen']:,} frozen")
    return lines


def watch() -> Recorder:
    """Record this process's garbage collections and its event loop's lateness (call in the loop)."""
    recorder = Recorder()
    gc.callbacks.append(recorder.on_gc)
    recorder.loop_task = asyncio.get_running_loop().create_task(_watch_loop(recorder))  # type: ignore[attr-defined]
    return recorder


def explain(sends: dict[int, tuple[float, float, float]], recorded: dict[str, Any], background: dict[str, int],
            generator: dict[str, Any]) -> str:
    """Where the open loop's time went: every span's median over all requests and its mean over the
    slowest 1%, with the garbage collections, the event loop's lateness and PostgreSQL's checkpoints."""
    rows = []
    for record in recorded["requests"]:
        if record["seq"] in sends:
            scheduled, free, done = sends[record["seq"]]
            rows.append({**record, "scheduled": scheduled, "free": free, "done": done})
    if not rows:
        return "trace: no traced request answered"
    rows.sort(key=lambda r: r["done"] - r["scheduled"])
    slow = rows[-max(1, len(rows) // 100):]

    def span(row: dict[str, Any], start: str, end: str) -> float | None:
        return (row[end] - row[start]) * 1000 if start in row and end in row else None

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2] if values else float("nan")

    lines = [f"trace: {len(rows)} requests, the slowest {len(slow)} from "
             f"{(slow[0]['done'] - slow[0]['scheduled']) * 1000:.1f} ms; ms per span, median of all / mean of the slowest:"]
    for label, start, end in SPANS:
        every = [v for r in rows if (v := span(r, start, end)) is not None]
        worst = [v for r in slow if (v := span(r, start, end)) is not None]
        lines.append(f"  {label:<44} {median(every):8.2f} / {sum(worst) / max(len(worst), 1):8.2f}")
    lines.append(f"  {'  of which in SQL statements (count)':<44} {median([r['sql_ms'] for r in rows]):8.2f} / "
                 f"{sum(r['sql_ms'] for r in slow) / len(slow):8.2f}  ({median([r['statements'] for r in rows])})")
    for key, label in (("thread_cpu_ms", "thread: its CPU"), ("thread_runq_ms", "thread: waiting for a CPU (run queue)")):
        every = [r[key] for r in rows if key in r]
        worst = [r[key] for r in slow if key in r]
        lines.append(f"  {label:<44} {median(every):8.2f} / {sum(worst) / max(len(worst), 1):8.2f}")
    window = (min(r["scheduled"] for r in rows), max(r["done"] for r in rows))
    lines += _pauses("server", recorded, window)
    lines += _pauses("generator", generator, window)
    for who, record in (("server", recorded), ("generator", generator)):
        full = [c for c in record["collections"] if c[0] == 2 and window[0] <= c[1] <= window[1]]
        overlapping = sum(1 for r in slow if any(c[1] < r["done"] and c[1] + c[2] / 1000 > r["scheduled"] for c in full))
        lines.append(f"  slowest requests overlapping a full (gen-2) collection in the {who}: {overlapping} of {len(slow)}")
    lines.append(f"  PostgreSQL's background work during the open loop: "
                 f"{', '.join(f'{k} {v}' for k, v in sorted(background.items()) if v) or 'none'}")
    return "\n".join(lines)
