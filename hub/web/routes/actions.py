"""What an agent does to a contact: notes, follow-up tasks, edits, consent, new contacts, merges and undo."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from hub import audit
from hub.accounts import account_choices
from hub.channel_hooks import consent_channels
from hub.contacts import (
    FIELD_LABELS,
    ContactConflict,
    IdentityIn,
    InvalidField,
    add_identity,
    clean_tags,
    create_contact,
    record_consent,
    identities_of,
    search_contacts,
    update_contact,
)
from hub.ingest import ContactNotFound, post_event
from hub.merge import MergeConflict, MergeNotFound, MergeRefused, merge_contacts, preview_merge, undo_merge
from hub.models import ConsentStatus, Contact, IdentityKind, Purpose
from hub.tasks import InvalidTask, create_task
from hub.web import timeline_view
from hub.web.card import active_users, stage_label
from hub.web.i18n import LANGUAGE_NAMES, N_, Translatable, field_errors
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require

router = APIRouter()
Writer = Annotated[Agent, Depends(require("contacts:write"))]
TaskWriter = Annotated[Agent, Depends(require("tasks:write"))]
TimelineWriter = Annotated[Agent, Depends(require("timeline:write"))]
STAGES = ("lead", "prospect", "customer", "churned")
CHECK_VALUES = N_("Some values cannot be saved. Check them and try again.")


def _hx_refresh(response: Response, *events: str) -> Response:
    """Tell the open page which parts to reload (htmx listens for these on <body>)."""
    response.headers["HX-Trigger"] = ", ".join(events)
    return response


@router.post("/contacts/{contact_id}/notes")
def add_note(request: Request, contact_id: int, agent: TimelineWriter,
             text: Annotated[str, Form(max_length=20_000)] = "",
             client_id: Annotated[str | None, Form(max_length=100)] = None) -> Response:
    hub = get_hub(request)
    if not text.strip():
        return render(request, agent, "_flash.html", status=422, tone="bad", message=N_("Write the note first."))
    payload = {"contact_id": contact_id, "text": text.strip(), "author_id": agent.id,
               "client_id": client_id or uuid.uuid4().hex}
    with hub.session() as db:
        try:
            events = hub.channel("note").parse(payload)
            for event in events:
                result = post_event(db, event=event)
                if result.created:  # a retried submit (same client_id) is not a second note
                    audit.record(db, actor=agent.principal, action="note.created", entity="timeline_event",
                                 entity_id=result.event.id, contact_id=result.contact.id)
        except ContactNotFound:
            raise PageError(404, N_("There is no such contact.")) from None
        db.commit()
    if request.headers.get("hx-request") != "true":
        return redirect(request, f"/contacts/{contact_id}")
    response = render(request, agent, "_flash.html", tone="ok", message=N_("Note added."))
    return _hx_refresh(response, "note-saved", "timeline-refresh")


def _parse_due(value: str, agent: Agent) -> datetime | None:
    """A datetime-local value, read in the agent's own time zone."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTask("due_at", "not a date and time") from None
    return naive.replace(tzinfo=agent.fmt.tz) if naive.tzinfo is None else naive


@router.post("/contacts/{contact_id}/tasks")
def add_task(request: Request, contact_id: int, agent: TaskWriter, title: Annotated[str, Form(max_length=500)] = "",
             due: Annotated[str, Form(max_length=40)] = "", assignee_id: Annotated[str, Form()] = "",
             notes: Annotated[str, Form(max_length=5000)] = "") -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        try:
            assignee = int(assignee_id) if assignee_id else agent.id
            task = create_task(db, actor=agent.principal, title=title, notes=notes.strip() or None,
                               due_at=_parse_due(due, agent), assignee_id=assignee, contact_id=contact_id)
        except InvalidTask as exc:
            message = {"title": N_("Give the task a title."), "due_at": N_("The due time is not a valid date and time."),
                       "assignee_id": N_("Choose an active user to assign the task to."),
                       "contact_id": N_("There is no such contact.")}.get(exc.field, str(exc))
            return render(request, agent, "_flash.html", status=422, tone="bad", message=message)
        except ValueError:
            return render(request, agent, "_flash.html", status=422, tone="bad",
                          message=N_("Choose an active user to assign the task to."))
        db.commit()
        task_id = task.id
    if request.headers.get("hx-request") != "true":
        return redirect(request, f"/contacts/{contact_id}")
    response = render(request, agent, "_flash.html", tone="ok", message=N_("Task created."), task_id=task_id)
    return _hx_refresh(response, "task-saved", "timeline-refresh", "card-refresh")


