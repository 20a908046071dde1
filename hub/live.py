"""Live updates to agents' screens: in-process fan-out, across processes through PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

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

    def publish_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """`publish` for each (topic, message), in order (a transaction's messages together)."""
        for topic, message in items:
            self.publish(topic, message)

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
        self._notify([payload])

    def publish_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """The messages packed into as few NOTIFY payloads as fit ({"batch": [...]}, each under
        MAX_PAYLOAD), all sent by one statement: a campaign batch's 500 timeline rows cost one
        round trip and one transaction, not 500 (and each listener wakes once per payload)."""
        payloads: list[str] = []
        chunk: list[str] = []
        size = 0
        for topic, message in items:
            one = json.dumps({"topic": topic, **message}, default=str)
            length = len(one.encode())
            if length > MAX_PAYLOAD:
                raise ValueError("live message too large for NOTIFY; send ids, not content")
            if chunk and size + length + 1 > MAX_PAYLOAD - len('{"batch":[]}'):
                payloads.append(_packed(chunk))
                chunk, size = [], 0
            chunk.append(one)
            size += length + 1
        if chunk:
            payloads.append(_packed(chunk))
        if payloads:
            self._notify(payloads)

    def _notify(self, payloads: list[str]) -> None:
        import psycopg

        with self._send_lock:
            for attempt in (1, 2):
                try:
                    if self._send_conn is None or self._send_conn.closed:
                        self._send_conn = psycopg.connect(self._conninfo, autocommit=True)
                    if len(payloads) == 1:
                        self._send_conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payloads[0]))
                    else:  # in order, in one transaction
                        self._send_conn.execute("SELECT pg_notify(%s, p) FROM unnest(%s::text[]) WITH ORDINALITY "
                                                "AS t(p, n) ORDER BY n", (CHANNEL, payloads))
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
                                data = json.loads(note.payload)
                                for message in data["batch"] if "batch" in data else [data]:
                                    self._deliver(message)
                            except (ValueError, KeyError, TypeError):
                                log.warning("ignored a malformed live message")
            except psycopg.OperationalError as exc:
                log.warning("live listener lost its connection (%s); reconnecting", exc)
                self._stop.wait(1.0)


def _packed(chunk: list[str]) -> str:
    """One NOTIFY payload for already-encoded messages: a single one as itself, more as a batch."""
    return chunk[0] if len(chunk) == 1 else '{"batch":[' + ",".join(chunk) + "]}"


def publish_after_commit(session: Session, topic: str, message: dict[str, Any]) -> None:
    """Publish `message` on `topic` once the session's transaction commits (nothing on rollback),
    together with every other message the transaction publishes this way (`publish_many`)."""
    from hub.db import after_commit_batched

    hub = session.info["hub"]
    after_commit_batched(session, "hub.live", (topic, message), hub.broker.publish_many)


def make_broker(backend: str, sqlalchemy_url: str) -> MemoryBroker:
    """The broker for this deployment: PostgreSQL NOTIFY when the store is PostgreSQL."""
    if backend == "memory" or (backend == "auto" and not sqlalchemy_url.startswith("postgresql")):
        return MemoryBroker()
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return PostgresBroker(url.render_as_string(hide_password=False))
