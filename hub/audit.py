"""The audit log: every change a user or key makes to a contact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub import clock
from hub.auth import Principal
from hub.models import AuditEntry
from hub.timeline import InvalidCursor, Page, decode_cursor, encode_cursor


def record(session: Session, *, actor: Principal, action: str, entity: str, entity_id: object = None,
           contact_id: int | None = None, changes: dict[str, Any] | None = None, at_once: bool = False) -> None:
    """Add one entry in the caller's transaction (it commits with the change it describes).

    By default the entry waits for the session's next flush, so a loop's entries go in one batch.
    `at_once` writes it now as one plain INSERT, without the ORM's unit of work: for a caller that
    has just flushed its own change and has nothing else to flush (creating a task: a flush of its
    own for a single entry cost more than the statement)."""
    fields = dict(
        actor_kind=actor.kind.value,
        actor_id=None if actor.id is None else str(actor.id),
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        contact_id=contact_id,
        changes=changes or {},
    )
    if at_once:
        session.execute(insert(AuditEntry.__table__).values(occurred_at=clock.now(), **fields))  # type: ignore[arg-type]
    else:
        session.add(AuditEntry(**fields))


def record_many(session: Session, *, actor: Principal, action: str, entity: str,
                entries: Sequence[tuple[object, int | None, dict[str, Any]]]) -> None:
    """`record` for many entries of one action (entity id, contact id, changes each) in one INSERT."""
    if not entries:
        return
    now = clock.now()
    session.execute(insert(AuditEntry.__table__), [  # type: ignore[arg-type]
        dict(occurred_at=now, actor_kind=actor.kind.value, actor_id=None if actor.id is None else str(actor.id),
             action=action, entity=entity, entity_id=None if entity_id is None else str(entity_id),
             contact_id=contact_id, changes=changes or {}) for entity_id, contact_id, changes in entries])


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Field changes as {field: [old, new]}, for one tracking entry per edit."""
    return {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


def parse_actor(value: str | None) -> tuple[str | None, str | None]:
    """"user:3" -> ("user", "3"); "system" -> ("system", None); "" -> (None, None)."""
    kind, _, actor_id = (value or "").partition(":")
    return (kind or None), (actor_id or None)


def entries(session: Session, *, actor: str | None = None, action: str | None = None, contact_id: int | None = None,
            since: datetime | None = None, until: datetime | None = None, limit: int = 50,
            cursor: str | None = None) -> Page[AuditEntry]:
    """The audit log newest first, in keyset pages, narrowed by actor ("user:3", "api_key"), action,
    contact and time [since, until): the one read path of the admin page and the API."""
    stmt = select(AuditEntry)
    kind, actor_id = parse_actor(actor)
    if kind is not None:
        stmt = stmt.where(AuditEntry.actor_kind == kind)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if contact_id is not None:
        stmt = stmt.where(AuditEntry.contact_id == contact_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.occurred_at < until)
    if cursor:
        parts = decode_cursor(cursor)
        if len(parts) != 1 or not isinstance(parts[0], int) or isinstance(parts[0], bool):
            raise InvalidCursor("the cursor is not one this API issued; start again without it")
        stmt = stmt.where(AuditEntry.id < parts[0])
    rows = list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(rows[-1].id))
    return Page(items=rows, next_cursor=None)


def actions(session: Session) -> list[str]:
    """Every action the log holds, for a filter's choices."""
    return list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
