"""The one read path: a contact's timeline in keyset pages, and the caller lookup behind the screen pop."""

from __future__ import annotations

import base64
import json
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (BigInteger, ColumnElement, Connection, Integer, Row, Select, bindparam, func, or_, select, true,
                        tuple_)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from hub.db import among, contains_folded, is_postgres
from hub.identities import InvalidIdentity, normalize_phone
from hub.ingest import follow_merges
from hub.models import Contact, Identity, IdentityKind, TimelineEvent, UTCDateTime

T = TypeVar("T")


class InvalidCursor(ValueError):
    pass


def encode_cursor(*parts: object) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, datetime) else p for p in parts], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[object]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list):
            raise ValueError
        return parts
    except (ValueError, TypeError):
        raise InvalidCursor("the cursor is not one this API issued; start again without it") from None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


@dataclass(frozen=True)
class TimelineFilter:
    channels: frozenset[str] = field(default_factory=frozenset)
    directions: frozenset[str] = field(default_factory=frozenset)
    kinds: frozenset[str] = field(default_factory=frozenset)
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


# A page's items are rows of timeline_event (Core rows, or on PostgreSQL named tuples for the prebuilt
# reads, `_Direct`: each column an attribute, as on the ORM object, read-only), not ORM objects: loading 50 of those into the session cost 0.15 ms more, 16%
# of a page's CPU (docs/benchmarks.md, "Timeline reads"); nothing that shows a page changes its events.
# The statements are built from the tables' own columns (`_EVENT.c`), not the models' attributes:
# those mark a statement as an ORM one, which Session.execute then runs through the ORM's compile
# and loading steps even for plain rows (~0.1 ms a statement on a loaded 2-core machine).
EventRow = Row[Any]
_EVENT = TimelineEvent.__table__
_E = _EVENT.c

# The unfiltered pages (the screen pop, infinite scroll) run these prebuilt statements with bound
# values: building and cache-keying a fresh statement cost ~0.1 ms a call (bench/timeline.py).
# LIMIT stays a bound parameter: should a connection ever prepare the statement, PostgreSQL's generic
# plan then still walks the index backwards instead of sorting a long timeline whole.
_PAGE = (
    select(_EVENT)
    .where(_E.contact_id == bindparam("contact_id"))
    .order_by(_E.occurred_at.desc(), _E.id.desc())
    .limit(bindparam("limit", type_=Integer()))
)
_AFTER = (tuple_(_E.occurred_at, _E.id)
          < tuple_(bindparam("at", type_=UTCDateTime()), bindparam("last_id", type_=BigInteger())))
_PAGE_AFTER = _PAGE.where(_AFTER)


class _Direct:
    """One of the prebuilt reads above, run on PostgreSQL straight on the driver's cursor of the
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


_DIRECT_PAGE, _DIRECT_PAGE_AFTER = _Direct(_PAGE), _Direct(_PAGE_AFTER)


def _merged_page(session: Session, contact_ids: Sequence[int], conditions: Sequence[ColumnElement[bool]] = (),
                 ) -> Select[Any]:
    """One page over several contacts' timelines merged (an account's), newest first.

    On PostgreSQL each contact's page is read on its own (a LATERAL subquery walking
    ix_event_contact_time backwards, at most `limit` rows) and the pages merged: a page then reads
    at most contacts × limit rows however long the timelines are, where `contact_id = ANY(…)` ORDER
    BY … LIMIT reads and sorts every event of the account (a parallel seq scan at 100,000 events).
    Elsewhere, one statement over the contacts' events."""
    order = (_E.occurred_at.desc(), _E.id.desc())
    limit = bindparam("limit", type_=Integer())
    if not is_postgres(session):
        return (select(_EVENT).where(among(session, _E.contact_id, list(contact_ids)), *conditions)
                .order_by(*order).limit(limit))
    members = func.unnest(bindparam("member_ids", list(contact_ids), type_=ARRAY(BigInteger()))).table_valued(
        "id").render_derived("members")
    per_contact = (select(_EVENT).where(_E.contact_id == members.c.id, *conditions)
                   .order_by(*order).limit(limit).lateral("per_contact"))
    return (select(*per_contact.c).select_from(members).join(per_contact, true())
            .order_by(per_contact.c.occurred_at.desc(), per_contact.c.id.desc()).limit(limit))


