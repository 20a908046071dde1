"""REST routes: contacts, their timeline and notes, consent, merges, and CSV import and export.

A merged contact's id answers 308 with Location set to the same route on the survivor, so old links
and cached ids keep working."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from hub import audit
from hub.api.deps import HubDep, SessionDep, page_size, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.contacts import (
    ConsentPublic,
    ContactCard,
    ContactConflict,
    ContactPublic,
    IdentityIn,
    IdentityPublic,
    InvalidField,
    add_identity,
    add_tags,
    consent_history,
    contact_card,
    create_contact,
    current_consent,
    record_consent,
    remove_tags,
    search_contacts,
    set_attributes,
    to_public,
    update_contact,
)
from hub.csvio import export_contacts, import_contacts
from hub.identities import InvalidIdentity, normalize_phone
from hub.ingest import ContactNotFound, post_event, survivor
from hub.merge import (
    MergeNotFound,
    MergePreview,
    MergePublic,
    MergeRefused,
    merge_contacts,
    merge_public,
    merges_of,
    preview_merge,
    undo_merge,
)
from hub.models import ConsentStatus, Contact, Direction, Purpose, TimelineEvent
from hub.timeline import TimelineFilter, lookup_caller, timeline_page

router = APIRouter(tags=["contacts"])
ReadContacts = Annotated[Principal, Depends(require("contacts:read"))]
WriteContacts = Annotated[Principal, Depends(require("contacts:write"))]
ReadTimeline = Annotated[Principal, Depends(require("timeline:read"))]
WriteTimeline = Annotated[Principal, Depends(require("timeline:write"))]

_PROBLEM = {"content": {"application/problem+json": {}}}
_MOVED = {
    308: {"description": "The contact was merged into another one: Location is this route on the survivor. "
                         "The body names it too (`survivor_id`)."},
    404: {"description": "No such contact", **_PROBLEM},
}


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(default="", max_length=300, description="Defaults to the first identity.")
    identities: list[IdentityIn] = Field(default_factory=list, max_length=20)
    locale: str | None = Field(default=None, description="ru or en")
    time_zone: str | None = Field(default=None, description="An IANA zone, e.g. Europe/Moscow")
    tags: list[str] = Field(default_factory=list, max_length=100)
    attributes: dict[str, Any] = Field(default_factory=dict)
    owner_id: int | None = None
    lifecycle_stage: str = Field(default="lead", max_length=40)
    account_id: int | None = Field(default=None, description="The account (company, household) it belongs to")


class ContactPatch(BaseModel):
    """Only the fields sent change; null clears locale, time_zone, owner_id or account_id."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=300)
    locale: str | None = None
    time_zone: str | None = None
    owner_id: int | None = None
    account_id: int | None = None
    lifecycle_stage: str | None = Field(default=None, max_length=40)
    tags: list[str] | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] | None = None


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(min_length=1, max_length=100)


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=40, examples=["email", "sms"])
    status: ConsentStatus
    purpose: Purpose = Purpose.MARKETING
    source: str = Field(default="", max_length=200, description="Where the decision was made (a form, a call)")
    wording: str | None = Field(default=None, max_length=10_000, description="The text the person agreed to")
    occurred_at: AwareDatetime | None = Field(default=None, description="Defaults to now")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20_000)
    client_id: str | None = Field(default=None, min_length=1, max_length=100,
                                  description="Your id for this note: a retried request does not post it twice")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    survivor_id: int = Field(description="The contact that stays; its fields win")
    merged_id: int = Field(description="The duplicate; it redirects to the survivor afterwards")


class ContactPage(BaseModel):
    items: list[ContactPublic]
    next_cursor: str | None


class TimelineEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    occurred_at: datetime
    channel: str
    direction: str
    kind: str
    subject: str | None
    text: str | None
    html: str | None
    data: dict[str, Any]
    external_id: str
    thread_key: str | None
    status: str | None
    actor_user_id: int | None
    created_at: datetime


class TimelinePage(BaseModel):
    items: list[TimelineEventPublic]
    next_cursor: str | None


class ConsentView(BaseModel):
    current: list[ConsentPublic] = Field(description="The decision in force per channel and purpose")
    items: list[ConsentPublic] = Field(description="The history, newest first")
    next_cursor: str | None


