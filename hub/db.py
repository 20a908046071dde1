"""Engines and sessions for SQLite (WAL, embedded) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar
from uuid import UUID

import orjson
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from hub.settings import HUB_MIGRATIONS, Settings

MIGRATIONS_DIR = HUB_MIGRATIONS


T = TypeVar("T")

def make_engine(settings: Settings, **kwargs: Any) -> Engine:
    """Create the engine for the configured store, with SQLite tuned for one writer at a time."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_deserializer=loads_json,
            pool_size=kwargs.pop("pool_size", 10),
            **kwargs,
        )
        _tune_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=kwargs.pop("pool_size", 10),
        max_overflow=kwargs.pop("max_overflow", 20),
        **kwargs,
    )
    _ping_when_idle(engine)
    _read_json_with_orjson()
    return engine


def loads_json(data: bytes | bytearray | memoryview | str) -> Any:
    """JSON text as Python values, as json.loads reads it: orjson (~3.5× faster on an outbox row's
    content, which every claim reads back), the standard decoder where orjson reads differently.

    orjson differs only by refusing (lone surrogates, exponents past a double) or by giving a float
    (an integer past 64 bits, which json.loads keeps exact): a value with no float in it is
    json.loads's too. Checking the parsed value costs ~1 µs on a campaign message's content, where
    scanning its ~5 KB of text for long digit runs cost ~75 µs."""
    raw = bytes(data) if isinstance(data, memoryview) else data
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
    return json.loads(raw) if _has_float(value) else value


def _has_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values() if isinstance(v, (float, dict, list)))
    if isinstance(value, list):
        return any(_has_float(v) for v in value if isinstance(v, (float, dict, list)))
    return isinstance(value, float)


def _read_json_with_orjson() -> None:
    """psycopg reads json and jsonb columns with loads_json (process-wide: psycopg's default map)."""
    from psycopg.types.json import set_json_loads

    set_json_loads(loads_json)


