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


def test_a_batch_parameter_is_compact_utf8_and_still_takes_what_only_the_standard_encoder_can(hub):
    """The batch's one JSON parameter (orjson): text as it is, not \\u escapes; an integer past 64
    bits (orjson refuses it) still goes in; bytes are refused so the caller takes the VALUES path."""
    from datetime import datetime, timezone

    from hub.db import _recordset_payload, dumps_compact, insert_ignore_many
    from hub.models import Delivery

    when = datetime(2026, 12, 7, 6, 30, tzinfo=timezone.utc)
    rows = [dict(channel="email", address="big@example.com", idempotency_key="big", send_after=when,
                 content={"subject": "Привет", "n": 2 ** 70, 1: "int key"}, created_at=when, updated_at=when)]
    payload = _recordset_payload(Delivery.__table__, rows, hub.db.engine.dialect)
    assert payload is not None and "Привет" in payload and "1180591620717411303424" in payload
    assert '"1":"int key"' in payload
    with pytest.raises(TypeError):
        dumps_compact([{"raw": b"bytes"}])
    with hub.db.transaction() as s:
        [inserted] = insert_ignore_many(s, Delivery, rows, ["idempotency_key"], ["id"])
        stored = s.get(Delivery, inserted.id)
        assert stored is not None and stored.content == {"subject": "Привет", "n": 2 ** 70, "1": "int key"}


def test_a_batch_insert_can_return_the_new_rows_as_objects_of_the_session(hub):
    """Given the mapped class as `returning`, the inserted rows come back as its objects, already in
    the session's identity map with every column (what triggers need), and no SELECT follows."""
    from datetime import datetime, timezone

    from sqlalchemy import event

    from hub.db import insert_ignore_many
    from hub.models import Delivery

    when = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)
    rows = [dict(channel="sms", address=f"+7916000000{i}", idempotency_key=f"obj-{i}", content={"text": f"№{i}"},
                 send_after=when, rules=None, created_at=when, updated_at=when) for i in range(3)]
    with hub.db.transaction() as s:
        insert_ignore_many(s, Delivery, rows[:1], ["idempotency_key"], ["id"])
    statements: list[str] = []
    with hub.db.transaction() as s:
        listen = lambda conn, cursor, sql, *args: statements.append(sql)  # noqa: E731
        event.listen(s.get_bind(), "before_cursor_execute", listen)
        try:
            new = insert_ignore_many(s, Delivery, rows, ["idempotency_key"], Delivery)
            assert sorted(d.idempotency_key for d in new) == ["obj-1", "obj-2"]  # obj-0 was there already
            assert all(isinstance(d, Delivery) and d in s and not s.is_modified(d) for d in new)
            assert {d.content["text"] for d in new} == {"№1", "№2"}
            assert all(d.id is not None and d.send_after == when and d.status == "queued" for d in new)
            assert s.get(Delivery, new[0].id) is new[0]
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", listen)
    writes = [sql for sql in statements if not sql.upper().startswith("BEGIN")]  # SQLite: BEGIN IMMEDIATE
    assert len(writes) == 1 and writes[0].lstrip().upper().startswith("INSERT")


def test_postgresql_reads_json_columns_with_the_fast_decoder_and_the_same_values(hub):
    """Every claim reads an outbox row's content back: psycopg decodes json/jsonb with loads_json
    (orjson), which gives what json.loads gives, long integers exact."""
    import json

    from hub.db import loads_json

    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("psycopg's decoder")
    texts = ['{"a": 123456789012345678901234567890, "b": [1, 2.5, null, true], "c": "привет \\u2028"}',
             '{"n": -0.0, "e": 1e-7, "s": "\\ud83d\\ude00"}']
    with hub.db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        loader = raw.adapters.get_loader(raw.adapters.types["jsonb"].oid, 0)
        assert getattr(loader, "_loads", None) is loads_json
        for text_ in texts:
            assert conn.execute(text("SELECT CAST(:v AS jsonb)"), {"v": text_}).scalar_one() == json.loads(text_)


def test_loads_json_gives_what_json_loads_gives_for_whatever_orjson_reads_differently(hub):
    """orjson first; json.loads where orjson refuses (an exponent past a double, a lone surrogate) or
    gives a float (an integer past 64 bits): the same values, of the same types, from str, bytes
    and memoryview alike. SQLite's engine reads JSON columns with it too."""
    import json

    from hub.db import loads_json

    texts = ['{"a": 1e400}', '{"a": "\\ud83d"}', '[123456789012345678901234567890, -9223372036854775809]',
             '{"x": {"y": [1, 2.5, {"z": 18446744073709551616}]}}', '{"n": -0.0, "s": "привет \\u2028"}',
             '{"plain": [1, "two", null, true, {"three": 3}]}', '18446744073709551615', '"text"']
    for text_ in texts:
        expected = json.loads(text_)
        for given in (text_, text_.encode(), memoryview(text_.encode())):
            got = loads_json(given)
            assert repr(got) == repr(expected), (text_, type(given))
    with pytest.raises(json.JSONDecodeError):
        loads_json("{not json")
    if hub.db.engine.dialect.name == "sqlite":
        assert hub.db.engine.dialect._json_deserializer is loads_json


def _in_transaction(dbapi_connection) -> bool:  # type: ignore[no-untyped-def]
    from psycopg.pq import TransactionStatus

    return dbapi_connection.info.transaction_status != TransactionStatus.IDLE


def test_without_transaction_reads_outside_one_on_postgresql_and_the_pool_gets_a_normal_connection(hub):
    """Each read commits on its own (no BEGIN, no ROLLBACK: half the round trips of a one-read session);
    the connection goes back to the pool in the default mode, so the next session has a transaction."""
    from hub.db import without_transaction

    with hub.session(read_only=True) as session:
        outside = without_transaction(session)
        assert session.execute(text("SELECT 1")).scalar_one() == 1
        raw = session.connection().connection.dbapi_connection
        if hub.db.engine.dialect.name != "postgresql":
            assert outside is False
            return
        assert outside is True and not _in_transaction(raw)
    with hub.session(read_only=True) as session:
        session.execute(text("SELECT 1"))
        assert _in_transaction(session.connection().connection.dbapi_connection)


def test_without_transaction_switches_the_driver_only_and_a_commit_gives_the_next_writes_a_transaction(
        hub, monkeypatch):
    """psycopg's autocommit is switched directly, not through SQLAlchemy's isolation-level
    characteristic (which set and reset two of them per session: 0.03-0.08 ms of a screen pop); the
    survey's save ends its read with a commit, and the writes after it are one transaction."""
    from hub.db import without_transaction

    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("without_transaction does nothing on SQLite")
    dialect = hub.db.engine.dialect
    switched: list[str] = []
    original = dialect.set_isolation_level
    monkeypatch.setattr(dialect, "set_isolation_level",
                        lambda conn, level: (switched.append(level), original(conn, level))[1])
    with hub.session() as session:
        assert without_transaction(session) is True
        session.execute(text("SELECT 1"))
        assert not _in_transaction(session.connection().connection.dbapi_connection)
        session.commit()
        session.execute(text("SELECT 1"))
        assert _in_transaction(session.connection().connection.dbapi_connection)
    assert switched == []  # the old way set AUTOCOMMIT and reset the default: two calls
    with hub.session(read_only=True) as session:  # and the pool lends it out in transaction mode
        session.execute(text("SELECT 1"))
        assert _in_transaction(session.connection().connection.dbapi_connection)
