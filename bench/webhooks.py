"""Webhook throughput benchmark: signed Twilio SMS callbacks at the running app against a bare INSERT.

Starts uvicorn (1 worker, no access log, embedded worker off) on bench.webhooks_app in a subprocess,
against a PostgreSQL database of its own, and drives it over HTTP on 127.0.0.1 from this process:

1. maximum rate: a closed loop of `--concurrency` requests in flight for `--duration` seconds, in
   alternating rounds against the hub's webhooks and the app's raw-insert endpoint (hub, raw, hub,
   raw), so machine noise falls on both; reports requests/s and the ratio hub/raw;
2. latency: an open loop at 80% of the hub's measured maximum, sends scheduled at fixed intervals,
   latency from the scheduled time to the answer; p50/p95/p99; then the same for the raw insert at
   80% of *its* maximum: the tail the machine gives without the hub's work, read beside the hub's
   (on two cores shared with the generator and PostgreSQL the baseline's p99 alone has crossed 100 ms).

Hub traffic alternates inbound SMS (a unique MessageSid each, from ~1,000 numbers, so contacts are
created and then reused) and "delivered" status callbacks for deliveries created beforehand through
hub.outbox.enqueue and marked sent with a provider id, each callback for a delivery not yet
delivered: the path a real callback takes (lock, forward update, timeline mirror). Every request is
signed as Twilio signs it. Any non-2xx answer fails the run. --record writes the "Webhooks" section.

Read the tail beside who set each maximum: the run prints the cores the server used at its closed-loop
maximum and the cores the open loop's schedule asked for at what an open-loop request cost it (`_demand`).
The hub's maximum is set by its one server process (~0.9 core), the raw insert's by the generator, and a
request arriving alone costs the server more than one queued in a closed loop.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import shlex
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import typer
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from bench import webhooks_trace
from bench.records import DOCS, record_section

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Webhooks"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/hub_bench_webhooks"
FIXTURES = ROOT / "channels" / "sms" / "fixtures"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "bench-auth-token-" + "0" * 15
FROM_NUMBER = "+79587654321"
SENDERS = 1000
GOAL_RATIO = 0.5
GOAL_P99_MS = 100.0
OPEN_LOOP_SHARE = 0.8
RAW_PATH = "/bench/raw-insert"
PHASES = (("hub", "closed loop, hub"), ("raw", "closed loop, raw"), ("open", "open loop, hub"),
          ("open raw", "open loop, raw insert"))

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


def _database(url: str) -> None:
    """Create the bench database if missing and bring it to head."""
    from hub.migrate import upgrade
    from hub.settings import load_settings

    base, name = url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = create_engine(load_settings(database_url=url).sqlalchemy_url)
    upgrade(engine)
    engine.dispose()


def _env(url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({
        "HUB_DATABASE_URL": url,
        "HUB_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HUB_EMBEDDED_WORKER": "false",
        "HUB_LIVE_BACKEND": "memory",
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_SECRET_KEY": "bench-" + "k" * 40,
        "HUB_CHANNELS__SMS__ACCOUNT_SID": ACCOUNT_SID,
        "HUB_CHANNELS__SMS__AUTH_TOKEN": AUTH_TOKEN,
        "HUB_CHANNELS__SMS__FROM_NUMBER": FROM_NUMBER,
    })
    return env


def _deliveries(env: dict[str, str], count: int, run: str) -> list[tuple[str, str]]:
    """`count` SMS deliveries queued through the outbox and marked sent: (provider id, number) each."""
    from sqlalchemy import update

    from hub.models import Delivery, DeliveryStatus
    from hub.outbox import enqueue
    from hub.runtime import Hub
    from hub.settings import load_settings

    nested = {k.removeprefix("HUB_CHANNELS__SMS__").lower(): v for k, v in env.items()
              if k.startswith("HUB_CHANNELS__SMS__")}
    runtime = Hub(load_settings(database_url=env["HUB_DATABASE_URL"], public_base_url=env["HUB_PUBLIC_BASE_URL"],
                                embedded_worker=False, live_backend="memory", secret_key=env["HUB_SECRET_KEY"],
                                channels={"sms": nested}))
    sent = []
    table = Delivery.__table__
    with runtime.session() as session, session.begin():
        for i in range(count):
            number = _number(i)
            delivery = enqueue(session, channel="sms", address=number, content={"text": f"Заказ {i} собран"},
                               idempotency_key=f"bench:{run}:{i}", record_event=False)
            sid = f"SM{run}{i:027x}"
            # Stands in for the worker's send: the provider accepted it and gave this id.
            session.execute(update(table).where(table.c.id == delivery.id)
                            .values(provider_id=sid, status=DeliveryStatus.SENT))
            sent.append((sid, number))
    runtime.close()
    return sent


def _number(i: int) -> str:
    return f"+7916{(i % SENDERS):07d}"


@dataclass
class Traffic:
    """Signed request bodies for the hub's webhooks, each used once."""

    base: str
    run: str
    statuses: list[tuple[str, str]]
    inbound: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    n: int = 0
    raw_n: int = 0
    used_statuses: int = 0

    def __post_init__(self) -> None:
        self.validator = RequestValidator(AUTH_TOKEN)
        self.inbound = json.loads((FIXTURES / "inbound_sms.json").read_text())
        self.status = json.loads((FIXTURES / "status" / "delivered.json").read_text())

    def next(self) -> tuple[str, bytes, dict[str, str]]:
        self.n += 1
        if self.n % 2 and self.used_statuses < len(self.statuses):
            sid, number = self.statuses[self.used_statuses]
            self.used_statuses += 1
            path = "/channels/sms/status"
            params = {**self.status, "MessageSid": sid, "SmsSid": sid, "To": number, "From": FROM_NUMBER,
                      "AccountSid": ACCOUNT_SID}
        else:
            sid = f"SM{self.run}f{self.n:026x}"  # "f" keeps them apart from the deliveries'
            path = "/channels/sms/inbound"
            params = {**self.inbound, "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid,
                      "From": _number(self.n * 7919), "To": FROM_NUMBER, "AccountSid": ACCOUNT_SID,
                      "Body": f"Здравствуйте! Заказ {self.n}: можно перенести доставку на пятницу?"}
        url = self.base + path
        signature = self.validator.compute_signature(url, params)
        return path, urlencode(params).encode(), {"X-Twilio-Signature": signature,
                                                  "Content-Type": "application/x-www-form-urlencoded"}

    def raw(self) -> tuple[str, bytes, dict[str, str]]:
        self.raw_n += 1
        body = urlencode({**self.inbound, "MessageSid": f"raw{self.raw_n}", "From": _number(self.raw_n)}).encode()
        return RAW_PATH, body, {"Content-Type": "application/x-www-form-urlencoded"}


