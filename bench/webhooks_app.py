"""The ASGI app bench/webhooks.py runs under uvicorn: the hub as built for production, plus a bare baseline.

Settings come from the environment the benchmark sets (HUB_DATABASE_URL, HUB_CHANNELS__SMS__…,
HUB_PUBLIC_BASE_URL). The one extra route, POST /bench/raw-insert, exists only here: it verifies
nothing and does one INSERT of the form body, so the ratio against it says what the hub's work on a
webhook (signature, parsing, contact lookup or creation, the event, the commit) costs over the
least a request that writes a row must do in the same process, server and database.
"""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy import Column, Integer, MetaData, Table, Text
from starlette.concurrency import run_in_threadpool

from bench import webhooks_trace
from hub.app import create_app
from hub.runtime import Hub, freeze_served_app

RAW_PATH = "/bench/raw-insert"

metadata = MetaData()
bench_raw = Table(
    "bench_raw",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("body", Text, nullable=False),
)


def build() -> object:
    """The hub's app from the environment's settings, with the raw-insert baseline route added."""
    global _engine
    hub = Hub()
    _engine = hub.db.engine
    metadata.create_all(hub.db.engine)
    application = create_app(hub, start_worker=False)

    def insert(body: str) -> None:
        with hub.db.engine.begin() as conn:
            conn.execute(bench_raw.insert().values(body=body))

    @application.post(RAW_PATH, include_in_schema=False)
    async def raw_insert(request: Request) -> Response:
        # Same shape as the webhooks: read the body on the loop, write in the thread pool.
        body = (await request.body()).decode("utf-8")
        await run_in_threadpool(insert, body)
        return Response(content='<?xml version="1.0" encoding="UTF-8"?><Response/>', media_type="application/xml")

    # As `hub serve` does (hub/asgi.py): the benchmark measures the hub as it is served.
    freeze_served_app(application)
    if webhooks_trace.enabled():
        return webhooks_trace.traced(application, hub.db.engine)
    return application


_engine = None
app = build()


def app_hub_engine() -> object:
    """The served hub's engine (bench/webhooks_cpu.py reads its PostgreSQL backends)."""
    return _engine