# A connection idle this long is pinged before use. SQLAlchemy's pool_pre_ping pings on every
# checkout, a round trip that cost the screen pop ~8% (bench/timeline.py); a busy pool's connections
# are never idle that long, and after a database restart the idle ones are replaced before use.
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _stamp(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["hub_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        if time.monotonic() - record.info.get("hub_idle_since", 0.0) < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception:  # noqa: BLE001 - any failure means the connection is gone
            alive = False
        if not alive:
            raise exc.DisconnectionError("idle connection is gone; the pool replaces it")


def _transactions_again_at_checkin(engine: Engine) -> None:
    """A connection `without_transaction` switched to autocommit goes back into the pool in transaction
    mode, so the next session that takes it has its transaction. Checkin comes after the pool's
    rollback-on-return, so nothing is open when the switch is made."""
    @event.listens_for(engine, "checkin")
    def _transactions_again(dbapi_conn, record):  # type: ignore[no-untyped-def]
        if dbapi_conn is None or not dbapi_conn.autocommit:
            return
        try:
            dbapi_conn.autocommit = False
        except Exception:  # noqa: BLE001 - a broken connection: replaced, never lent out in autocommit
            record.invalidate()


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        # Unicode case folding for search (SQLite's own lower() folds ASCII only).
        dbapi_conn.create_function("hub_fold", 1, lambda v: v.casefold() if isinstance(v, str) else v, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # Writers take the write lock up front: a deferred transaction that later upgrades
        # to a writer fails at once with "database is locked" instead of waiting its turn.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def insert_ignore(session: Session, table: Any, values: dict[str, Any], conflict: list[str]) -> Any | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None when the row already existed."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = getattr(table, "__table__", table)
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict).returning(table.c.id)
    return session.execute(stmt).scalar_one_or_none()


def insert_ignore_many(session: Session, table: Any, rows: list[dict[str, Any]], conflict: list[str],
                       returning: list[str] | type) -> list[Any]:
    """Multi-row INSERT … ON CONFLICT DO NOTHING RETURNING: the rows really inserted.

    `returning` names the columns to return, or is the mapped class itself: then its objects come
    back, in the session as if read from it, so a caller that needs the new rows (to fire triggers
    on them) does not read them again. Rows come back in no promised order (and skipped ones not at
    all), so return a column that identifies each row, such as its unique key. Every row has the
    same keys.
    """
    if not rows:
        return []
    entity = returning if isinstance(returning, type) else None
    table = getattr(table, "__table__", table)
    columns = tuple(c.name for c in table.c) if entity is not None else tuple(returning)  # type: ignore[arg-type]
    if any(row.keys() != rows[0].keys() for row in rows):
        raise ValueError("every row of a batch insert needs the same keys")
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        payload = _recordset_payload(table, rows, dialect)
        if payload is not None:
            statement = _recordset_insert(table, tuple(rows[0]), tuple(conflict), columns)
            if entity is not None:
                return list(session.scalars(_as_objects(entity, statement), {"rows": payload}).all())
            return list(session.execute(statement, {"rows": payload}).all())
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=conflict).returning(*(table.c[n] for n in columns))
    # Executed with a list, SQLAlchemy batches the rows into multi-row statements ("insertmanyvalues")
    # from one cached compilation, and still returns the inserted rows.
    if entity is not None:
        from sqlalchemy import select

        return list(session.scalars(select(entity).from_statement(stmt), rows).all())
    return list(session.execute(stmt, rows).all())


@lru_cache(maxsize=64)
def _as_objects(entity: type, statement: Any) -> Any:
    """A cached statement (RETURNING every column of `entity`'s table) read as `entity` objects."""
    from sqlalchemy import select

    return select(entity).from_statement(statement)


# On PostgreSQL a batch goes as ONE parameter, a JSON array of the rows, that the server expands
# into the table's own row type (jsonb_populate_recordset). Multi-row VALUES with a placeholder per
# value cost more in psycopg's query parsing (thousands of placeholders, too long to cache) than the
# whole rest of a campaign batch's database work (bench/campaign.py, docs/benchmarks.md).

@lru_cache(maxsize=64)
def _recordset_insert(table: Any, columns: tuple[str, ...], conflict: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    from sqlalchemy import column, select, text
    from sqlalchemy.dialects.postgresql import insert

    source = select(*(column(name) for name in columns)).select_from(
        text(f"jsonb_populate_recordset(NULL::{table.name}, CAST(:rows AS jsonb))"))
    return (insert(table).from_select(list(columns), source)
            .on_conflict_do_nothing(index_elements=list(conflict))
            .returning(*(table.c[name] for name in returning)))


def _recordset_payload(table: Any, rows: list[dict[str, Any]], dialect: Any) -> str | None:
    """The rows as one JSON text with the columns' own bind processing applied; None when a row
    needs what JSON cannot carry (bytes, a computed default), and the caller takes the usual path."""
    columns = tuple(rows[0])
    for name in columns:
        if name not in table.c:
            raise KeyError(f"{table.name} has no column {name!r}")
    missing = [c for c in table.c if c.name not in columns and c.default is not None]
    if any(not c.default.is_scalar for c in missing):
        return None
    defaults = {c.name: c.default.arg for c in missing}
    decorated = [(c.name, c.type) for c in (table.c[n] for n in columns) if isinstance(c.type, TypeDecorator)
                 and type(c.type).process_bind_param is not TypeDecorator.process_bind_param]
    out = []
    for row in rows:
        values = {name: row[name] for name in columns}
        values.update(defaults)
        for name, type_ in decorated:
            values[name] = type_.process_bind_param(values[name], dialect)
        out.append(values)
    try:
        return dumps_compact(out)
    except TypeError:
        return None


def dumps_compact(value: Any) -> str:
    """JSON text for a batch parameter (orjson: ~2.4× the standard encoder on a campaign batch, and
    UTF-8 as it is instead of \\u escapes); TypeError for what JSON cannot carry. Integers past 64
    bits, which orjson refuses, go through the standard encoder."""
    try:
        return orjson.dumps(value, default=_json_value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        if isinstance(exc.__cause__, TypeError) or "not JSON serializable" in str(exc):
            raise TypeError(str(exc)) from None
        return json.dumps(value, default=_json_value, separators=(",", ":"), ensure_ascii=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date, time_of_day)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def among(session: Session, column: Any, values: Iterable[Any]) -> Any:
    """`column IN values` for a long list: on PostgreSQL one array parameter (`= ANY(…)`), so the
    statement's text stays the same whatever the length and psycopg parses it once; elsewhere IN."""
    values = list(values)
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    from sqlalchemy import any_, bindparam
    from sqlalchemy.dialects.postgresql import ARRAY

    return column == any_(bindparam(None, values, type_=ARRAY(column.type)))


def contains_folded(session: Session, column: Any, needle: str) -> Any:
    """A case-insensitive substring test that also folds Cyrillic and other scripts on SQLite."""
    from sqlalchemy import func

    pattern = "%" + needle.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if session.get_bind().dialect.name == "postgresql":
        return column.ilike(pattern, escape="\\")
    return func.hub_fold(column).like(pattern, escape="\\")


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


def once_per_transaction(session: Session, key: str, load: Callable[[], T]) -> T:
    """`load()`, called once per transaction of `session` and kept in `session.info[key]` against
    that transaction (a later transaction loads again: another process may have changed what it
    read). Forget it sooner with `session.info.pop(key, None)`."""
    transaction = session.get_transaction()
    held = session.info.get(key)
    if held is not None and transaction is not None and held[0] is transaction:
        return held[1]
    value = load()
    session.info[key] = (transaction, value)
    return value


def without_transaction(session: Session) -> bool:
    """On PostgreSQL, run the session's next statements outside a transaction (each one commits on
    its own): a read then costs one round trip, not three (BEGIN, the query, ROLLBACK). Call it
    before the session's first statement. For reads that need no snapshot across statements (at
    READ COMMITTED each statement takes its own anyway) and writes that are one statement; on
    SQLite it does nothing and says False."""
    if not is_postgres(session):
        return False
    # psycopg's own switch, turned back off when the pool takes the connection back
    # (_transactions_again_at_checkin). SQLAlchemy's isolation_level option did the same through its
    # connection characteristics, setting and resetting two of them: 0.03-0.08 ms of a screen pop's
    # ~0.8 ms of CPU on a loaded 2-core machine (docs/benchmarks.md, "Timeline reads").
    session.connection().connection.driver_connection.autocommit = True  # type: ignore[union-attr]
    return True


def transaction_again(session: Session) -> None:
    """After `without_transaction` (which said True) and before the session's writes: the statements
    from here on are one transaction again, on the same connection (nothing is open after statements
    that each committed on their own, so psycopg lets the switch go back). A session.commit() would do
    the same by handing the connection back to the pool and checking it out again."""
    session.connection().connection.driver_connection.autocommit = False  # type: ignore[union-attr]


class Database:
    """The engine plus its session factories; one per process."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        if self.engine.dialect.name == "postgresql":
            _transactions_again_at_checkin(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        from hub.memo import make_memo

        # Small tables' reads kept across transactions, re-read after a change anywhere (hub.memo).
        self.memo = make_memo(settings.sqlalchemy_url)

    def session(self, *, read_only: bool = False) -> Session:
        """A new session; read-only ones on SQLite don't take the write lock."""
        session = self._factory()
        session.info["hub_memo"] = self.memo
        if read_only and self.engine.dialect.name == "sqlite":
            session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        return session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back on error."""
        with self.session() as session:
            with session.begin():
                yield session

    def dispose(self) -> None:
        self.memo.stop()
        self.engine.dispose()


# Side effects after commit: live pushes, wake-ups. Registered during a unit of work and run
# only when it commits, so a rolled-back row never notifies anyone (Polar's habit).

def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run callback once the session's current transaction commits; drop it on rollback."""
    session.info.setdefault("hub_after_commit", []).append(callback)


def after_commit_batched(session: Session, key: str, item: Any, flush: Callable[[list[Any]], None]) -> None:
    """Gather `item` with the others this transaction adds under `key`, and call `flush(items)` once,
    in order, when it commits (a batch's live messages: one publish, not one per row)."""
    batches: dict[str, list[Any]] = session.info.setdefault("hub_after_commit_batches", {})
    items = batches.get(key)
    if items is None:  # the transaction's first: its callback holds the list the others join
        gathered: list[Any] = []
        items = batches[key] = gathered
        after_commit(session, lambda: flush(gathered))
    items.append(item)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    session.info.pop("hub_after_commit_batches", None)
    callbacks = session.info.pop("hub_after_commit", [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a failed push must not undo a committed write; it is logged
            import logging

            logging.getLogger("hub.db").exception("after-commit callback failed")


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop("hub_after_commit", None)
        session.info.pop("hub_after_commit_batches", None)