class Failed(RuntimeError):
    pass


async def _send(client: httpx.AsyncClient, request: tuple[str, bytes, dict[str, str]]) -> None:
    path, body, headers = request
    answer = await client.post(path, content=body, headers=headers)
    if not 200 <= answer.status_code < 300:
        raise Failed(f"POST {path} answered {answer.status_code}: {answer.text[:300]}")


@dataclass
class Usage:
    """What one phase of the run cost: requests, CPU seconds of the generator (this process) and of the
    server process, PostgreSQL sessions opened (the engine's overflow connections are opened and
    closed per request once more than its pool size are busy), and what PostgreSQL's checkpointer and
    background writer wrote to disk meanwhile (a checkpoint spread over minutes writes while requests
    wait on their commits' fsync: what the work before the run, a test suite's, left dirty)."""

    requests: int = 0
    generator: float = 0.0
    server: float = 0.0
    sessions: int = 0
    background_bytes: int = 0
    connections: int = 0  # keep-alive connections the generator opened (open loops)
    server_sys: float = 0.0  # the kernel's share of `server`

    def per_request(self) -> str:
        n = max(self.requests, 1)
        return (f"{self.requests} requests; CPU per request: generator {self.generator / n * 1000:.2f} ms, "
                f"server {self.server / n * 1000:.2f} ms (kernel {self.server_sys / n * 1000:.2f}); "
                f"{self.sessions} PostgreSQL sessions opened; "
                f"checkpointer and background writer wrote {self.background_bytes / 1e6:.1f} MB")


