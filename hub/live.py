"""Live updates to agents' screens: in-process fan-out, across processes through PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("hub.live")

CHANNEL = "hub_live"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; messages carry ids, not content.
MAX_PAYLOAD = 7900


def contact_topic(contact_id: int) -> str:
    return f"contact:{contact_id}"


AGENTS_TOPIC = "agents"


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]
    topics: set[str] = field(default_factory=set)


class MemoryBroker:
    """Delivers messages to subscribers in this process; publish is safe from any thread."""

    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        self._deliver({"topic": topic, **message})

    def _deliver(self, message: dict[str, Any]) -> None:
        with self._lock:
            targets = [s for s in self._subscribers if message["topic"] in s.topics]
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, message)
            except RuntimeError:  # the subscriber's loop has closed
                self._remove(sub)

    def _remove(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    async def subscribe(self, topics: set[str]) -> AsyncIterator[dict[str, Any]]:
        """Yield messages for these topics until the caller stops iterating."""
        sub = _Subscriber(asyncio.get_running_loop(), asyncio.Queue(maxsize=1000), set(topics))
        with self._lock:
            self._subscribers.add(sub)
        try:
            while True:
                yield await sub.queue.get()
        finally:
            self._remove(sub)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class PostgresBroker(MemoryBroker):
    """Publishes with pg_notify so agents connected to any API process see every update."""

    def __init__(self, conninfo: str) -> None:
        super().__init__()
        self._conninfo = conninfo
        self._send_lock = threading.Lock()
        self._send_conn: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        payload = json.dumps({"topic": topic, **message}, default=str)
        if len(payload.encode()) > MAX_PAYLOAD:
            raise ValueError("live message too large for NOTIFY; send ids, not content")
        import psycopg

        with self._send_lock:
            for attempt in (1, 2):
                try:
                    if self._send_conn is None or self._send_conn.closed:
                        self._send_conn = psycopg.connect(self._conninfo, autocommit=True)
                    self._send_conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    return
                except psycopg.OperationalError:
                    self._send_conn = None
                    if attempt == 2:
                        raise

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="hub-live-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            try:
                                self._deliver(json.loads(note.payload))
                            except (ValueError, KeyError):
                                log.warning("ignored a malformed live message")
            except psycopg.OperationalError as exc:
                log.warning("live listener lost its connection (%s); reconnecting", exc)
                self._stop.wait(1.0)


def make_broker(backend: str, sqlalchemy_url: str) -> MemoryBroker:
    """The broker for this deployment: PostgreSQL NOTIFY when the store is PostgreSQL."""
    if backend == "memory" or (backend == "auto" and not sqlalchemy_url.startswith("postgresql")):
        return MemoryBroker()
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return PostgresBroker(url.render_as_string(hide_password=False))
