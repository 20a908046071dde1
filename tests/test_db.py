"""The PostgreSQL pool pings a connection only after it sat idle, and replaces one that died."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from hub import db as db_module
from hub.db import make_engine
from tests.conftest import make_settings


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(backend, tmp_path, monkeypatch):
    kind, url = backend
    if kind != "postgres":
        pytest.skip("SQLite has no server to lose the connection")
    engine = make_engine(make_settings(url, tmp_path), pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with engine.connect() as conn:  # a busy pool reuses it without a ping
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
    killer = make_engine(make_settings(url, tmp_path))
    with killer.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
    killer.dispose()
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)  # as if it had sat idle for long
    with engine.connect() as conn:
        second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert second != first
    engine.dispose()


def test_a_batch_insert_keeps_every_type_fills_defaults_and_skips_conflicts(hub):
    """insert_ignore_many: one JSON parameter on PostgreSQL, multi-row VALUES on SQLite; the same rows."""
    from datetime import datetime, timedelta, timezone

    from hub.db import insert_ignore_many
    from hub.models import Delivery, DeliveryStatus, Purpose

    moscow = timezone(timedelta(hours=3))
    when = datetime(2026, 3, 29, 2, 30, 15, 123456, tzinfo=moscow)

    def row(key: str, **extra: object) -> dict[str, object]:
        return dict(channel="email", address=f"{key}@example.com", idempotency_key=key,
                    content={"subject": "Привет \"мир\" \\ \u2028", "html": "<p>a&b</p>", "n": [1, 2.5, None]},
                    send_after=when, rules=None, created_at=when, updated_at=when, **extra)

    with hub.db.transaction() as s:
        first = insert_ignore_many(s, Delivery, [row("a"), row("b"), row("a")], ["idempotency_key"],
                                   ["id", "idempotency_key"])
    assert sorted(r.idempotency_key for r in first) == ["a", "b"]  # a key twice in one batch: once
    with hub.db.transaction() as s:
        again = insert_ignore_many(s, Delivery, [row("b"), row("c")], ["idempotency_key"], ["idempotency_key"])
        assert [r.idempotency_key for r in again] == ["c"]
        stored = s.scalars(select(Delivery).where(Delivery.idempotency_key == "a")).one()
        assert stored.content == row("a")["content"]
        assert stored.send_after == when and stored.send_after.tzinfo is not None
        assert stored.rules is None
        # Columns left out take the model's scalar defaults, as a single insert would.
        assert (stored.purpose, stored.status, stored.attempts) == (Purpose.TRANSACTIONAL, DeliveryStatus.QUEUED, 0)
    with hub.db.transaction() as s, pytest.raises(ValueError):
        insert_ignore_many(s, Delivery, [row("d"), {**row("e"), "last_error": "x"}], ["idempotency_key"], ["id"])