class Meter:
    """Reads the counters a Usage is the difference of."""

    def __init__(self, server_pid: int, database_url: str) -> None:
        self.server_pid = server_pid
        self.conn = create_engine(f"postgresql+psycopg://{database_url.split('://', 1)[1]}").connect()
        self.tick = os.sysconf("SC_CLK_TCK")

    def background(self) -> Counter[str]:
        """PostgreSQL's background work so far: checkpoints, and autovacuum and autoanalyze runs per table
        of the bench's database (each a process taking a core's share and reading the table)."""
        self.conn.rollback()
        done: Counter[str] = Counter()
        done["checkpoints"] = int(self.conn.execute(text("SELECT checkpoints_timed + checkpoints_req "
                                                         "FROM pg_stat_bgwriter")).scalar())
        for table, vacuums, analyses in self.conn.execute(text(
                "SELECT relname, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables")):
            done[f"autovacuum {table}"], done[f"autoanalyze {table}"] = vacuums, analyses
        return done

    def _server_ticks(self) -> tuple[int, int]:
        """User and kernel clock ticks of the server process and its live children (uvicorn's workers)."""
        user = system = 0
        pids = [self.server_pid]
        children = Path(f"/proc/{self.server_pid}/task/{self.server_pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            user, system = user + int(fields[11]), system + int(fields[12])
        return user, system

    def read(self, requests: int) -> Usage:
        user, system = self._server_ticks()
        # One statistics snapshot per transaction: end it so the next read sees fresh counters.
        self.conn.rollback()
        sessions = self.conn.execute(text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))
        return Usage(requests, time.process_time(), (user + system) / self.tick,
                     int(sessions.scalar() or 0), self._background_bytes(), server_sys=system / self.tick)

    def _background_bytes(self) -> int:
        """Bytes the checkpointer and the background writer have written so far (their /proc io; 0 where
        PostgreSQL runs on another host or as a user whose processes this one cannot read)."""
        pids = self.conn.execute(text("SELECT pid FROM pg_stat_activity "
                                      "WHERE backend_type IN ('checkpointer', 'background writer')")).scalars()
        written = 0
        for pid in pids:
            try:
                io = Path(f"/proc/{pid}/io").read_text()
            except OSError:
                continue
            written += next((int(line.split()[1]) for line in io.splitlines() if line.startswith("write_bytes:")), 0)
        return written

    async def phase(self, counted: Any, body: Any) -> tuple[Any, Usage]:
        """Run `body`; what it returned and what it cost (`counted()` says requests sent so far)."""
        before = self.read(counted())
        result = await body
        await asyncio.sleep(1.1)  # PostgreSQL publishes a backend's counters at most once a second
        after = self.read(counted())
        return result, Usage(after.requests - before.requests, after.generator - before.generator,
                             after.server - before.server, after.sessions - before.sessions,
                             after.background_bytes - before.background_bytes,
                             server_sys=after.server_sys - before.server_sys)


async def _closed_loop(client: httpx.AsyncClient, make: Any, *, concurrency: int, duration: float) -> float:
    """Requests per second with `concurrency` in flight for `duration` seconds."""
    done = 0
    deadline = time.perf_counter() + duration

    async def one_lane() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await _send(client, make())
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


class Connections:
    """Keep-alive connections for the open loop, each its own one-connection httpx client, handed out
    from a free list. One httpx pool of many connections costs the generator CPU per request in
    proportion to its connections: httpcore checks every idle connection's socket on each pool
    operation (encode/httpcore#924). At 128 connections the generator's CPU per request was 3.4×
    its closed-loop figure, taken from the two cores the server runs on, and the open loop fell
    behind for the generator's sake, not the hub's (docs/benchmarks.md, "Webhooks")."""

    def __init__(self, base: str, most: int) -> None:
        self.base, self.most = base, most
        # One TLS context for all (plain HTTP never uses it): httpx builds one per client otherwise,
        # loading the CA store each time, ~80% of the generator's CPU while the clients were made.
        self.tls = ssl.create_default_context()
        self.clients: list[httpx.AsyncClient] = []
        self.sent = 0
        self.idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()

    async def send(self, request: tuple[str, bytes, dict[str, str]]) -> float:
        """Send `request` on a free connection; when the connection was free (perf_counter)."""
        if self.idle.empty() and len(self.clients) < self.most:
            one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            self.clients.append(client := httpx.AsyncClient(base_url=self.base, limits=one, timeout=30, verify=self.tls))
        else:
            client = await self.idle.get()
        free = time.perf_counter()
        try:
            await _send(client, request)
            self.sent += 1
        finally:
            self.idle.put_nowait(client)
        return free

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.clients))


async def _open_loop(connections: Connections, requests: list[tuple[str, bytes, dict[str, str]]], *,
                     rate: float, sends: dict[int, tuple[float, float, float]] | None = None) -> tuple[list[float], float]:
    """Latencies (ms, from the scheduled send time) of `requests` sent at `rate` per second, and the rate
    served; `sends` gets each request's scheduled time, when its connection was free and when it was answered."""
    latencies = [0.0] * len(requests)  # in the order they were scheduled (`_stalls` reads them by time)
    interval = 1 / rate

    async def one(i: int, request: tuple[str, bytes, dict[str, str]], scheduled: float) -> None:
        free = await connections.send(request)
        done = time.perf_counter()
        latencies[i] = (done - scheduled) * 1000
        if sends is not None:
            sends[i] = (scheduled, free, done)

    tasks = []
    start = time.perf_counter() + 0.1
    for i, request in enumerate(requests):
        scheduled = start + i * interval
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, request, scheduled)))
    await asyncio.gather(*tasks)
    served = len(requests) / (time.perf_counter() - start)
    return latencies, served


