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
"""

from __future__ import annotations

import asyncio
import gc
import os
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
    root: Annotated[Path | None, typer.Option(help="Tree to measure (default: this one).")] = None,
    database_url: Annotated[str, typer.Option(help="PostgreSQL database (created if missing).")] = DEFAULT_PG,
) -> None:
    """CPU per webhook request of the hub's app, in this process."""
    if root is not None:  # that tree's code, measured by this file: run again with that tree first on the path
        tree = str(root.resolve())
        options = ["--requests", str(requests), "--warm", str(warm), "--kind", kind, "--concurrency", str(concurrency),
                   "--database-url", database_url]
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

    async def phase(count: int) -> tuple[int, float]:
        batch = [traffic.next() for _ in range(count)]
        batch = [r for r in batch if kind == "both" or r[0].endswith(f"/{kind}")]
        queue = list(reversed(batch))

        async def lane() -> None:
            while queue:
                await _post(webhooks_app.app, *queue.pop())

        started = time.process_time()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return len(batch), time.process_time() - started

    async def measure() -> None:
        await phase(warm)
        gc.collect()
        in_threads[0], statements[0] = 0.0, 0
        n, cpu = await phase(requests)
        print(f"{os.environ.get('BENCH_CPU_TREE') or Path.cwd()}: {n} {kind} requests; CPU per request {cpu / n * 1000:.2f} ms "
              f"(worker threads {in_threads[0] / n * 1000:.2f} ms), {statements[0] / n:.1f} statements per request")

    asyncio.run(measure())


if __name__ == "__main__":
    app()