def timeline_page(
    session: Session,
    *,
    contact_id: int | None = None,
    contact_ids: Sequence[int] | None = None,
    limit: int = 50,
    cursor: str | None = None,
    filters: TimelineFilter = TimelineFilter(),
) -> Page[EventRow]:
    """One page of a contact's events (or of several contacts' merged: `contact_ids`), newest first, as
    read-only rows of timeline_event; pass `next_cursor` back for the next page."""
    if (contact_id is None) == (contact_ids is None):
        raise TypeError("timeline_page takes one of contact_id or contact_ids")
    params: dict[str, object] = {"limit": limit + 1}
    if contact_ids is not None and not contact_ids:
        return Page(items=[], next_cursor=None)
    conditions: list[ColumnElement[bool]] = []
    if cursor:
        parts = decode_cursor(cursor)
        try:
            at, last_id = datetime.fromisoformat(str(parts[0])), int(parts[1])  # type: ignore[call-overload]
        except (IndexError, ValueError, TypeError):
            raise InvalidCursor("the cursor is not one this API issued; start again without it") from None
        if at.tzinfo is None:
            raise InvalidCursor("the cursor is not one this API issued; start again without it")
        conditions.append(_AFTER)
        params.update(at=at, last_id=last_id)
    if filters.channels:
        conditions.append(_E.channel.in_(sorted(filters.channels)))
    if filters.directions:
        conditions.append(_E.direction.in_(sorted(filters.directions)))
    if filters.kinds:
        conditions.append(_E.kind.in_(sorted(filters.kinds)))
    if filters.since is not None:
        conditions.append(_E.occurred_at >= filters.since)
    if filters.until is not None:
        conditions.append(_E.occurred_at < filters.until)
    if filters.text:
        conditions.append(
            or_(
                contains_folded(session, _E.subject, filters.text),
                contains_folded(session, _E.text, filters.text),
            )
        )
    if contact_ids is not None:
        stmt = _merged_page(session, contact_ids, conditions)
    else:
        # The unfiltered pages run the prebuilt statements as they are; a filter adds its conditions.
        stmt = _PAGE_AFTER if cursor else _PAGE
        extra = conditions[1:] if cursor else conditions
        if extra:
            stmt = stmt.where(*extra)
        params["contact_id"] = contact_id
    if stmt is _PAGE or stmt is _PAGE_AFTER:  # the screen pop's read, and scrolling down a timeline
        rows = (_DIRECT_PAGE if stmt is _PAGE else _DIRECT_PAGE_AFTER).all(session, params)
    else:
        rows = session.execute(stmt, params).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].occurred_at, rows[-1].id)
    return Page(items=rows, next_cursor=next_cursor)


# The contact behind a number in the same round trip as the identity (a screen pop is latency-bound),
# as a row of `contact` built from the tables' columns, like a page's events (see EventRow).
_CONTACT = Contact.__table__
_IDENTITY = Identity.__table__
_CALLER = (
    select(_CONTACT)
    .join(_IDENTITY, _IDENTITY.c.contact_id == _CONTACT.c.id)
    .where(_IDENTITY.c.kind == IdentityKind.PHONE, _IDENTITY.c.value == bindparam("value"))
)
_CONTACT_BY_ID = select(_CONTACT).where(_CONTACT.c.id == bindparam("id"))
_DIRECT_CALLER = _Direct(_CALLER)


def lookup_caller(session: Session, *, phone: str, region: str) -> Row[Any] | None:
    """The contact behind a calling number, written in any notation, as a read-only row of `contact`
    (each column an attribute, as on the ORM object; a merged contact's survivor, as `survivor`
    gives); None for an unknown caller. Nothing is loaded into the session: the screen pop reads
    the id, and an ORM object cost ~0.2 ms of a pop's ~1 ms of CPU (docs/benchmarks.md)."""
    try:
        value = normalize_phone(phone, region)
    except InvalidIdentity:
        return None
    contact = _DIRECT_CALLER.first(session, {"value": value})
    if contact is None:
        return None
    return follow_merges(contact, lambda contact_id: session.execute(_CONTACT_BY_ID, {"id": contact_id}).first())
