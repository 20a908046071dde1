"""What small, rarely changed tables say (which outbound-webhook endpoints want which notices), kept
across transactions in this process until a change is announced: by a writer here when it
commits, and by any other process through PostgreSQL NOTIFY, heard on a connection of its own.

Without a listener (SQLite, or while its connection is down) nothing is kept across transactions:
`ProcessMemo.get` reads once per transaction, as `hub.db.once_per_transaction` does. A transaction
that changed a key reads it itself (its own uncommitted change) until it ends.

A change reaches other processes when PostgreSQL delivers the notice, a moment after the commit:
an event committed in between is matched against what was there just before, as if it had been
written a moment earlier. Whoever acts on the value later must check the row then (the webhook
dispatcher sends only to endpoints active at send time).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

log = logging.getLogger("hub.memo")

T = TypeVar("T")
CHANNEL = "hub_memo"
_CHANGED = "hub_memo_changed"  # session.info: (transaction, {keys changed in it})
_RETRY_FIRST, _RETRY_MAX = 1.0, 30.0  # seconds between the listener's reconnection attempts


class ProcessMemo:
    """Values kept per process, each read again after a change anywhere (see the module's doc)."""

    def __init__(self, conninfo: str | None) -> None:
        self._conninfo = conninfo  # None: no listener (SQLite); every transaction reads
        self._lock = threading.Lock()
        self._values: dict[str, tuple[int, Any]] = {}
        self._generation = 0  # moves on every change heard, and when the listener (re)connects or drops
        self._listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def listening(self) -> bool:
        return self._listening

    def get(self, session: Session, key: str, load: Callable[[], T]) -> T:
        """`load()`'s value for `key`, read again only after a change (or once per transaction
        when no listener runs or this transaction changed `key`)."""
        from hub.db import once_per_transaction

        if not self._listening or key in _changed_here(session):
            self._ensure_listener()
            return once_per_transaction(session, f"hub_memo:{key}", load)
        with self._lock:
            generation = self._generation
            held = self._values.get(key)
        if held is not None and held[0] == generation:
            return held[1]
        value = load()
        with self._lock:
            # Kept only if no change was heard while reading: one heard later moves the generation on.
            if self._generation == generation and self._listening:
                self._values[key] = (generation, value)
        return value

    def changed(self, session: Session, key: str) -> None:
        """Call in the transaction that changes what `key` holds: it reads its own change from now
        on, and every process reads again once it commits (this one at once, others on NOTIFY)."""
        from hub.db import after_commit, is_postgres

        transaction = session.get_transaction()
        held = session.info.get(_CHANGED)
        if held is None or held[0] is not transaction:
            held = (transaction, set())
            session.info[_CHANGED] = held
            after_commit(session, self._bump)
        session.info.pop(f"hub_memo:{key}", None)
        if key in held[1]:
            return
        held[1].add(key)
        if is_postgres(session):  # transactional: delivered to every listener when this commits
            # On the connection, not the session: this may run inside a flush (a mapper event).
            session.connection().execute(text("SELECT pg_notify(:channel, :key)"), {"channel": CHANNEL, "key": key})

    def forget(self) -> None:
        """Read everything again (after a write that bypassed `changed`, such as a test's wipe)."""
        self._bump()

    def _bump(self) -> None:
        with self._lock:
            self._generation += 1
            self._values.clear()

    # --- the listener ----------------------------------------------------------------------

    def _ensure_listener(self) -> None:
        if self._conninfo is None or self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._listen, name="hub-memo-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._listening = False
        self._bump()

    def _listen(self) -> None:
        import psycopg

        retry = _RETRY_FIRST
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Whatever changed before LISTEN took effect was not heard: nothing kept from then.
                    self._bump()
                    self._listening = True
                    if retry > _RETRY_FIRST:
                        log.warning("memo listener is back; keeping small tables' reads again")
                    retry = _RETRY_FIRST
                    while not self._stop.is_set():
                        if any(True for _note in conn.notifies(timeout=1.0)):
                            self._bump()
            except psycopg.Error as exc:
                # Said once per outage; the retries back off so a database gone for good (dropped,
                # moved) costs a connection attempt every half minute, not a warning every second.
                if retry == _RETRY_FIRST:
                    log.warning("memo listener lost its connection (%s); reading per transaction until it is back", exc)
                else:
                    log.debug("memo listener still cannot connect (%s); next try in %.3g s", exc, retry)
                self._stop.wait(retry)
                retry = min(retry * 2, _RETRY_MAX)
            finally:
                self._listening = False
                self._bump()


def _changed_here(session: Session) -> set[str]:
    held = session.info.get(_CHANGED)
    return held[1] if held is not None and held[0] is session.get_transaction() else set()


_WITHOUT = ProcessMemo(None)  # for sessions not made by hub.db.Database: read per transaction


def memo_of(session: Session) -> ProcessMemo:
    """The memo of the process's database the session was made by."""
    return session.info.get("hub_memo") or _WITHOUT


def make_memo(sqlalchemy_url: str) -> ProcessMemo:
    """A memo with a NOTIFY listener when the store is PostgreSQL, without one otherwise."""
    if not sqlalchemy_url.startswith("postgresql"):
        return ProcessMemo(None)
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return ProcessMemo(url.render_as_string(hide_password=False))