@router.get("/contacts/new")
def new_contact_form(request: Request, agent: Writer) -> Response:
    return render(request, agent, "contact_new.html", error=None, values={})


@router.post("/contacts/new")
def new_contact(request: Request, agent: Writer, display_name: Annotated[str, Form(max_length=300)] = "",
                email: Annotated[str, Form(max_length=320)] = "",
                phone: Annotated[str, Form(max_length=64)] = "") -> Response:
    hub = get_hub(request)
    values = {"display_name": display_name, "email": email, "phone": phone}
    identities = [IdentityIn(kind=IdentityKind.EMAIL, value=email.strip())] if email.strip() else []
    if phone.strip():
        identities.append(IdentityIn(kind=IdentityKind.PHONE, value=phone.strip()))
    with hub.session() as db:
        try:
            contact = create_contact(db, actor=agent.principal, region=hub.settings.default_region,
                                     display_name=display_name, identities=identities)
        except InvalidField as exc:
            return render(request, agent, "contact_new.html", status=422, error=exc, values=values)
        except ContactConflict as exc:
            return render(request, agent, "contact_new.html", status=409, values=values,
                          error=N_("This email or phone already belongs to another contact."), existing=exc.contact_id)
        db.commit()
        return redirect(request, f"/contacts/{contact.id}")


