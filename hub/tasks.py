"""Follow-up tasks: who should do what by when, usually about a contact.

Creating and completing a task about a contact posts an internal event on its timeline (channel
"task", kinds "task.created" and "task.completed"), and every change to such a task is audited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, case, insert, or_, select
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.auth import Principal
from hub.db import among
from hub.ingest import ContactNotFound, InboundEvent, get_contact, post_event, post_events, survivors
from hub.models import Direction, Task, TaskStatus, User
from hub.timeline import InvalidCursor, Page, decode_cursor, encode_cursor

TASK_CHANNEL = "task"
EDITABLE = ("title", "notes", "due_at", "assignee_id", "contact_id", "status")


class InvalidTask(ValueError):
    """A value the task cannot take; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TaskConflict(ValueError):
    """A change the task's current state does not allow (completing a cancelled task)."""


def is_overdue(task: Task, *, now: datetime | None = None) -> bool:
    """Open and past its due time."""
    return task.status == TaskStatus.OPEN and task.due_at is not None and task.due_at < (now or clock.now())


def create_task(session: Session, *, actor: Principal, title: str, notes: str | None = None,
                due_at: datetime | None = None, assignee_id: int | None = None,
                contact_id: int | None = None) -> Task:
    """A new open task; one about a contact shows on its timeline and in its audit log."""
    _check_due(due_at)
    task = Task(
        title=_title(title),
        notes=notes,
        due_at=due_at,
        assignee_id=_active_user(session, assignee_id),
        contact_id=_contact(session, contact_id),
        created_by=actor.actor,
    )
    session.add(task)
    session.flush()
    if task.contact_id is not None:
        _post(session, task, actor=actor, kind="task.created")
        audit.record(session, actor=actor, action="task.created", entity="task", entity_id=task.id,
                     contact_id=task.contact_id, changes=audit.diff({}, _snapshot(task)), at_once=True)
    return task


@dataclass(frozen=True)
class NewTask:
    """One task of a `create_tasks` batch (create_task's arguments)."""

    title: str
    notes: str | None = None
    due_at: datetime | None = None
    assignee_id: int | None = None
    contact_id: int | None = None


def create_tasks(session: Session, *, actor: Principal, tasks: Sequence[NewTask]) -> list[int]:
    """What create_task does, for many tasks in a few statements whatever their number (a scheduler
    tick's alerts); the new tasks' ids, in order. The same checks (InvalidTask for the first bad one,
    before anything is written), one insert of the tasks, one batch of their timeline events, one
    insert of their audit entries: plain rows, no ORM object per task (building those cost more than
    the statements)."""
    return create_tasks_posting(session, actor=actor, tasks=tasks, events=())[0]


def create_tasks_posting(session: Session, *, actor: Principal, tasks: Sequence[NewTask],
                         events: Sequence[InboundEvent], contacts: Mapping[int, Any] = {},
                         ) -> tuple[list[int], list[int]]:
    """create_tasks, with the caller's `events` posted in the same batch (one insert) ahead of the
    tasks' own, so their triggers fire first; (the tasks' ids, the events' ids), each in order.
    Nothing is written when a task is refused (InvalidTask), the events included. `contacts`: the
    contacts the caller has read already, by id (hub.ingest.survivors' `known`)."""
    for new in tasks:
        _check_due(new.due_at)
    titles = [_title(new.title) for new in tasks]
    wanted = {new.assignee_id for new in tasks if new.assignee_id is not None}
    active = set(session.scalars(select(User.id).where(among(session, User.id, wanted), User.is_active.is_(True)))) \
        if wanted else set()
    if missing := sorted(wanted - active):
        raise InvalidTask("assignee_id", f"user {missing[0]} does not exist or is deactivated")
    try:
        survivor_of = survivors(session, [new.contact_id for new in tasks if new.contact_id is not None],
                                known=contacts)
    except ContactNotFound as exc:
        raise InvalidTask("contact_id", str(exc)) from None
    if not tasks:
        return [], post_events(session, events=events, contacts=contacts) if events else []
    now = clock.now()
    rows = [{"title": title, "notes": new.notes, "due_at": new.due_at, "assignee_id": new.assignee_id,
             "contact_id": None if new.contact_id is None else survivor_of[new.contact_id].id,
             "status": TaskStatus.OPEN.value, "created_by": actor.actor, "source_event_id": None,
             "created_at": now, "completed_at": None} for title, new in zip(titles, tasks)]
    table = Task.__table__  # type: ignore[attr-defined]
    ids = list(session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows))
    created = [SimpleNamespace(id=task_id, **row) for task_id, row in zip(ids, rows) if row["contact_id"] is not None]
    posted = post_events(session, events=[*events, *(_event(task, actor=actor, kind="task.created")
                                                     for task in created)],
                         contacts={**contacts, **{c.id: c for c in survivor_of.values()}}) if events or created else []
    if created:
        audit.record_many(session, actor=actor, action="task.created", entity="task", entries=[
            (task.id, task.contact_id, audit.diff({}, _snapshot(task))) for task in created])
    return ids, posted[:len(events)]


