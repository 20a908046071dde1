"""Outbound webhooks benchmark: notices fanned out to 10 endpoints, one never answering, against a
bare signed httpx loop posting the same payloads in the same run.

A receiver runs in its own process (uvicorn, a bare ASGI app): every path answers 200 at once, except
/dead, which never answers. The hub side builds a runtime on a PostgreSQL database of its own (the
production store; SQLite with --sqlite), adds the endpoints through webhooks.service, emits `--events`
contact.created notices in one transaction (each queued for every endpoint by the notice listener),
then lets the webhooks dispatcher deliver them, timing from the first claim until the receiver holds
every live endpoint's deliveries. Three measurements, alternated twice so machine noise falls on all:

1. hub, 9 live endpoints + the dead one;
2. hub, the same 9 live endpoints alone (what the dead endpoint costs the others);
3. bare: one asyncio task per live endpoint posting the same bodies, signed with `standardwebhooks`,
   over a kept-alive httpx connection: no store, no claims, no log.

Goals (issue 22): hub ≥ 0.5 × bare, and the dead endpoint lowers the others' rate by at most 10%.
`--record` writes the "Outbound webhooks" section of docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from sqlalchemy import create_engine, text

from bench.records import record_section

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Outbound webhooks"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/hub_bench_webhooks_out"
LIVE = 9
app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)

RECEIVER = '''
import asyncio, json
counts = {}
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if path == "/stats":
        body = json.dumps(counts).encode()
    elif path == "/reset":
        counts.clear(); body = b"{}"
    else:
        counts[path] = counts.get(path, 0) + 1
        if path == "/dead":
            await asyncio.sleep(3600)
        body = b'{"ok":true}'
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _receiver(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    (folder / "bench_receiver.py").write_text(RECEIVER)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench_receiver:app", "--port", str(port), "--log-level",
                             "warning", "--no-access-log"], cwd=folder, env={**os.environ, "PYTHONPATH": str(folder)})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the receiver did not start")


def _database(url: str) -> str:
    from hub.settings import load_settings

    base, name = url.rsplit("/", 1)
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://") + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return load_settings(database_url=url).sqlalchemy_url


def _hub(url: str, data_dir: Path) -> Any:
    from sqlmodel import SQLModel

    from hub.runtime import Hub
    from hub.schema import metadata
    from hub.settings import load_settings

    settings = load_settings(database_url=url, data_dir=data_dir, secret_key="bench-" + "k" * 40, embedded_worker=False,
                             live_backend="memory", log_level="WARNING",
                             extensions={"webhooks": {"allow_http": True, "allowed_hosts": ["127.0.0.1"],
                                                      "timeout_seconds": 5.0, "batch_per_endpoint": 100}})
    metadata()
    hub = Hub(settings)
    SQLModel.metadata.create_all(hub.db.engine)
    return hub


@functools.cache
def _probe() -> httpx.Client:
    """The bench's own kept-alive client for the receiver's counters. httpx.get() would build a client,
    and with it an SSL context (~20 ms of CPU loading the CA bundle), on every poll: in this process,
    under the GIL the hub's lanes need, 20 times a second."""
    return httpx.Client(timeout=10, trust_env=False)


def _stats(port: int) -> dict[str, int]:
    return _probe().get(f"http://127.0.0.1:{port}/stats").json()


def _reset(port: int) -> None:
    _probe().post(f"http://127.0.0.1:{port}/reset")


def _endpoints(hub: Any, port: int, paths: list[str]) -> None:
    from sqlalchemy import delete

    from hub.auth import SYSTEM
    from webhooks import service
    from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

    with hub.session() as session, session.begin():
        for table in (WebhookAttempt, WebhookDelivery, WebhookMessage, WebhookEndpoint):
            session.execute(delete(table))
        for path in paths:
            service.create_endpoint(session, hub=hub, actor=SYSTEM, url=f"http://127.0.0.1:{port}{path}",
                                    event_types=["contact.created"])


def _emit(hub: Any, events: int, offset: int) -> None:
    from hub import notices

    with hub.session() as session, session.begin():
        for i in range(events):
            n = offset + i
            notices.emit(session, "contact.created", subject=f"contact:{n}",
                         data={"contact_id": n, "display_name": f"Клиент {n}", "lifecycle_stage": "lead"})


def run_hub(hub: Any, port: int, *, events: int, dead: bool, offset: int) -> float:
    """Deliveries per second per live endpoint, from the notices' transaction to the last live one received."""
    live = [f"/live{i}" for i in range(LIVE)]
    _endpoints(hub, port, live + (["/dead"] if dead else []))
    _reset(port)
    dispatcher = hub.extensions["webhooks"].dispatcher()
    started = time.perf_counter()  # the fan-out's writes in the cause's transaction count as the hub's cost
    _emit(hub, events, offset)
    last_pass = 0.0
    while True:
        if time.perf_counter() - last_pass > 0.5:  # what the webhooks.dispatch job does every poll
            dispatcher.dispatch_due()
            last_pass = time.perf_counter()
        counts = _stats(port)
        if all(counts.get(p, 0) >= events for p in live):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    while dispatcher.running:  # the dead endpoint's lane ends after its timeout
        time.sleep(0.1)
    return events / elapsed


