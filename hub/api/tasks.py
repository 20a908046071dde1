"""REST routes: follow-up tasks (GET/POST /tasks, GET/PATCH /tasks/{id}, POST /tasks/{id}/complete)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from hub import clock
from hub.api.deps import HubDep, SessionDep, page_size, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.models import Task, TaskStatus
from hub.tasks import InvalidTask, TaskConflict, complete_task, create_task, is_overdue, list_tasks, update_task

router = APIRouter(tags=["tasks"])
Reader = Annotated[Principal, Depends(require("tasks:read"))]
Writer = Annotated[Principal, Depends(require("tasks:write"))]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    notes: str | None = Field(default=None, max_length=20_000)
    due_at: AwareDatetime | None = None
    assignee_id: int | None = Field(default=None, description="An active user; defaults to the calling user.")
    contact_id: int | None = None


class TaskUpdate(BaseModel):
    """Only the fields sent change; null clears notes, due_at, assignee_id or contact_id."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=500)
    notes: str | None = Field(default=None, max_length=20_000)
    due_at: AwareDatetime | None = None
    assignee_id: int | None = None
    contact_id: int | None = None
    status: TaskStatus | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> TaskUpdate:
        for name in ("title", "status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TaskPublic(BaseModel):
    id: int
    title: str
    notes: str | None
    due_at: datetime | None
    assignee_id: int | None
    contact_id: int | None
    status: TaskStatus
    overdue: bool
    created_by: str | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, task: Task, *, now: datetime) -> TaskPublic:
        return cls(id=task.id, title=task.title, notes=task.notes, due_at=task.due_at,  # type: ignore[arg-type]
                   assignee_id=task.assignee_id, contact_id=task.contact_id, status=TaskStatus(task.status),
                   overdue=is_overdue(task, now=now), created_by=task.created_by, created_at=task.created_at,
                   completed_at=task.completed_at)


class TaskPage(BaseModel):
    items: list[TaskPublic]
    next_cursor: str | None


def _invalid(exc: InvalidTask) -> Problem:
    return Problem(422, f"{exc.field}: {exc}", slug="validation",
                   errors=[{"field": exc.field, "in": "body", "message": str(exc), "type": "value_error"}])


def _task(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise Problem(404, f"task {task_id} does not exist")
    return task


@router.get("/tasks", summary="List tasks: yours by default, or by assignee, contact, status, overdue")
def get_tasks(
    hub: HubDep,
    session: SessionDep,
    principal: Reader,
    assignee_id: int | None = None,
    contact_id: int | None = None,
    status: TaskStatus | None = None,
    overdue: bool | None = None,
    limit: Annotated[int | None, Query(description="Page size")] = None,
    cursor: str | None = None,
) -> TaskPage:
    if assignee_id is None and contact_id is None:
        if principal.user_id is None:
            raise Problem(422, "An API key has no tasks of its own; pass assignee_id or contact_id.",
                          slug="validation",
                          errors=[{"field": "assignee_id", "in": "query", "message": "required for API keys",
                                   "type": "missing"}])
        assignee_id = principal.user_id
    page = list_tasks(session, assignee_id=assignee_id, contact_id=contact_id, status=status, overdue=overdue,
                      limit=page_size(hub, limit), cursor=cursor)
    now = clock.now()
    return TaskPage(items=[TaskPublic.of(t, now=now) for t in page.items], next_cursor=page.next_cursor)


@router.post("/tasks", status_code=201, summary="Create a task")
def post_task(body: TaskCreate, session: SessionDep, principal: Writer) -> TaskPublic:
    assignee_id = body.assignee_id if "assignee_id" in body.model_fields_set else principal.user_id
    try:
        task = create_task(session, actor=principal, title=body.title, notes=body.notes, due_at=body.due_at,
                           assignee_id=assignee_id, contact_id=body.contact_id)
    except InvalidTask as exc:
        raise _invalid(exc) from None
    session.commit()
    return TaskPublic.of(task, now=clock.now())


@router.get("/tasks/{task_id}", summary="One task")
def get_task(task_id: int, session: SessionDep, principal: Reader) -> TaskPublic:
    return TaskPublic.of(_task(session, task_id), now=clock.now())


@router.patch("/tasks/{task_id}", summary="Change a task (status \"done\" completes it)")
def patch_task(task_id: int, body: TaskUpdate, session: SessionDep, principal: Writer) -> TaskPublic:
    task = _task(session, task_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    try:
        update_task(session, task=task, actor=principal, changes=changes)
    except InvalidTask as exc:
        raise _invalid(exc) from None
    except TaskConflict as exc:
        raise Problem(409, str(exc), slug="task-state") from None
    session.commit()
    return TaskPublic.of(task, now=clock.now())


@router.post("/tasks/{task_id}/complete", summary="Mark a task done")
def post_complete(task_id: int, session: SessionDep, principal: Writer) -> TaskPublic:
    task = _task(session, task_id)
    try:
        complete_task(session, task=task, actor=principal)
    except TaskConflict as exc:
        raise Problem(409, str(exc), slug="task-state") from None
    session.commit()
    return TaskPublic.of(task, now=clock.now())

