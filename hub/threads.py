"""Database work off the event loop, a few calls at a time per process.

The busiest public routes (provider webhooks, the survey page) hand their database work to worker
threads through one limiter per event loop, shared by all of them. Under a burst, more threads than
the engine's pool (10) each open an overflow connection and close it again after one request (a
PostgreSQL backend started for one transaction), and more threads than cores only take the GIL from
each other; a request waiting its turn on the event loop costs nothing. bench/webhooks.py counts the
sessions opened (docs/benchmarks.md, "Webhooks").
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio.to_thread
from anyio import CapacityLimiter

DB_CALLS = 4
_LIMITERS: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()
T = TypeVar("T")


async def run_db_call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `func` (database work) in a worker thread, at most DB_CALLS at once in this event loop."""
    loop = asyncio.get_running_loop()
    limiter = _LIMITERS.get(loop)
    if limiter is None:
        limiter = _LIMITERS[loop] = CapacityLimiter(DB_CALLS)
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=limiter)