async def _bare(port: int, bodies: list[bytes]) -> float:
    from standardwebhooks import Webhook

    from webhooks.signing import new_secret

    secret = new_secret()

    async def lane(path: str) -> None:
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=2)) as client:
            for index, body in enumerate(bodies):
                msg_id = f"msg_bare_{path}_{index}"
                now = datetime.now(timezone.utc)
                headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                           "webhook-signature": Webhook(secret).sign(msg_id, now, body),
                           "content-type": "application/json"}
                answer = await client.post(f"http://127.0.0.1:{port}{path}", content=body, headers=headers)
                answer.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(lane(f"/bare{i}") for i in range(LIVE)))
    return len(bodies) / (time.perf_counter() - started)


def _bodies(events: int) -> list[bytes]:
    from hub.notices import Notice, new_id

    now = datetime.now(timezone.utc)
    return [json.dumps(Notice(new_id(), "contact.created", 1, f"contact:{n}",
                              {"contact_id": n, "display_name": f"Клиент {n}", "lifecycle_stage": "lead",
                               "changes": {}}, now).payload(), ensure_ascii=False, separators=(",", ":")).encode()
            for n in range(events)]


@app.command()
def main(events: Annotated[int, typer.Option(help="Notices per round (each to every endpoint)")] = 300,
         rounds: Annotated[int, typer.Option(help="Alternated rounds of the three measurements")] = 2,
         database: Annotated[str, typer.Option(help="PostgreSQL URL (the database is recreated)")] = DEFAULT_PG,
         sqlite: Annotated[bool, typer.Option(help="Use a SQLite file instead of PostgreSQL")] = False,
         record: Annotated[bool, typer.Option(help="Write the section of docs/benchmarks.md")] = False,
         label: Annotated[str, typer.Option(help="What the recorded figures are (scale, machine)")] = "") -> None:
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-webhooks-out-"))
    url = f"sqlite:///{folder / 'hub.db'}" if sqlite else database
    if not sqlite:
        _database(url)
    hub = _hub(url, folder)
    receiver, port = _receiver(folder)
    results: dict[str, list[float]] = {"with_dead": [], "live_only": [], "bare": []}
    # CPU time of this process (every thread: the hub's, or the bare loop's) per live delivery: the
    # PostgreSQL server and the receiver are other processes. It moves less with the machine's load
    # than the rates do.
    cpu: dict[str, list[float]] = {name: [] for name in results}
    try:
        bodies = _bodies(events)
        offset = 0
        for round_no in range(rounds):
            for name in ("with_dead", "live_only", "bare"):
                cpu_before = time.process_time()
                if name == "bare":
                    _reset(port)
                    rate = asyncio.run(_bare(port, bodies))
                else:
                    rate = run_hub(hub, port, events=events, dead=name == "with_dead", offset=offset)
                    offset += events
                results[name].append(rate)
                cpu[name].append((time.process_time() - cpu_before) * 1000 / (events * LIVE))
                print(f"round {round_no + 1}: {name:10s} {rate:8.1f} deliveries/s per live endpoint, "
                      f"{cpu[name][-1]:.2f} ms CPU per delivery", flush=True)
    finally:
        hub.extensions["webhooks"].dispatcher().stop()
        receiver.kill()  # its /dead requests never end, so a graceful stop would wait for them
        receiver.wait(timeout=10)
        hub.close()
    med = {k: statistics.median(v) for k, v in results.items()}
    ratio = med["with_dead"] / med["bare"]
    dead_cost = 1 - med["with_dead"] / med["live_only"]
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"CPU per delivery (median): hub {cpu_med['with_dead']:.2f} ms, bare {cpu_med['bare']:.2f} ms")
    print(f"hub (dead endpoint present) / bare: {ratio:.2f}× (goal ≥ 0.5×)")
    print(f"the dead endpoint lowers the others' rate by {dead_cost * 100:.1f}% (goal ≤ 10%)")
    if record:
        store = "SQLite" if sqlite else "PostgreSQL"
        section = f"""{SECTION}

```
python -m bench.webhooks_out --events {events} --rounds {rounds}{' --sqlite' if sqlite else ''} --record
```

{label or 'Full scale.'} {platform.python_version()}, {store}, {os.cpu_count()} cores. Receiver: uvicorn in its own
process on 127.0.0.1, 200 at once on every path but `/dead`, which never answers (the hub gives up on
it after `timeout_seconds` = 5 s). {events} `contact.created` notices per round, emitted in one
transaction, each queued for every endpoint; rates are deliveries per second per live endpoint
(9 live endpoints, signed per Standard Webhooks), medians of {rounds} alternated rounds.

| run | rounds | median /s per endpoint |
|---|---|---|
| hub: 9 live + 1 dead endpoint | {', '.join(f'{r:.0f}' for r in results['with_dead'])} | {med['with_dead']:.0f} |
| hub: 9 live endpoints alone | {', '.join(f'{r:.0f}' for r in results['live_only'])} | {med['live_only']:.0f} |
| bare signed httpx loop, 9 lanes | {', '.join(f'{r:.0f}' for r in results['bare'])} | {med['bare']:.0f} |

| CPU of the bench process per live delivery | rounds (ms) | median (ms) |
|---|---|---|
""" + "".join(f"| {title} | {', '.join(f'{c:.2f}' for c in cpu[key])} | {cpu_med[key]:.2f} |\n"
                     for key, title in (('with_dead', 'hub: 9 live + 1 dead'), ('live_only', 'hub: 9 live alone'),
                                        ('bare', 'bare signed httpx loop'))) + f"""

- hub / bare: **{ratio:.2f}×** (goal ≥ 0.5×).
- The dead endpoint lowers the live endpoints' rate by **{dead_cost * 100:.1f}%** (goal ≤ 10%).
"""
        record_section(section, heading=SECTION)


if __name__ == "__main__":
    app()