def _stalls(latencies: list[float], rate: float) -> str:
    """The slowest latency (ms) in each second of an open loop's schedule: one stall or a backlog all along."""
    per = max(int(rate), 1)
    return " ".join(f"{max(latencies[i:i + per]):.0f}" for i in range(0, len(latencies), per))


def _start_and_rest(latencies: list[float], rate: float, start: float = 2.0) -> str:
    """p50/p99 of the requests scheduled in the open loop's first `start` seconds and of the rest: the loop
    starts on a server idle for a second or two (the meter's pause, the generator's settling), where the
    closed loop's figures come after a warm-up."""
    cut = int(rate * start)
    first, rest = latencies[:cut], latencies[cut:]
    if len(first) < 2 or len(rest) < 2:
        return ""
    (p50, _, p99), (rest_p50, _, rest_p99) = _percentiles(first), _percentiles(rest)
    return (f"first {start:g} s p50 {p50:.1f} ms, p99 {p99:.1f} ms; after them p50 {rest_p50:.1f} ms, "
            f"p99 {rest_p99:.1f} ms")


def _settle() -> None:
    """Move what this generator holds by now out of the garbage collector's full passes, as the served
    hub does (hub.runtime.freeze_startup_objects). Its heap is ~260,000 objects (the hub's modules,
    imported to queue the deliveries, the status pool, the signed requests): a full pass over it took
    174–891 ms on this machine, during which no request is sent and no answer read, and every request
    due meanwhile is charged the pause in the open loop's latency, from its scheduled time."""
    gc.collect()
    gc.freeze()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], port: int, *, target: str = "bench.webhooks_app:app",
                 factory: bool = False, workers: int = 1) -> subprocess.Popen[bytes]:
    """uvicorn serving `target` (1 worker, no access log) on `port`, once it answers /healthz."""
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, *(["--factory"] if factory else []), "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning",
         # Longer than any idle gap in the run: at uvicorn's 5 s a pooled connection can close just as
         # the client reuses it, a dropped request that says nothing about the hub.
         "--timeout-keep-alive", "60"],
        cwd=ROOT, env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise Failed(f"uvicorn exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise Failed("the app did not answer /healthz within 60 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _demand(result: dict[str, Any], closed: str, opened: str) -> tuple[float, float, float]:
    """How much dearer a request was to the server in the open loop than in the closed loop; the server
    CPU per second (cores) at the closed-loop maximum; and the cores the open loop's schedule asked for
    at the open loop's cost per request.

    The closed loop keeps 16 requests queued in the server, so its loop and threads take them back to back;
    in the open loop they mostly arrive alone and each pays the wake-ups and cold caches again (15-56%
    more server CPU per request, docs/benchmarks.md, "Webhooks", session 16). One server process runs
    Python one thread at a time (the GIL), so about one core is its ceiling: a closed loop whose maximum
    is set by the server (the hub's: ~0.9 core) leaves its open loop at 80% of it asking for that ceiling,
    where one set by the generator (the raw insert's) leaves the server room."""
    closed_costs = result["usage"][closed]
    closed_requests = max(sum(c.requests for c in closed_costs), 1)
    closed_ms = sum(c.server for c in closed_costs) / closed_requests
    [open_cost] = result["usage"][opened]
    open_ms = open_cost.server / max(open_cost.requests, 1)
    rate, target = (result["hub"], result["target"]) if closed == "hub" else (result["raw"], result["raw_target"])
    return open_ms / closed_ms, rate * closed_ms, target * open_ms


def _saturated(at_max: float, asked: float) -> str:
    """A warning where the open loop asked the server for more CPU per second than it got at the closed-loop
    maximum, or for nearly all of one process's core: the open loop then ran at capacity, not at 80% of it.
    (Session 15's recorded runs: hub 0.90 → 0.91 core, p99 1.3 s; raw insert 0.72 → 0.69, p99 72 ms.)"""
    if asked >= at_max or asked >= 0.85:
        return "(at capacity: the percentiles measure a queue)"
    return ""


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), q[94], q[98]


