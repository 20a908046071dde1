"""A burst of webhooks waits on the event loop: at most hub.threads.DB_CALLS of them hold a thread
(and a pooled connection) at once, so none opens a PostgreSQL session beyond the engine's pool."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request

from hub import threads
from hub.inbound import Webhook, mount


@dataclass
class Receiver:
    name: str
    hub: Any


def test_a_burst_of_webhooks_runs_at_most_db_calls_transactions_at_once(hub):
    lock, busy, most = threading.Lock(), [0], [0]

    def parse(payload: Any) -> list[Any]:  # runs on the worker thread, before the transaction
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.05)
        with lock:
            busy[0] -= 1
        return []

    def verify(request: Request, body: bytes) -> Any:
        return body

    router = APIRouter()
    mount(router, Receiver("burst", hub), Webhook(path="/in", summary="test", verify=verify, parse=parse))
    app = FastAPI()
    app.include_router(router)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            answers = await asyncio.gather(*(client.post("/in", content=b"x") for _ in range(3 * threads.DB_CALLS)))
        return [a.status_code for a in answers]

    assert asyncio.run(burst()) == [200] * (3 * threads.DB_CALLS)
    assert most[0] == threads.DB_CALLS
