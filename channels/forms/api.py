"""REST routes for forms under /api/v1: definitions (list, create, read, replace, delete) and their
submissions (list by form and time, read one). They call the same service as the workspace pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.api.deps import HubDep, SessionDep, id_page, page_size, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.timeline import InvalidCursor, decode_cursor, encode_cursor

from channels.forms.definitions import FieldDef, FormDefinition, parse_fields
from channels.forms.models import Form, FormSubmission
from channels.forms.public import form_url
from channels.forms.service import (
    FormInUse, create_form, delete_form, list_submissions, submission_count, update_form,
)

router = APIRouter(tags=["forms"])
Reader = Annotated[Principal, Depends(require("forms:read"))]
Writer = Annotated[Principal, Depends(require("forms:write"))]
Limit = Annotated[int | None, Query(description="Page size")]

EXAMPLE = {
    "name": "Contact us",
    "title": "Write to us",
    "fields": [
        {"name": "name", "type": "text", "label": "Name", "required": True, "maps_to": "display_name"},
        {"name": "email", "type": "email", "label": "Email", "required": True},
        {"name": "news", "type": "consent", "label": "News", "wording": "Send me news by email, at most monthly."},
    ],
    "thank_you": "Thank you, we will answer within a day.",
    "tags": ["website"],
}


class FormIn(FormDefinition):
    """Everything an admin edits about a form; PUT replaces it whole."""

    model_config = {**FormDefinition.model_config, "json_schema_extra": {"examples": [EXAMPLE]}}


class FormPublic(BaseModel):
    id: int
    key: str
    public_url: str
    name: str
    title: str
    description: str
    fields: list[FieldDef]
    submit_label: str
    thank_you: str
    redirect_url: str | None
    allowed_origins: list[str]
    tags: list[str]
    task_assignee_id: int | None
    task_title: str
    is_active: bool
    submissions: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class FormPage(BaseModel):
    items: list[FormPublic]
    next_cursor: str | None


class SubmissionPublic(BaseModel):
    id: int
    form_id: int
    client_id: str
    contact_id: int | None
    event_id: int | None
    task_id: int | None
    values: dict[str, Any]
    consents: list[dict[str, Any]]
    source_url: str | None
    locale: str | None
    created_at: datetime


class SubmissionPage(BaseModel):
    items: list[SubmissionPublic]
    next_cursor: str | None


def _public(hub: Any, form: Form, submissions: int) -> FormPublic:
    return FormPublic(**form.model_dump(exclude={"fields"}), fields=parse_fields(form.fields), submissions=submissions,
                      public_url=form_url(hub.settings.public_base_url, form.key))


def _submission(row: FormSubmission) -> SubmissionPublic:
    return SubmissionPublic(**row.model_dump(include=set(SubmissionPublic.model_fields)))


def _inner_cursor(cursor: str | None) -> str | None:
    """The workspace page's cursor ("<time>|<id>") inside the API's opaque, URL-safe one."""
    if not cursor:
        return None
    parts = decode_cursor(cursor)
    if len(parts) != 1 or not isinstance(parts[0], str):
        raise InvalidCursor("the cursor is not one this API issued; start again without it")
    return parts[0]


def _form(session: Session, form_id: int) -> Form:
    form = session.get(Form, form_id)
    if form is None:
        raise Problem(404, f"form {form_id} does not exist")
    return form


def _refused(exc: ValueError) -> Problem:
    # The service's checks beyond the model's (an inactive follow-up assignee).
    return Problem(422, f"task_assignee_id: {exc}", slug="validation",
                   errors=[{"field": "task_assignee_id", "in": "body", "message": str(exc), "type": "value_error"}])


@router.get("/forms", summary="List forms, newest first, with their number of submissions")
def get_forms(hub: HubDep, session: SessionDep, _: Reader, limit: Limit = None, cursor: str | None = None) -> FormPage:
    rows, next_cursor = id_page(session, select(Form), Form, limit=page_size(hub, limit), cursor=cursor,
                                newest_first=True)
    counts = dict(session.execute(
        select(FormSubmission.form_id, func.count()).where(FormSubmission.form_id.in_([f.id for f in rows]))
        .group_by(FormSubmission.form_id)).all()) if rows else {}
    return FormPage(items=[_public(hub, f, counts.get(f.id, 0)) for f in rows], next_cursor=next_cursor)


@router.post("/forms", status_code=201, summary="Create a form; its public address is in `public_url`")
def post_form(body: FormIn, hub: HubDep, session: SessionDep, principal: Writer) -> FormPublic:
    try:
        form = create_form(session, actor=principal, definition=body)
    except ValueError as exc:
        raise _refused(exc) from None
    session.commit()
    return _public(hub, form, 0)


@router.get("/forms/{form_id}", summary="One form")
def get_form(form_id: int, hub: HubDep, session: SessionDep, _: Reader) -> FormPublic:
    form = _form(session, form_id)
    return _public(hub, form, submission_count(session, form_id=form_id))


@router.put("/forms/{form_id}", summary="Replace a form's definition (the key and address stay)")
def put_form(form_id: int, body: FormIn, hub: HubDep, session: SessionDep, principal: Writer) -> FormPublic:
    form = _form(session, form_id)
    try:
        update_form(session, form=form, actor=principal, definition=body)
    except ValueError as exc:
        session.rollback()
        raise _refused(exc) from None
    session.commit()
    return _public(hub, form, submission_count(session, form_id=form_id))


@router.delete("/forms/{form_id}", status_code=204, response_class=Response,
               responses={409: {"description": "It has submissions", "content": {"application/problem+json": {}}}},
               summary="Delete a form nobody has submitted; one with submissions answers 409 (close it instead)")
def delete(form_id: int, session: SessionDep, principal: Writer) -> Response:
    form = _form(session, form_id)
    try:
        delete_form(session, form=form, actor=principal)
    except FormInUse as exc:
        raise Problem(409, str(exc), slug="form-in-use") from None
    session.commit()
    return Response(status_code=204)


@router.get("/form-submissions", summary="Submissions newest first: of one form, and/or within a time range")
def get_submissions(
    hub: HubDep,
    session: SessionDep,
    _: Reader,
    form_id: Annotated[int | None, Query(description="Only this form's submissions")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Submitted at or after (with a zone)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Submitted before (with a zone)")] = None,
    limit: Limit = None,
    cursor: str | None = None,
) -> SubmissionPage:
    if form_id is not None:
        _form(session, form_id)
    if since is not None and until is not None and since >= until:
        raise Problem(422, "since must be before until", slug="validation",
                      errors=[{"field": "until", "in": "query", "message": "must be after since",
                               "type": "value_error"}])
    page = list_submissions(session, form_id=form_id, since=since, until=until, limit=page_size(hub, limit),
                            cursor=_inner_cursor(cursor))
    return SubmissionPage(items=[_submission(s) for s in page.items],
                          next_cursor=encode_cursor(page.next_cursor) if page.next_cursor else None)


@router.get("/form-submissions/{submission_id}", summary="One submission: the answers and the consents given")
def get_submission(submission_id: int, session: SessionDep, _: Reader) -> SubmissionPublic:
    row = session.get(FormSubmission, submission_id)
    if row is None:
        raise Problem(404, f"submission {submission_id} does not exist")
    return _submission(row)