async def _run(base: str, traffic: Traffic, meter: Meter, *, concurrency: int, duration: float,
               rounds: int, share: float = OPEN_LOOP_SHARE, trace: bool = False,
               compare: tuple[list[float], list[int]] | None = None) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sent = lambda: traffic.n + traffic.raw_n  # noqa: E731
    usage: dict[str, list[Usage]] = {key: [] for key, _ in PHASES}
    watching = webhooks_trace.watch() if trace else None  # this process's collections and lateness, all run
    _settle()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await _closed_loop(client, traffic.next, concurrency=concurrency, duration=min(2.0, duration))  # warm-up
        hub_rates, raw_rates = [], []
        for r in range(rounds):
            for rates, key, make in ((hub_rates, "hub", traffic.next), (raw_rates, "raw", traffic.raw)):
                rate, cost = await meter.phase(sent, _closed_loop(client, make, concurrency=concurrency,
                                                                  duration=duration))
                rates.append(rate)
                usage[key].append(cost)
            print(f"round {r + 1}: hub {hub_rates[-1]:.0f} req/s, raw insert {raw_rates[-1]:.0f} req/s",
                  file=sys.stderr)
        hub_rate, raw_rate = statistics.mean(hub_rates), statistics.mean(raw_rates)
        target, raw_target = hub_rate * share, raw_rate * share
    # Signed before the clock starts, as Twilio has them ready: the generator's own CPU stays off the figures.
    requests = [traffic.next() for _ in range(int(target * duration))]
    sends: dict[int, tuple[float, float, float]] | None = None
    if trace:
        requests = [(path, body, {**headers, "X-Bench-Seq": str(i)}) for i, (path, body, headers) in enumerate(requests)]
        sends = {}
        background = meter.background()
        async with httpx.AsyncClient(base_url=base) as client:
            # The closed loops' record, and the server starts watching its event loop.
            closed = (await client.get("/bench/trace")).json()
    (latencies, served), usage["open"] = await _open_phase(base, meter, concurrency, requests, target, sends)
    print(f"open loop, hub: slowest request per second of the schedule: {_stalls(latencies, target)}", file=sys.stderr)
    print(f"open loop, hub: {_start_and_rest(latencies, target)}", file=sys.stderr)
    if sends is not None:
        async with httpx.AsyncClient(base_url=base) as client:
            recorded = (await client.get("/bench/trace")).json()
        assert watching is not None
        generator = watching.take()
        full = [c for c in generator["collections"] if c[0] == 2]
        print(f"generator: {len(full)} full collections in the run, "
              f"{', '.join(f'{c[2]:.0f} ms at {c[1] - sends[0][0]:+.1f} s' for c in full)} (from the open loop's start)",
              file=sys.stderr)
        started = time.perf_counter()
        gc.collect()
        print(f"generator: a full collection of its heap takes {(time.perf_counter() - started) * 1000:.0f} ms "
              f"({len(gc.get_objects()):,} objects)", file=sys.stderr)
        print(webhooks_trace.explain(sends, recorded, meter.background() - background, generator), file=sys.stderr)
        dump = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-webhooks-trace-{os.getpid()}.json"
        dump.write_text(json.dumps({"sends": sends, **recorded, "closed": closed, "generator": generator}))
        print(f"trace written to {dump}", file=sys.stderr)
    # The raw insert's open loop at the same share of *its own* maximum, right after: the tail of the
    # machine and the set-up (uvicorn, the generator, PostgreSQL on the same cores) without the hub's
    # work. On two shared cores it misses 100 ms now and then by itself (docs/benchmarks.md,
    # "Webhooks"), so the hub's p99 is read against it, in the same run.
    raw_requests = [traffic.raw() for _ in range(int(raw_target * duration))]
    (raw_latencies, raw_served), usage["open raw"] = await _open_phase(base, meter, concurrency, raw_requests,
                                                                        raw_target)
    print(f"open loop, raw insert: {_start_and_rest(raw_latencies, raw_target)}", file=sys.stderr)
    if compare is not None:
        for compare_share in compare[0]:
            await _compare_connections(base, traffic, meter, duration=duration, rate=hub_rate * compare_share,
                                       caps=compare[1])
    for key, label in PHASES:
        for cost in usage[key]:
            print(f"{label}: {cost.per_request()}", file=sys.stderr)
    return {"hub_rates": hub_rates, "raw_rates": raw_rates, "hub": hub_rate, "raw": raw_rate, "target": target,
            "served": served, "latencies": latencies, "raw_target": raw_target, "raw_served": raw_served,
            "raw_latencies": raw_latencies, "usage": usage}