class ImportSummary(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int = 0


@contextmanager
def _service_errors() -> Iterator[None]:
    """Service exceptions as problem details (the transaction is never committed after one)."""
    try:
        yield
    except InvalidField as exc:
        raise Problem(422, f"{exc.field}: {exc.text}", slug="validation",
                      errors=[{"field": exc.field, "in": "body", "message": exc.text, "type": "value_error"}]) from None
    except ContactConflict as exc:
        extra = {} if exc.contact_id is None else {"contact_id": exc.contact_id}
        raise Problem(409, str(exc), slug="conflict", **extra) from None
    except MergeRefused as exc:
        raise Problem(422, str(exc), slug="merge-refused") from None
    except MergeNotFound as exc:
        raise Problem(404, str(exc)) from None


def _contact(session: Session, contact_id: int, request: Request, *, lock: bool = False) -> Contact:
    """The contact at this id, or a 308 to the survivor when it was merged."""
    contact = session.get(Contact, contact_id, with_for_update=lock)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} does not exist")
    if contact.merged_into is None:
        return contact
    target = survivor(session, contact)
    path = request.url.path.replace(f"/contacts/{contact_id}", f"/contacts/{target.id}", 1)
    location = path + (f"?{request.url.query}" if request.url.query else "")
    raise Problem(308, f"contact {contact_id} was merged into contact {target.id}; it lives at {path}",
                  slug="contact-merged", title="Contact merged", headers={"Location": location},
                  survivor_id=target.id)


def _public(session: Session, contact: Contact) -> ContactPublic:
    return to_public(session, [contact])[0]


# Routes with fixed paths come before /contacts/{contact_id}.

@router.get("/contacts", summary="Search contacts by name, email or phone", response_model=ContactPage)
def search(
    hub: HubDep, session: SessionDep, _: ReadContacts,
    q: Annotated[str, Query(max_length=200, description="Part of a name, email or phone (any notation)")] = "",
    limit: Annotated[int | None, Query(description="Page size")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ContactPage:
    page = search_contacts(session, query=q, region=hub.settings.default_region, limit=page_size(hub, limit),
                           cursor=cursor)
    return ContactPage(items=to_public(session, page.items), next_cursor=page.next_cursor)


@router.post("/contacts", status_code=201, summary="Create a contact", response_model=ContactCard,
             responses={409: {"description": "An identity belongs to another contact", **_PROBLEM},
                        422: {"description": "Invalid fields, named in `errors`", **_PROBLEM}})
def create(body: ContactCreate, response: Response, hub: HubDep, session: SessionDep,
           principal: WriteContacts) -> ContactCard:
    with _service_errors():
        contact = create_contact(session, actor=principal, region=hub.settings.default_region,
                                 identities=body.identities, **body.model_dump(exclude={"identities"}))
    session.commit()
    response.headers["Location"] = f"/api/v1/contacts/{contact.id}"
    return contact_card(session, contact_id=contact.id)  # type: ignore[arg-type]


@router.get("/contacts/lookup", summary="The caller behind a phone number (screen pop)", response_model=ContactCard,
            responses={404: {"description": "Nobody has this number", **_PROBLEM}})
def lookup(hub: HubDep, session: SessionDep, _: ReadContacts,
           phone: Annotated[str, Query(min_length=1, max_length=64, description="In any notation")]) -> ContactCard:
    try:
        normalize_phone(phone, hub.settings.default_region)
    except InvalidIdentity as exc:
        raise Problem(422, f"phone: {exc}", slug="validation",
                      errors=[{"field": "phone", "in": "query", "message": str(exc), "type": "value_error"}]) from None
    contact = lookup_caller(session, phone=phone, region=hub.settings.default_region)
    if contact is None:
        raise Problem(404, f"no contact has the phone number {phone}", slug="unknown-caller")
    return contact_card(session, contact_id=contact.id)  # type: ignore[arg-type]


@router.get("/contacts/export.csv", summary="Export every contact as CSV (streamed)", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "The same columns the import takes"}})
def export_csv(hub: HubDep, _: ReadContacts,
               excel: Annotated[bool, Query(description="';', a BOM and formula guards for spreadsheets")] = False,
               ) -> StreamingResponse:
    def chunks() -> Iterator[str]:
        with hub.session(read_only=True) as session:
            yield from export_contacts(session, excel=excel)

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="contacts.csv"'})


@router.post(
    "/contacts/import",
    summary="Import contacts from CSV",
    description="Columns: name, email, phone, tags (';' or ',' between tags), locale, time_zone, owner_email, "
                "lifecycle_stage, attr:<key>. A row whose email or phone is known updates that contact. "
                "If any row is invalid nothing is imported and the 422 answer lists every error with its line.",
    response_model=ImportSummary,
    responses={422: {"description": "Rejected rows in `errors` ({line, column, message}); nothing written", **_PROBLEM},
               413: {"description": "The file is larger than the upload limit", **_PROBLEM}},
)
def import_csv(file: Annotated[UploadFile, File(description="A UTF-8 CSV file with a header row")],
               hub: HubDep, session: SessionDep, principal: WriteContacts) -> ImportSummary:
    limit = hub.settings.api.max_body_bytes
    if file.size is not None and file.size > limit:
        raise Problem(413, f"the file is larger than {limit} bytes; import it with `hub contacts import` instead")
    text = io.TextIOWrapper(file.file, encoding="utf-8-sig", newline="")
    try:
        with _service_errors():
            result = import_contacts(session, stream=text, actor=principal, region=hub.settings.default_region,
                                     source=file.filename or "upload")
    finally:
        text.detach()
    if not result.ok:
        raise Problem(422, f"{result.rejected} of {result.rows} rows are invalid; nothing was imported. "
                           "Fix the lines listed in `errors` and upload the file again.",
                      slug="invalid-csv", errors=[asdict(e) for e in result.errors], rows=result.rows,
                      rejected=result.rejected)
    session.commit()
    return ImportSummary(rows=result.rows, created=result.created, updated=result.updated, unchanged=result.unchanged)


