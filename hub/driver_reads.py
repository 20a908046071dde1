"""Hot reads run on PostgreSQL straight on the driver's cursor, outside SQLAlchemy's execution.

Used where a read is on every request of a path measured against a hand-written baseline (the screen
pop: hub.timeline; the survey page: campaigns.surveys.answers, whose answer's writes are SELECTs of
data-modifying CTEs for this). Everything else goes through Session.execute as usual.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.orm import Session


class DriverRead:
    """A prebuilt Core SELECT, run on PostgreSQL straight on the driver's cursor of the
    session's (or connection's) own DBAPI connection, in whatever transaction it is in.

    SQLAlchemy's execution of a cached Core statement (the execution context, the cursor result and
    its metadata, psycopg building `cursor.description`) cost ~0.2 ms a statement, ~40% of a screen
    pop's CPU (docs/benchmarks.md, "Timeline reads", issue 24 session 13). Here the statement is
    compiled once per dialect; each run applies the same bind and result processors SQLAlchemy would
    (the types' own `bind_processor` / `result_processor`, so a timestamp still comes back through
    `UTCDateTime`) and fires the engine's `before/after_cursor_execute` listeners; rows are named
    tuples with the statement's column names as attributes, like `Row`. A driver error goes through
    SQLAlchemy's own handling (wrapped, a dead connection invalidated). Other stores run the
    statement through SQLAlchemy as before."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[Any, tuple[str, dict[str, Any], list[tuple[str, Callable[[Any], Any]]]]] = {}
        self._results: dict[Any, list[tuple[int, Callable[[Any], Any]]]] = {}
        self.row = namedtuple("row", [c.key for c in statement.selected_columns])  # type: ignore[misc]

    def _compile(self, dialect: Any) -> tuple[str, dict[str, Any], list[tuple[str, Callable[[Any], Any]]]]:
        held = self._compiled.get(dialect)
        if held is None:
            compiled = self.statement.compile(dialect=dialect)
            defaults = {name: bind.effective_value for bind, name in compiled.bind_names.items()
                        if not bind.required and bind.effective_value is not None}
            binds = [(name, processor) for bind, name in compiled.bind_names.items()
                     if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None]
            held = self._compiled.setdefault(dialect, (compiled.string, defaults, binds))
        return held

    def _processors(self, dialect: Any, cursor: Any) -> list[tuple[int, Callable[[Any], Any]]]:
        held = self._results.get(dialect)
        if held is None:  # psycopg builds `description` anew on each access: read once per dialect
            description = cursor.description
            processors = [(index, processor) for index, (column, described) in
                          enumerate(zip(self.statement.selected_columns, description))
                          if (processor := column.type.dialect_impl(dialect).result_processor(
                              dialect, described.type_code)) is not None]
            held = self._results.setdefault(dialect, processors)
        return held

    def all(self, db: Session | Connection, params: dict[str, Any]) -> Sequence[Any]:
        connection = db.connection() if isinstance(db, Session) else db
        dialect = connection.dialect
        if dialect.name != "postgresql":
            return db.execute(self.statement, params).all()
        sql, defaults, binds = self._compile(dialect)
        values = {**defaults, **params}
        for name, processor in binds:
            if values.get(name) is not None:
                values[name] = processor(values[name])
        dbapi = connection.connection.driver_connection
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        before, after = connection.dispatch.before_cursor_execute, connection.dispatch.after_cursor_execute
        try:
            if before:
                before(connection, cursor, sql, values, None, False)
            cursor.execute(sql, values)
            if after:
                after(connection, cursor, sql, values, None, False)
            raw = cursor.fetchall()
            processors = self._processors(dialect, cursor) if raw else ()
        except dialect.loaded_dbapi.Error as error:
            cursor.close()
            # SQLAlchemy's own handler (2.0): raises it wrapped, invalidates a connection that is gone.
            connection._handle_dbapi_exception(error, sql, values, cursor, None)
            raise
        cursor.close()
        if not processors:
            return [self.row._make(r) for r in raw]
        rows = []
        for r in raw:
            values_ = list(r)
            for index, processor in processors:
                values_[index] = processor(values_[index])
            rows.append(self.row._make(values_))
        return rows

    def first(self, db: Session | Connection, params: dict[str, Any]) -> Any | None:
        rows = self.all(db, params)
        return rows[0] if rows else None