@router.get("/contacts/{contact_id}/edit")
def edit_form(request: Request, contact_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        contact = _live_contact(db, contact_id)
        users = active_users(db)
        accounts = account_choices(db, current=contact.account_id)
    return render(request, agent, "contact_edit.html", contact=contact, users=users, stages=STAGES, error=None,
                  channels_for_consent=_consent_channels(request), accounts=accounts)


def _live_contact(db: Session, contact_id: int) -> Contact:
    contact = db.get(Contact, contact_id)
    if contact is None:
        raise PageError(404, N_("There is no such contact."))
    if contact.merged_into is not None:
        raise PageError(409, N_("This contact was merged into another one; edit that one."))
    return contact


def _consent_channels(request: Request) -> list[tuple[str, str]]:
    hub = get_hub(request)
    return [(name, timeline_view.channel_label(name, hub.channels)) for name in consent_channels(hub.channels)]


@router.post("/contacts/{contact_id}/edit")
def save_contact(request: Request, contact_id: int, agent: Writer,
                 display_name: Annotated[str, Form(max_length=300)] = "",
                 lifecycle_stage: Annotated[str, Form(max_length=40)] = "lead",
                 owner_id: Annotated[str, Form()] = "", account_id: Annotated[str, Form()] = "",
                 locale: Annotated[str, Form()] = "",
                 time_zone: Annotated[str, Form(max_length=64)] = "", tags: Annotated[str, Form(max_length=7000)] = "",
                 new_email: Annotated[str, Form(max_length=320)] = "",
                 new_phone: Annotated[str, Form(max_length=64)] = "",
                 consent_channel: Annotated[str, Form(max_length=40)] = "",
                 consent_status: Annotated[str, Form(max_length=20)] = "",
                 consent_source: Annotated[str, Form(max_length=200)] = "") -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        contact = _live_contact(db, contact_id)
        try:
            owner = int(owner_id) if owner_id else None
            changes = {"display_name": display_name, "lifecycle_stage": lifecycle_stage, "owner_id": owner,
                       "account_id": int(account_id) if account_id else None,
                       "locale": locale or None, "time_zone": time_zone.strip() or None,
                       "tags": clean_tags([t for t in tags.replace(";", ",").split(",") if t.strip()])}
            update_contact(db, contact=contact, actor=agent.principal, changes=changes)
            for kind, value in ((IdentityKind.EMAIL, new_email), (IdentityKind.PHONE, new_phone)):
                if value.strip():
                    add_identity(db, contact=contact, actor=agent.principal, region=hub.settings.default_region,
                                 identity=IdentityIn(kind=kind, value=value.strip()))
            if consent_channel and consent_status:
                record_consent(db, contact=contact, actor=agent.principal, channel=consent_channel,
                               status=ConsentStatus(consent_status), purpose=Purpose.MARKETING,
                               source=consent_source.strip() or f"agent:{agent.id}")
        except (InvalidField, ValueError, ValidationError, ContactConflict) as exc:
            db.rollback()
            message: str | Translatable = exc if isinstance(exc, Translatable) else CHECK_VALUES
            if isinstance(exc, ValidationError):
                message = field_errors(exc.errors(), {"value": N_("Email or phone")})[0]
            if isinstance(exc, ContactConflict):
                message = N_("This email or phone already belongs to another contact; merge the two instead.")
            return render(request, agent, "contact_edit.html", status=422, contact=_live_contact(db, contact_id),
                          users=active_users(db), stages=STAGES, error=message,
                          channels_for_consent=_consent_channels(request),
                          accounts=account_choices(db, current=contact.account_id))
        db.commit()
    return redirect(request, f"/contacts/{contact_id}")


@router.get("/contacts/{contact_id}/merge")
def merge_search(request: Request, contact_id: int, agent: Writer, q: str = "") -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        contact = _live_contact(db, contact_id)
        query = q.strip()[:200] or contact.display_name
        found = search_contacts(db, query=query, region=hub.settings.default_region, limit=20).items
        candidates = [c for c in found if c.id != contact.id]
        idents = identities_of(db, [c.id for c in candidates])  # type: ignore[misc]
    return render(request, agent, "merge_search.html", contact=contact, q=q, candidates=candidates, idents=idents)


@router.get("/contacts/{contact_id}/merge/{other_id}")
def merge_preview(request: Request, contact_id: int, other_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        try:
            preview = preview_merge(db, survivor_id=contact_id, merged_id=other_id)
        except (MergeRefused, MergeConflict, ContactNotFound) as exc:
            raise PageError(409 if not isinstance(exc, ContactNotFound) else 404, str(exc)) from None
        users = {u.id: u.display_name for u in active_users(db)}
    return render(request, agent, "merge_preview.html", preview=preview, contact_id=contact_id, other_id=other_id,
                  conflicts=[_conflict_row(c, agent, users) for c in preview.conflicts])


def _conflict_row(conflict: dict[str, Any], agent: Agent, users: dict[int, str]) -> dict[str, str]:
    """A differing field as the agent reads it: its label, and values in words (a stage, a language,
    the owner's name), not the store's names (`lifecycle_stage`, `attributes.city`, `opportunity`)."""
    _ = agent.gettext
    field = conflict["field"]

    def shown(value: Any) -> str:
        if field == "lifecycle_stage":
            return _(stage_label(value))
        if field == "locale":
            return LANGUAGE_NAMES.get(value, value)
        if field == "owner_id":
            return users.get(value, _("a former user"))
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        if isinstance(value, (int, float)):
            return agent.fmt.number(value)
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    if field.startswith("attributes."):
        label = _("Attribute “%(name)s”") % {"name": field.removeprefix("attributes.")}
    else:
        label = _(FIELD_LABELS.get(field, field))
    return {"label": label, "survivor": shown(conflict["survivor"]), "merged": shown(conflict["merged"])}


@router.post("/contacts/{contact_id}/merge/{other_id}")
def merge(request: Request, contact_id: int, other_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        try:
            record = merge_contacts(db, survivor_id=contact_id, merged_id=other_id, actor=agent.principal)
        except (MergeRefused, MergeConflict, ContactNotFound) as exc:
            raise PageError(409 if not isinstance(exc, ContactNotFound) else 404, str(exc)) from None
        db.commit()
        return redirect(request, f"/contacts/{contact_id}?merged={record.id}")


@router.post("/merges/{merge_id}/undo")
def undo(request: Request, merge_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        try:
            record = undo_merge(db, merge_id=merge_id, actor=agent.principal)
        except MergeNotFound:
            raise PageError(404, N_("There is no such merge.")) from None
        except MergeConflict as exc:
            raise PageError(409, str(exc)) from None
        db.commit()
        return redirect(request, f"/contacts/{record.survivor_id}?undone={record.merged_id}")
