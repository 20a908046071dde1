"""The one read path: a contact's timeline in keyset pages, and the caller lookup behind the screen pop."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Integer, Row, Select, bindparam, func, or_, select, true, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from hub.db import among, contains_folded, is_postgres
from hub.driver_reads import DriverRead
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
# reads, `hub.driver_reads.DriverRead`: each column an attribute, as on the ORM object, read-only), not
# ORM objects: loading 50 of those into the session cost 0.15 ms more, 16%
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


_DIRECT_PAGE, _DIRECT_PAGE_AFTER = DriverRead(_PAGE), DriverRead(_PAGE_AFTER)


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
# as a row built from the tables' columns, like a page's events (see EventRow). Only the columns a pop
# needs: the id (the card and the page are read by it), the name, and `merged_into` to follow a merge.
# The whole 13-column row (two JSON columns, two timestamps) cost ~6% of a pop's CPU.
_CONTACT = Contact.__table__
_IDENTITY = Identity.__table__
_CALLER_COLUMNS = (_CONTACT.c.id, _CONTACT.c.display_name, _CONTACT.c.merged_into)
_CALLER = (
    select(*_CALLER_COLUMNS)
    .join(_IDENTITY, _IDENTITY.c.contact_id == _CONTACT.c.id)
    .where(_IDENTITY.c.kind == IdentityKind.PHONE, _IDENTITY.c.value == bindparam("value"))
)
_CONTACT_BY_ID = select(*_CALLER_COLUMNS).where(_CONTACT.c.id == bindparam("id"))
_DIRECT_CALLER = DriverRead(_CALLER)


def lookup_caller(session: Session, *, phone: str, region: str) -> Row[Any] | None:
    """The contact behind a calling number, written in any notation, as a read-only row of its `id`,
    `display_name` and `merged_into` (a merged contact's survivor, as `survivor` gives); None for an
    unknown caller. Nothing is loaded into the session: the screen pop reads the id, and an ORM
    object cost ~0.2 ms of a pop's ~1 ms of CPU (docs/benchmarks.md)."""
    try:
        value = normalize_phone(phone, region)
    except InvalidIdentity:
        return None
    contact = _DIRECT_CALLER.first(session, {"value": value})
    if contact is None:
        return None
    return follow_merges(contact, lambda contact_id: session.execute(_CONTACT_BY_ID, {"id": contact_id}).first())
