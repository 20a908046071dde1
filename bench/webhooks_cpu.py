"""The server's CPU per webhook request, in one process: what a loaded machine can still compare.

A tail latency means nothing on a machine whose cores other work takes; the CPU a request costs
does, and less of it is what leaves the open loop headroom (docs/benchmarks.md, "Webhooks"). This
drives bench.webhooks_app's ASGI app directly from an event loop in this process (no HTTP, no
generator process): the same signed traffic as bench.webhooks, the same middleware, thread hand-off,
transaction and commit. It warms the app past its heap freeze (hub.runtime.FreezeWhenWarm), then
reports the process's CPU per request, the part of it spent in the worker threads (`receive`), and
statements per request. Compare two trees from one, old and new alternating:

    python -m bench.webhooks_cpu --kind inbound --root ../old-tree
    python -m bench.webhooks_cpu --kind inbound

`--rate R` sends the measured requests at R per second instead of `--concurrency` in flight: what a
request costs when it arrives alone, as in the benchmark's open loop (more than queued: docs/benchmarks.md,
"Webhooks", session 16). It also prints the latency from each request's scheduled time.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/hub_bench_webhooks_cpu"
HOST = "127.0.0.1:8000"


async def _post(application: Any, path: str, body: bytes, headers: dict[str, str]) -> None:
    """One request through the ASGI app, as uvicorn would hand it over."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", HOST.encode()), (b"content-length", str(len(body)).encode()),
                         *((k.lower().encode(), v.encode()) for k, v in headers.items())],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}
    received = False
    answer: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # the app only asks again to notice a disconnect
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" or message.get("body"):
            answer.append(message.get("status") or message["body"][:300])

    await application(scope, receive, send)
    if not 200 <= answer[0] < 300:
        raise RuntimeError(f"POST {path} answered {answer}")


@app.command()
def main(
    requests: Annotated[int, typer.Option(min=10, help="Requests measured (of both kinds before --kind filters).")] = 1600,
    warm: Annotated[int, typer.Option(min=0, help="Requests before the clock (past the heap freeze at 1,000).")] = 1100,
    kind: Annotated[str, typer.Option(help="inbound, status or both.")] = "both",
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight.")] = 8,
    rate: Annotated[float, typer.Option(min=0, help="Measured requests sent at this fixed rate (req/s), an open loop, "
                                        "instead of --concurrency in flight: what a request costs when it arrives "
                                        "alone rather than queued behind others.")] = 0,
    root: Annotated[Path | None, typer.Option(help="Tree to measure (default: this one).")] = None,
    database_url: Annotated[str, typer.Option(help="PostgreSQL database (created if missing).")] = DEFAULT_PG,
) -> None:
    """CPU per webhook request of the hub's app, in this process."""
    if root is not None:  # that tree's code, measured by this file: run again with that tree first on the path
        tree = str(root.resolve())
        options = ["--requests", str(requests), "--warm", str(warm), "--kind", kind, "--concurrency", str(concurrency),
                   "--rate", str(rate), "--database-url", database_url]
        # -c, not the file's path: the file's folder first on the path would shadow packages (bench/analytics.py).
        argv = [sys.executable, "-c", "import runpy; "
                f"runpy.run_path({__file__!r}, run_name='__main__')", *options]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")])),
               "BENCH_CPU_TREE": tree}
        raise typer.Exit(subprocess.run(argv, cwd=tree, env=env).returncode)
    from bench import webhooks

    webhooks._database(database_url)
    env = webhooks._env(database_url, 8000)
    os.environ.update({k: v for k, v in env.items() if k.startswith("HUB_")})
    run = f"{int(time.time() * 10) % 100_000:05d}"
    statuses = webhooks._deliveries(env, (requests + warm) // 2 + 10, run)
    from sqlalchemy import event as sa_event
    from sqlalchemy.engine import Engine

    from sqlalchemy import text

    import hub.inbound
    from bench import webhooks_app

    traffic = webhooks.Traffic(base=f"http://{HOST}", run=run, statuses=statuses)
    statements = [0]
    sa_event.listen(Engine, "before_cursor_execute", lambda *_args: statements.__setitem__(0, statements[0] + 1))
    # The worker threads' share: hub.inbound.receive is what each webhook runs off the event loop.
    in_threads = [0.0]
    lock = threading.Lock()
    receive = hub.inbound.receive

    def timed_receive(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return receive(*args, **kwargs)
        finally:
            with lock:
                in_threads[0] += time.thread_time() - started

    hub.inbound.receive = timed_receive  # type: ignore[assignment]

    latencies: list[float] = []

    async def phase(count: int, paced: float = 0) -> tuple[int, float]:
        batch = [traffic.next() for _ in range(count)]
        batch = [r for r in batch if kind == "both" or r[0].endswith(f"/{kind}")]
        queue = list(reversed(batch))

        async def lane() -> None:
            while queue:
                await _post(webhooks_app.app, *queue.pop())

        async def timed(request: Any, scheduled: float) -> None:
            await _post(webhooks_app.app, *request)
            latencies.append((time.perf_counter() - scheduled) * 1000)

        started = time.process_time()
        if paced:
            tasks, start = [], time.perf_counter()
            for i, request in enumerate(batch):
                await asyncio.sleep(max(0.0, start + i / paced - time.perf_counter()))
                tasks.append(asyncio.create_task(timed(request, start + i / paced)))
            await asyncio.gather(*tasks)
        else:
            await asyncio.gather(*(lane() for _ in range(concurrency)))
        return len(batch), time.process_time() - started

    def backends_cpu() -> float:
        """CPU seconds of this database's PostgreSQL backends so far (the pool's: they outlive the phase)."""
        engine = webhooks_app.app_hub_engine()
        with engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalars().all()
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    async def measure() -> None:
        await phase(warm)
        gc.collect()
        in_threads[0], statements[0] = 0.0, 0
        pg = backends_cpu()
        n, cpu = await phase(requests, rate)
        pg = backends_cpu() - pg
        how = f"at {rate:g} req/s" if rate else f"{concurrency} in flight"
        print(f"{os.environ.get('BENCH_CPU_TREE') or Path.cwd()}: {n} {kind} requests {how}; CPU per request "
              f"{cpu / n * 1000:.2f} ms (worker threads {in_threads[0] / n * 1000:.2f} ms), "
              f"{statements[0] / n:.1f} statements per request; PostgreSQL backends {pg / n * 1000:.2f} ms")
        if latencies:
            q = statistics.quantiles(latencies, n=100, method="inclusive")
            print(f"  latency from the scheduled time: p50 {statistics.median(latencies):.1f} ms, p95 {q[94]:.1f} ms, "
                  f"p99 {q[98]:.1f} ms, max {max(latencies):.1f} ms")

    asyncio.run(measure())


if __name__ == "__main__":
    app()
