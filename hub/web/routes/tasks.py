"""My tasks: what is due, what is overdue, and marking tasks done."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from hub import clock
from hub.models import Contact, Task, TaskStatus, User
from hub.tasks import TaskConflict, complete_task, is_overdue, list_tasks
from hub.timeline import InvalidCursor
from hub.web.card import display_names
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require

router = APIRouter()
Reader = Annotated[Agent, Depends(require("tasks:read"))]
Writer = Annotated[Agent, Depends(require("tasks:write"))]
VIEWS = ("mine", "overdue", "all", "done")


@router.get("/tasks")
def my_tasks(request: Request, agent: Reader, show: str = "mine", cursor: str | None = None) -> Response:
    hub = get_hub(request)
    show = show if show in VIEWS else "mine"
    with hub.session(read_only=True) as db:
        try:
            if show == "mine":
                found = list_tasks(db, assignee_id=agent.id, status=TaskStatus.OPEN, limit=50, cursor=cursor)
            elif show == "overdue":
                found = list_tasks(db, assignee_id=agent.id, overdue=True, limit=50, cursor=cursor)
            elif show == "done":
                found = list_tasks(db, assignee_id=agent.id, status=TaskStatus.DONE, limit=50, cursor=cursor)
            else:
                found = list_tasks(db, status=TaskStatus.OPEN, limit=50, cursor=cursor)
        except InvalidCursor:
            raise PageError(400, N_("That page of tasks has expired; reload the page.")) from None
        overdue_count = len(list_tasks(db, assignee_id=agent.id, overdue=True, limit=100).items)
        contacts = display_names(db, Contact, {t.contact_id for t in found.items if t.contact_id})
        users = display_names(db, User, {t.assignee_id for t in found.items if t.assignee_id})
    now = clock.now()
    return render(request, agent, "tasks.html", tasks=found.items, next_cursor=found.next_cursor, show=show,
                  overdue={t.id for t in found.items if is_overdue(t, now=now)}, overdue_count=overdue_count,
                  contacts=contacts, users=users)


@router.post("/tasks/{task_id}/complete")
def complete(request: Request, task_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        task = db.get(Task, task_id)
        if task is None:
            raise PageError(404, N_("There is no such task."))
        try:
            complete_task(db, task=task, actor=agent.principal)
        except TaskConflict as exc:
            raise PageError(409, str(exc)) from None
        db.commit()
        contact_id = task.contact_id
    back = request.headers.get("hx-current-url") or request.headers.get("referer") or "/tasks"
    if request.headers.get("hx-request") == "true":
        response = Response(status_code=200, content="")
        response.headers["HX-Trigger"] = "task-saved, timeline-refresh, card-refresh"
        return response
    return redirect(request, "/tasks" if "/contacts/" not in back else f"/contacts/{contact_id}")