@router.post("/contacts/merge/preview", summary="What a merge would do (writes nothing)", response_model=MergePreview)
def merge_preview(body: MergeIn, session: SessionDep, _: WriteContacts) -> MergePreview:
    with _service_errors():
        return preview_merge(session, survivor_id=body.survivor_id, merged_id=body.merged_id)


@router.post("/contacts/merge", status_code=201, summary="Merge a duplicate into the survivor",
             response_model=MergePublic,
             responses={409: {"description": "One of them was already merged", **_PROBLEM},
                        422: {"description": "A contact cannot be merged into itself", **_PROBLEM}})
def merge(body: MergeIn, session: SessionDep, principal: WriteContacts) -> MergePublic:
    with _service_errors():
        record = merge_contacts(session, survivor_id=body.survivor_id, merged_id=body.merged_id, actor=principal)
    session.commit()
    return merge_public(record)


@router.post("/merges/{merge_id}/undo", summary="Undo a merge, restoring both contacts exactly",
             response_model=MergePublic,
             responses={409: {"description": "Already undone, or a later merge must be undone first", **_PROBLEM}})
def undo(merge_id: int, session: SessionDep, principal: WriteContacts) -> MergePublic:
    with _service_errors():
        record = undo_merge(session, merge_id=merge_id, actor=principal)
    session.commit()
    return merge_public(record)


# One contact.

@router.get("/contacts/{contact_id}", summary="A contact's card", response_model=ContactCard, responses=_MOVED)
def read(contact_id: int, request: Request, session: SessionDep, _: ReadContacts) -> ContactCard:
    contact = _contact(session, contact_id, request)
    return contact_card(session, contact_id=contact.id)  # type: ignore[arg-type]


@router.patch("/contacts/{contact_id}", summary="Edit a contact", response_model=ContactCard, responses=_MOVED)
def edit(contact_id: int, body: ContactPatch, request: Request, session: SessionDep,
         principal: WriteContacts) -> ContactCard:
    contact = _contact(session, contact_id, request, lock=True)
    with _service_errors():
        update_contact(session, contact=contact, actor=principal, changes=body.model_dump(exclude_unset=True))
    session.commit()
    return contact_card(session, contact_id=contact.id)  # type: ignore[arg-type]


@router.post("/contacts/{contact_id}/tags", summary="Add tags", response_model=ContactPublic, responses=_MOVED)
def tag(contact_id: int, body: TagsIn, request: Request, session: SessionDep, principal: WriteContacts) -> ContactPublic:
    contact = _contact(session, contact_id, request, lock=True)
    with _service_errors():
        add_tags(session, contact=contact, actor=principal, tags=body.tags)
    session.commit()
    return _public(session, contact)


@router.delete("/contacts/{contact_id}/tags", summary="Remove tags", response_model=ContactPublic, responses=_MOVED)
def untag(contact_id: int, request: Request, session: SessionDep, principal: WriteContacts,
          tag: Annotated[list[str], Query(min_length=1, description="Repeat for several tags")]) -> ContactPublic:
    contact = _contact(session, contact_id, request, lock=True)
    with _service_errors():
        remove_tags(session, contact=contact, actor=principal, tags=tag)
    session.commit()
    return _public(session, contact)


@router.put("/contacts/{contact_id}/attributes", summary="Replace the attributes", response_model=ContactPublic,
            responses=_MOVED)
def put_attributes(contact_id: int, attributes: Annotated[dict[str, Any], Body(examples=[{"plan": "gold"}])],
                   request: Request, session: SessionDep, principal: WriteContacts) -> ContactPublic:
    contact = _contact(session, contact_id, request, lock=True)
    with _service_errors():
        set_attributes(session, contact=contact, actor=principal, attributes=attributes)
    session.commit()
    return _public(session, contact)


