"""The PostgreSQL pool pings a connection only after it sat idle, and replaces one that died."""

from __future__ import annotations

import pytest
from sqlalchemy import text

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