def update_task(session: Session, *, task: Task, actor: Principal, changes: Mapping[str, Any]) -> Task:
    """Apply a partial update (fields in EDITABLE); status "done" completes the task."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidTask(sorted(unknown)[0], f"tasks have no editable field {sorted(unknown)[0]!r}")
    before = _snapshot(task)
    if "title" in changes:
        task.title = _title(changes["title"])
    if "notes" in changes:
        task.notes = changes["notes"]
    if "due_at" in changes:
        _check_due(changes["due_at"])
        task.due_at = changes["due_at"]
    if "assignee_id" in changes:
        task.assignee_id = _active_user(session, changes["assignee_id"])
    if "contact_id" in changes:
        task.contact_id = _contact(session, changes["contact_id"])
    status = changes.get("status")
    if status is not None and status != task.status:
        if status == TaskStatus.DONE:
            _audit_change(session, task, actor=actor, before=before)
            return complete_task(session, task=task, actor=actor)
        try:
            task.status = TaskStatus(status).value
        except ValueError:
            raise InvalidTask("status", f"status must be one of {', '.join(s.value for s in TaskStatus)}") from None
        task.completed_at = None
    _audit_change(session, task, actor=actor, before=before)
    return task


def complete_task(session: Session, *, task: Task, actor: Principal) -> Task:
    """Mark the task done (again is a no-op); one about a contact posts "task.completed"."""
    if task.status == TaskStatus.DONE:
        return task
    if task.status == TaskStatus.CANCELLED:
        raise TaskConflict(f"task {task.id} is cancelled; reopen it (status \"open\") before completing it")
    before = _snapshot(task)
    task.status = TaskStatus.DONE.value
    task.completed_at = clock.now()
    session.flush()
    if task.contact_id is not None:
        # Completing, reopening and completing again keeps the first completion on the timeline.
        _post(session, task, actor=actor, kind="task.completed")
        audit.record(session, actor=actor, action="task.completed", entity="task", entity_id=task.id,
                     contact_id=task.contact_id, changes=audit.diff(before, _snapshot(task)))
    return task


def list_tasks(session: Session, *, assignee_id: int | None = None, contact_id: int | None = None,
               status: TaskStatus | None = None, overdue: bool | None = None, limit: int = 50,
               cursor: str | None = None) -> Page[Task]:
    """Tasks matching every given filter, soonest due first (undated ones last), in keyset pages."""
    now = clock.now()
    stmt = select(Task)
    if assignee_id is not None:
        stmt = stmt.where(Task.assignee_id == assignee_id)
    if contact_id is not None:
        stmt = stmt.where(Task.contact_id == get_contact(session, contact_id).id)
    if status is not None:
        stmt = stmt.where(Task.status == status.value)
    late = and_(Task.status == TaskStatus.OPEN.value, Task.due_at.is_not(None), Task.due_at < now)
    if overdue is True:
        stmt = stmt.where(late)
    elif overdue is False:
        stmt = stmt.where(~late)
    undated = case((Task.due_at.is_(None), 1), else_=0)
    if cursor:
        stmt = stmt.where(_after(cursor, undated))
    stmt = stmt.order_by(undated, Task.due_at, Task.id).limit(limit + 1)
    rows = list(session.scalars(stmt))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].due_at, rows[-1].id)
    return Page(items=rows, next_cursor=next_cursor)


def _after(cursor: str, undated: Any) -> Any:
    parts = decode_cursor(cursor)
    try:
        due_raw, last_id = parts
        last_id = int(last_id)  # type: ignore[call-overload]
        due = None if due_raw is None else datetime.fromisoformat(str(due_raw))
    except (ValueError, TypeError):
        raise InvalidCursor("the cursor is not one this API issued; start again without it") from None
    if due is None:
        return and_(Task.due_at.is_(None), Task.id > last_id)
    return or_(undated == 1, Task.due_at > due, and_(Task.due_at == due, Task.id > last_id))


def _title(value: Any) -> str:
    title = (value or "").strip() if isinstance(value, str) or value is None else value
    if not isinstance(title, str) or not title:
        raise InvalidTask("title", "a task needs a title")
    if len(title) > 500:
        raise InvalidTask("title", "a title is at most 500 characters")
    return title


def _check_due(due_at: datetime | None) -> None:
    if due_at is not None and due_at.tzinfo is None:
        raise InvalidTask("due_at", "due_at needs a time zone offset (e.g. 2026-01-01T10:00:00+03:00)")


def _active_user(session: Session, user_id: int | None) -> int | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise InvalidTask("assignee_id", f"user {user_id} does not exist or is deactivated")
    return user.id


def _contact(session: Session, contact_id: int | None) -> int | None:
    if contact_id is None:
        return None
    try:
        return get_contact(session, contact_id).id
    except ContactNotFound as exc:
        raise InvalidTask("contact_id", str(exc)) from None


def _snapshot(task: Task | SimpleNamespace) -> dict[str, Any]:
    return {
        "title": task.title,
        "notes": task.notes,
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "assignee_id": task.assignee_id,
        "contact_id": task.contact_id,
        "status": task.status,
    }


def _audit_change(session: Session, task: Task, *, actor: Principal, before: dict[str, Any]) -> None:
    changes = audit.diff(before, _snapshot(task))
    if not changes:
        return
    # A task moved from one contact to another shows in both contacts' logs.
    for contact_id in dict.fromkeys(c for c in (before["contact_id"], task.contact_id) if c is not None):
        audit.record(session, actor=actor, action="task.updated", entity="task", entity_id=task.id,
                     contact_id=contact_id, changes=changes)


def _post(session: Session, task: Task, *, actor: Principal, kind: str) -> None:
    post_event(session, event=_event(task, actor=actor, kind=kind))


def _event(task: Task | SimpleNamespace, *, actor: Principal, kind: str) -> InboundEvent:
    """The timeline event a change of a task about a contact posts (`task`: the row, or its values)."""
    return InboundEvent(
        channel=TASK_CHANNEL,
        kind=kind,
        direction=Direction.INTERNAL,
        contact_id=task.contact_id,
        external_id=f"task:{task.id}:{kind.removeprefix('task.')}",
        subject=task.title,
        text=task.notes,
        data={
            "task_id": task.id,
            "due_at": task.due_at.isoformat() if task.due_at else None,
            "assignee_id": task.assignee_id,
        },
        actor_user_id=actor.user_id,
    )