@router.post("/contacts/{contact_id}/identities", status_code=201, summary="Add an email, phone or external id",
             response_model=IdentityPublic,
             responses={**_MOVED, 200: {"description": "The contact already had it", "model": IdentityPublic},
                        409: {"description": "Another contact has it; merge them", **_PROBLEM}})
def add_identity_route(contact_id: int, body: IdentityIn, request: Request, response: Response, hub: HubDep,
                       session: SessionDep, principal: WriteContacts) -> IdentityPublic:
    contact = _contact(session, contact_id, request, lock=True)
    with _service_errors():
        identity, created = add_identity(session, contact=contact, actor=principal, identity=body,
                                         region=hub.settings.default_region)
    session.commit()
    if not created:
        response.status_code = 200
    return IdentityPublic.model_validate(identity)


@router.get("/contacts/{contact_id}/consent", summary="Consent in force and its history", response_model=ConsentView,
            responses=_MOVED)
def consent(contact_id: int, request: Request, hub: HubDep, session: SessionDep, _: ReadContacts,
            limit: int | None = None, cursor: str | None = None) -> ConsentView:
    contact = _contact(session, contact_id, request)
    page = consent_history(session, contact_id=contact.id, limit=page_size(hub, limit), cursor=cursor)  # type: ignore[arg-type]
    return ConsentView(
        current=[ConsentPublic.model_validate(r) for r in current_consent(session, contact_id=contact.id)],  # type: ignore[arg-type]
        items=[ConsentPublic.model_validate(r) for r in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/contacts/{contact_id}/consent", status_code=201, summary="Record a consent decision",
             response_model=ConsentPublic, responses=_MOVED)
def add_consent(contact_id: int, body: ConsentIn, request: Request, session: SessionDep,
                principal: WriteContacts) -> ConsentPublic:
    contact = _contact(session, contact_id, request, lock=True)
    with _service_errors():
        record = record_consent(session, contact=contact, actor=principal, **body.model_dump())
    session.commit()
    return ConsentPublic.model_validate(record)


@router.get("/contacts/{contact_id}/timeline", summary="The contact's timeline, newest first",
            response_model=TimelinePage, responses=_MOVED)
def timeline(
    contact_id: int, request: Request, hub: HubDep, session: SessionDep, _: ReadTimeline,
    limit: int | None = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    channel: Annotated[list[str] | None, Query(description="Repeat for several")] = None,
    direction: Annotated[list[Direction] | None, Query()] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query(description="Events at or after this time")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Events before this time")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the subject or body")] = None,
) -> TimelinePage:
    contact = _contact(session, contact_id, request)
    filters = TimelineFilter(
        channels=frozenset(channel or ()), directions=frozenset(d.value for d in direction or ()),
        kinds=frozenset(kind or ()), since=since, until=until, text=q or None,
    )
    page = timeline_page(session, contact_id=contact.id, limit=page_size(hub, limit), cursor=cursor, filters=filters)  # type: ignore[arg-type]
    return TimelinePage(items=[TimelineEventPublic.model_validate(e) for e in page.items], next_cursor=page.next_cursor)


@router.post("/contacts/{contact_id}/notes", status_code=201, summary="Add a note to the timeline",
             response_model=TimelineEventPublic,
             responses={**_MOVED, 200: {"description": "A retry with the same client_id: the note already posted",
                                        "model": TimelineEventPublic}})
def add_note(contact_id: int, body: NoteIn, request: Request, response: Response, hub: HubDep,
             session: SessionDep, principal: WriteTimeline) -> TimelineEventPublic:
    contact = _contact(session, contact_id, request)
    try:
        note_channel = hub.channel("note")
    except LookupError:
        raise Problem(503, "the note channel is not installed") from None
    [event] = note_channel.parse({"contact_id": contact.id, "text": body.text, "author_id": principal.user_id,
                                  "client_id": body.client_id})
    result = post_event(session, event=event)
    if not result.created:
        if result.event.contact_id != contact.id:
            raise Problem(409, f"client_id {body.client_id!r} was already used for a note on another contact",
                          slug="client-id-reused")
        response.status_code = 200
        return _event(result.event)
    audit.record(session, actor=principal, action="contact.note", entity="timeline_event",
                 entity_id=result.event.id, contact_id=contact.id, changes={"note": [None, body.text[:500]]})
    session.commit()
    return _event(result.event)


@router.get("/contacts/{contact_id}/merges", summary="Merges this contact took part in, newest first",
            response_model=list[MergePublic], responses=_MOVED)
def merges(contact_id: int, request: Request, session: SessionDep, _: ReadContacts) -> list[MergePublic]:
    contact = _contact(session, contact_id, request)
    return [merge_public(r) for r in merges_of(session, contact_id=contact.id)]  # type: ignore[arg-type]


def _event(event: TimelineEvent) -> TimelineEventPublic:
    return TimelineEventPublic.model_validate(event)
