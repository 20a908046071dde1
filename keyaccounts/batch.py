"""How the recompute jobs (figures, temperature) use the process and the store.

**The collector.** The process's long-lived heap is left out of collections while a job runs. A
worker holds the whole application in memory (every module, mapper, template and catalog: hundreds
of thousands of objects). A recompute allocates rows and figures by the thousand, which starts full
(generation 2) collections, and each of those walks that whole heap again although none of it is
garbage: a third of the temperature job's time at 400 key accounts. `gc.freeze()` moves what
exists when the job starts into the permanent generation, so collections during the job walk only
the job's own objects (its cycles are still collected); `gc.unfreeze()` hands the heap back after the
last job running in the process ends. Both are constant-time list moves.

**Fetching.** Iterating a result calls the driver's `fetchone` per row: ~100,000 calls for a
temperature chunk at full bench scale, as long as the chunk's timeline pass itself. `rows_of` reads
them `FETCH` at a time instead, never the whole result at once.

**Sort memory.** On PostgreSQL a job's transaction may sort and hash in `JOB_WORK_MEM` (the server's
default, 4 MB, sends the orders' window sort of a year of orders to disk: a third of the profit
job's SQL time at 200,000 events). `SET LOCAL` ends with the transaction.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from hub.db import is_postgres

JOB_WORK_MEM = "64MB"
FETCH = 5000  # rows read from the driver at a time

_lock = threading.Lock()
_running = 0
_frozen_before = False


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Run the block with the heap that existed before it out of the collector's walks.

    A served process froze its start-up heap already (hub.runtime.freeze_startup_objects): that freeze
    is kept when the jobs end (gc.unfreeze would undo it), so garbage is collected before freezing
    there, lest some be pinned in the permanent generation for good. Elsewhere (a CLI, the bench)
    the jobs' end unfreezes everything and any garbage frozen with it is collected later: no full
    collection first, which walked the whole heap (~0.2 s of CPU per job in the bench)."""
    global _running, _frozen_before
    with _lock:
        if _running == 0:
            _frozen_before = gc.get_freeze_count() > 0
            if _frozen_before:
                gc.collect()
            gc.freeze()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and not _frozen_before:
                gc.unfreeze()


def with_sort_memory(session: Any) -> None:
    """Give this transaction JOB_WORK_MEM to sort and hash in (PostgreSQL; nothing elsewhere)."""
    if is_postgres(session):
        session.execute(text(f"SET LOCAL work_mem = '{JOB_WORK_MEM}'"))


def rows_of(result: Any) -> Iterable[Any]:
    """The rows of a query's result, read from the driver FETCH at a time (not one call per row)."""
    return (row for batch in result.partitions(FETCH) for row in batch)