async def _compare_connections(base: str, traffic: Traffic, meter: Meter, *, duration: float, rate: float,
                               caps: list[int]) -> None:
    """The hub's open loop at `rate` once per connection cap in `caps`, in that order (alternate them: 16,
    128, 16, 128): does the tail depend on how many connections the generator opens, and what does a
    request cost the server at this rate against the closed loop's figure?"""
    for cap in caps:
        requests = [traffic.next() for _ in range(int(rate * duration))]
        (latencies, served), [cost] = await _open_phase(base, meter, cap, requests, rate, most=cap)
        p50, p95, p99 = _percentiles(latencies)
        print(f"  slowest request per second of the schedule: {_stalls(latencies, rate)}; "
              f"{_start_and_rest(latencies, rate)}", file=sys.stderr)
        print(f"fixed-rate open loop, hub, at most {cap} connections (opened {cost.connections}): {rate:.0f} req/s "
              f"scheduled, {served:.0f} served; p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms; "
              f"{cost.per_request()}", file=sys.stderr)


async def _open_phase(base: str, meter: Meter, concurrency: int, requests: list[tuple[str, bytes, dict[str, str]]],
                      rate: float, sends: dict[int, tuple[float, float, float]] | None = None, *,
                      most: int | None = None) -> tuple[tuple[list[float], float], list[Usage]]:
    """One open loop of `requests` at `rate` on fresh keep-alive connections (at most `most`), measured."""
    # Twilio opens as many connections as it needs; too few would queue requests in the generator.
    connections = Connections(base, most or 8 * concurrency)
    _settle()
    try:
        result, cost = await meter.phase(lambda: connections.sent, _open_loop(connections, requests, rate=rate,
                                                                              sends=sends))
    finally:
        await connections.close()
    cost.connections = len(connections.clients)
    return result, [cost]


def _section(result: dict[str, Any], *, command: str, concurrency: int, duration: float, rounds: int,
             load: tuple[float, float], pg_version: str, total: int, statuses: int) -> str:
    p50, p95, p99 = _percentiles(result["latencies"])
    raw_p50, raw_p95, raw_p99 = _percentiles(result["raw_latencies"])
    ratio = result["hub"] / result["raw"]
    (hub_dearer, hub_max, hub_asked), (raw_dearer, raw_max, raw_asked) = (_demand(result, "hub", "open"),
                                                                          _demand(result, "raw", "open raw"))
    lines = [SECTION, "", f"Recorded {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with:", "", "```", command,
             "```", ""]
    lines += [
        f"- Machine: {os.cpu_count()} CPUs shared by the server and the load generator (the figures are "
        f"lower than on a machine where they run apart), Python {platform.python_version()}, PostgreSQL "
        f"{pg_version}, uvicorn 1 worker, no access log, keep-alive 60 s, embedded worker off; 1-minute load average "
        f"{load[0]:.2f} before and {load[1]:.2f} after (above 2, other work was competing for the cores too).",
        "- Traffic over HTTP on 127.0.0.1 (httpx): inbound SMS (a unique MessageSid each, from "
        f"{SENDERS:,} numbers, so contacts are created and then reused) alternating with \"delivered\" "
        "status callbacks for deliveries queued through `hub.outbox.enqueue` and marked sent beforehand, "
        "each callback for a delivery not yet delivered; every request signed with "
        "X-Twilio-Signature and verified. The baseline is `POST /bench/raw-insert` in the same app "
        "(bench/webhooks_app.py): no verification, one INSERT of the form body, same thread pool and engine.",
        f"- Maximum rate: closed loop, {concurrency} requests in flight, {rounds} alternating rounds of "
        f"{duration:g} s each (hub, raw, …). Latency: open loop at {OPEN_LOOP_SHARE:.0%} of the hub's "
        f"maximum for {duration:g} s, then the raw insert's at {OPEN_LOOP_SHARE:.0%} of its own (the tail the machine "
        "and the set-up give without the hub's work, in the same run), sends at fixed intervals (each on a free keep-alive connection of up to "
        f"{8 * concurrency}, one httpx client each), latency from the scheduled time to the answer "
        f"({len(result['latencies']):,} requests). {total:,} hub requests in all, "
        f"{statuses:,} of them status callbacks; every answer 2xx.",
        "",
        "| Endpoint | Requests/s per round | Mean requests/s |",
        "|---|---|---|",
        f"| hub webhooks (inbound + status) | {', '.join(f'{r:.0f}' for r in result['hub_rates'])} | "
        f"{result['hub']:.0f} |",
        f"| raw INSERT | {', '.join(f'{r:.0f}' for r in result['raw_rates'])} | {result['raw']:.0f} |",
        "",
        "| Open loop | Scheduled req/s | Served req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|",
        f"| hub webhooks | {result['target']:.0f} | {result['served']:.0f} | {p50:.1f} | {p95:.1f} | {p99:.1f} |",
        f"| raw INSERT | {result['raw_target']:.0f} | {result['raw_served']:.0f} | {raw_p50:.1f} | {raw_p95:.1f} "
        f"| {raw_p99:.1f} |",
        "",
        "| Goal | Measured | Verdict |",
        "|---|---|---|",
        f"| hub at least {GOAL_RATIO}× the raw endpoint | {ratio:.2f}× | "
        f"{'PASS' if ratio >= GOAL_RATIO else '**MISS**'} |",
        f"| p99 under {GOAL_P99_MS:.0f} ms at {OPEN_LOOP_SHARE:.0%} of the maximum | {p99:.1f} ms | "
        f"{'PASS' if p99 < GOAL_P99_MS else '**MISS**'} |",
        f"| (for reading it) the raw insert's p99 at {OPEN_LOOP_SHARE:.0%} of its maximum; hub p99 / raw p99 "
        f"| {raw_p99:.1f} ms; {p99 / raw_p99:.1f}× | {'the baseline misses too' if raw_p99 >= GOAL_P99_MS else ''} |",
        "| (for reading it) server CPU per open-loop request / per closed-loop request; server cores used at the "
        "closed-loop maximum → asked for by the open loop's schedule (one process: ~1 core is its ceiling): hub; "
        f"raw insert | {hub_dearer:.2f}×, {hub_max:.2f} → {hub_asked:.2f}; {raw_dearer:.2f}×, {raw_max:.2f} → "
        f"{raw_asked:.2f} | {_saturated(hub_max, hub_asked)} |",
        "",
    ]
    lines += [
        "What each phase cost (CPU of this generator and of the server process per request, from "
        "`time.process_time` and `/proc`; PostgreSQL sessions opened, from `pg_stat_database`; what PostgreSQL's "
        "checkpointer and background writer wrote meanwhile, from their `/proc/<pid>/io`):",
        "",
        "| Phase | Requests | Generator CPU ms/request | Server CPU ms/request | PostgreSQL sessions opened "
        "| Checkpointer + bgwriter MB |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in PHASES:
        for cost in result["usage"][key]:
            n = max(cost.requests, 1)
            lines.append(f"| {label} | {cost.requests:,} | {cost.generator / n * 1000:.2f} | "
                         f"{cost.server / n * 1000:.2f} | {cost.sessions} | {cost.background_bytes / 1e6:.1f} |")
    lines.append("")
    if result["served"] < 0.95 * result["target"]:
        lines += [
            f"The server fell behind the schedule (it served {result['served']:.0f} of {result['target']:.0f} "
            "req/s), so the backlog grew through the open loop and these percentiles measure that backlog, not a "
            "steady state at the target rate. Compare the open loop's CPU per request with the closed loop's "
            "above: the generator and any other work share the two cores with the server.",
            "",
        ]
    return "\n".join(lines)


@app.command()
def main(
    duration: Annotated[float, typer.Option(min=1, max=120, help="Seconds per round and for the open loop.")] = 12,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Requests in flight in the closed loop.")] = 16,
    rounds: Annotated[int, typer.Option(min=1, max=10, help="Alternating hub/raw rounds.")] = 2,
    status_pool: Annotated[int, typer.Option(min=0, max=200_000,
                                             help="Deliveries created for status callbacks.")] = 10_000,
    database_url: Annotated[str, typer.Option(help="PostgreSQL database (created if missing).")] = DEFAULT_PG,
    record_figures: Annotated[bool, typer.Option("--record", help="Write the figures into docs/benchmarks.md.")] = False,
    open_share: Annotated[float, typer.Option(min=0.1, max=2.0, help="Open-loop rate as a share of the hub's "
                                              "closed-loop maximum (the goal is judged at 0.8).")] = OPEN_LOOP_SHARE,
    server_workers: Annotated[int, typer.Option(min=1, max=8, help="uvicorn worker processes serving the app "
                                                "(the goal is judged with 1).")] = 1,
    compare_share: Annotated[list[float] | None, typer.Option(help="After the run, the hub's open loop again at this "
                                                              "share of its closed-loop maximum (repeat for several) "
                                                              "once per --compare-connections cap.")] = None,
    compare_connections: Annotated[list[int] | None, typer.Option(help="Connection caps for --compare-share, in order "
                                                                  "(repeat: 16 128 16 128 alternates).")] = None,
    trace: Annotated[bool, typer.Option(help="Trace the open loop's requests through the server and print where "
                                        "the slow ones' time went (bench/webhooks_trace.py).")] = False,
) -> None:
    """Hub webhooks' maximum rate against a raw INSERT, and p99 at 80% of that rate."""
    if record_figures and server_workers != 1:
        raise typer.BadParameter("the recorded figures are for one worker", param_hint="--server-workers")
    if record_figures and open_share != OPEN_LOOP_SHARE:
        raise typer.BadParameter(f"the goal is judged at {OPEN_LOOP_SHARE}; record without it", param_hint="--open-share")
    load_before = os.getloadavg()[0]
    _database(database_url)
    port = _free_port()
    env = _env(database_url, port)
    if trace:
        env[webhooks_trace.ENV] = "1"
    run = f"{int(time.time()) % 100_000:05d}"
    started = time.perf_counter()
    statuses = _deliveries(env, status_pool, run)
    print(f"queued {len(statuses):,} deliveries in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    engine = create_engine(f"postgresql+psycopg://{database_url.split('://', 1)[1]}")
    with engine.connect() as conn:
        pg_version = str(conn.execute(text("SHOW server_version")).scalar()).split(" ")[0]
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port, workers=server_workers)
    try:
        traffic = Traffic(base=base, run=run, statuses=statuses)
        meter = Meter(server.pid, database_url)
        result = asyncio.run(_run(base, traffic, meter, concurrency=concurrency, duration=duration, rounds=rounds,
                                  share=open_share, trace=trace,
                                  compare=(compare_share, compare_connections or [128])
                                  if compare_share else None))
    finally:
        stop_server(server)
    with engine.connect() as conn:
        # Every callback must have landed on its delivery, not in pending_status.
        delivered = conn.execute(text("SELECT count(*) FROM delivery WHERE provider_id LIKE :p "
                                      "AND status = 'delivered'"), {"p": f"SM{run}%"}).scalar()
    engine.dispose()
    if delivered != traffic.used_statuses:
        raise Failed(f"{traffic.used_statuses} status callbacks sent but {delivered} deliveries delivered")
    if traffic.used_statuses >= len(statuses):
        print("the status pool ran out; later hub traffic was inbound only (raise --status-pool)", file=sys.stderr)
    p50, p95, p99 = _percentiles(result["latencies"])
    ratio = result["hub"] / result["raw"]
    print(f"hub {result['hub']:.0f} req/s, raw insert {result['raw']:.0f} req/s, ratio {ratio:.2f} "
          f"(goal ≥ {GOAL_RATIO}: {'PASS' if ratio >= GOAL_RATIO else 'MISS'})")
    print(f"open loop at {result['target']:.0f} req/s (served {result['served']:.0f}/s): p50 {p50:.1f} ms, "
          f"p95 {p95:.1f} ms, p99 {p99:.1f} ms (goal < {GOAL_P99_MS:.0f} ms: {'PASS' if p99 < GOAL_P99_MS else 'MISS'})")
    raw_p50, _, raw_p99 = _percentiles(result["raw_latencies"])
    print(f"raw insert's open loop at {result['raw_target']:.0f} req/s (served {result['raw_served']:.0f}/s): "
          f"p50 {raw_p50:.1f} ms, p99 {raw_p99:.1f} ms; hub p99 / raw p99 {p99 / raw_p99:.1f}×")
    for label, closed, opened in (("hub", "hub", "open"), ("raw insert", "raw", "open raw")):
        dearer, at_max, asked = _demand(result, closed, opened)
        print(f"{label}: server CPU per open-loop request {dearer:.2f}× the closed loop's; the server used "
              f"{at_max:.2f} core at the closed-loop maximum, the open loop's schedule asked for {asked:.2f} core "
              f"{_saturated(at_max, asked)}".rstrip())
    command = "python -m bench.webhooks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    section = _section(result, command=command.strip(), concurrency=concurrency, duration=duration, rounds=rounds,
                       load=(load_before, os.getloadavg()[0]), pg_version=pg_version,
                       total=traffic.n, statuses=traffic.used_statuses)
    if record_figures:
        record_section(section, heading=SECTION)
        print(f"recorded in {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    app()
