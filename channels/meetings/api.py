"""REST routes for meetings under /api/v1: meeting types (CRUD), their free slots, and meetings (list,
book, reschedule, cancel, close).

Bookings go through `channels.meetings.booking`, the service the booking page and the workspace call:
the same slot check, the same no-overlap constraint when two requests race (one wins, the other gets
409), the same timeline events, iCalendar invitation and reminders.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.api.deps import HubDep, SessionDep, id_page, page_size, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.contacts import identities_of
from hub.models import Contact, IdentityKind

from channels.meetings import booking, schedule
from channels.meetings.booking import Actor, BookingError, Visitor
from channels.meetings.models import LocationKind, Meeting, MeetingStatus, MeetingType
from channels.meetings.notify import manage_url
from channels.meetings.slots import local_day_bounds, slots_for, zone_or_none

router = APIRouter(tags=["meetings"])
Reader = Annotated[Principal, Depends(require("meetings:read"))]
Writer = Annotated[Principal, Depends(require("meetings:write"))]
Limit = Annotated[int | None, Query(description="Page size")]
ActorName = Literal["customer", "agent"]
ACTOR_HELP = ("Whose rules apply: `customer` (the booking page's: the minimum notice binds) or `agent` "
              "(the workspace's: it does not).")
MAX_SLOT_DAYS = 62
_PROBLEM = {"content": {"application/problem+json": {}}}
TAKEN = {409: {"description": "`slot-taken`: someone else holds that time (also when two requests race); "
                              "`too-late`: inside the minimum notice (customer rules); `wrong-state`: no longer "
                              "booked", **_PROBLEM},
         422: {"description": "`not-available` (not a free slot) or invalid fields, in `errors`", **_PROBLEM}}


class MeetingTypeIn(BaseModel):
    """A meeting type; PUT replaces it whole."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "slug": "consultation", "name": "Consultation", "host_ids": [1], "duration_minutes": 30,
        "min_notice_minutes": 240, "location_kind": "video", "location": "https://meet.example.com/room-1",
    }]})

    slug: str = Field(max_length=80, description="The booking page's address: /channels/meetings/<slug>")
    name: str = Field(max_length=200)
    host_ids: list[int] = Field(min_length=1, max_length=50, description="Active users; several make a team")
    description: str = Field(default="", max_length=5000)
    team_name: str | None = Field(default=None, max_length=200)
    duration_minutes: int = Field(default=30, ge=5, le=720)
    buffer_before_minutes: int = Field(default=0, ge=0, le=240)
    buffer_after_minutes: int = Field(default=0, ge=0, le=240)
    min_notice_minutes: int = Field(default=240, ge=0, le=60 * 24 * 30)
    horizon_days: int = Field(default=30, ge=1, le=365)
    slot_step_minutes: int | None = Field(default=None, ge=5, le=720, description="Defaults to the duration")
    location_kind: LocationKind = LocationKind.VIDEO
    location: str = Field(default="", max_length=500)
    reminder_offsets: list[int] = Field(default=[1440, 60], max_length=5, description="Minutes before the start")
    reminder_channels: list[Literal["email", "sms"]] = Field(default=["email", "sms"], max_length=2)
    active: bool = True


class MeetingTypePublic(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    team_name: str | None
    host_ids: list[int]
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    horizon_days: int
    slot_step_minutes: int
    location_kind: str
    location: str
    reminder_offsets: list[int]
    reminder_channels: list[str]
    active: bool
    booking_url: str
    created_at: datetime
    updated_at: datetime


class MeetingTypePage(BaseModel):
    items: list[MeetingTypePublic]
    next_cursor: str | None


class SlotPublic(BaseModel):
    starts_at: datetime
    ends_at: datetime
    host_ids: list[int]


class Availability(BaseModel):
    meeting_type_id: int
    time_zone: str
    start: date
    days: int
    slots: list[SlotPublic]


class BookingIn(BaseModel):
    """Book a free slot: for a known contact (`contact_id`), or for a person found or created by email/phone."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "meeting_type_id": 1, "starts_at": "2026-06-03T06:00:00Z", "name": "Ivan Petrov",
        "email": "ivan@example.com", "locale": "en", "time_zone": "Europe/Berlin",
    }]})

    meeting_type_id: int
    starts_at: AwareDatetime = Field(description="One of the type's free slots (GET …/slots)")
    contact_id: int | None = None
    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    notes: str = Field(default="", max_length=2000)
    locale: Literal["ru", "en"] | None = None
    time_zone: str | None = Field(default=None, max_length=64, description="The attendee's IANA zone")
    actor: ActorName = Field(default="customer", description=ACTOR_HELP)


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    actor: ActorName = Field(default="customer", description=ACTOR_HELP)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)
    actor: ActorName = Field(default="customer", description=ACTOR_HELP)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["completed", "no_show"]


class MeetingPublic(BaseModel):
    id: int
    uid: str
    meeting_type_id: int
    host_id: int
    contact_id: int
    starts_at: datetime
    ends_at: datetime
    status: MeetingStatus
    sequence: int
    name: str
    email: str | None
    phone: str | None
    notes: str
    locale: str
    visitor_time_zone: str
    location: str
    booked_by_user_id: int | None
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    manage_url: str = Field(description="The attendee's signed link to move or cancel it")


class MeetingPage(BaseModel):
    items: list[MeetingPublic]
    next_cursor: str | None


def _type_public(hub: Any, row: MeetingType) -> MeetingTypePublic:
    return MeetingTypePublic(**row.model_dump(include=set(MeetingTypePublic.model_fields)),
                             booking_url=f"{hub.settings.public_base_url.rstrip('/')}/channels/meetings/{row.slug}")


def _meeting_public(hub: Any, row: Meeting) -> MeetingPublic:
    return MeetingPublic(**row.model_dump(include=set(MeetingPublic.model_fields)),
                         manage_url=manage_url(hub.settings, row.uid, locale=row.locale))


def _type(session: Session, type_id: int) -> MeetingType:
    row = session.get(MeetingType, type_id)
    if row is None:
        raise Problem(404, f"meeting type {type_id} does not exist")
    return row


def _meeting(session: Session, meeting_id: int) -> Meeting:
    row = session.get(Meeting, meeting_id)
    if row is None:
        raise Problem(404, f"meeting {meeting_id} does not exist")
    return row


def _invalid(field: str, message: str, *, where: str = "body") -> Problem:
    return Problem(422, f"{field}: {message}", slug="validation",
                   errors=[{"field": field, "in": where, "message": message, "type": "value_error"}])


def _booking_problem(exc: BookingError) -> Problem:
    if exc.field and exc.status == 422:
        problem = _invalid(exc.field, exc.message)
        problem.slug = exc.code if exc.code != "invalid" else "validation"
        return problem
    return Problem(exc.status, exc.message, slug=exc.code)


# --- meeting types ----------------------------------------------------------------------------

@router.get("/meeting-types", summary="List meeting types")
def get_types(hub: HubDep, session: SessionDep, _: Reader, limit: Limit = None,
              cursor: str | None = None) -> MeetingTypePage:
    rows, next_cursor = id_page(session, select(MeetingType), MeetingType, limit=page_size(hub, limit), cursor=cursor)
    return MeetingTypePage(items=[_type_public(hub, r) for r in rows], next_cursor=next_cursor)


@router.post("/meeting-types", status_code=201, summary="Create a meeting type (its booking page opens at once)")
def post_type(body: MeetingTypeIn, hub: HubDep, session: SessionDep, _: Writer) -> MeetingTypePublic:
    try:
        row = schedule.create_type(session, data=schedule.TypeIn(**body.model_dump()))
    except schedule.ScheduleError as exc:
        raise _invalid(exc.field, exc.message) from None
    session.commit()
    return _type_public(hub, row)


@router.get("/meeting-types/{type_id}", summary="One meeting type")
def get_type(type_id: int, hub: HubDep, session: SessionDep, _: Reader) -> MeetingTypePublic:
    return _type_public(hub, _type(session, type_id))


@router.put("/meeting-types/{type_id}", summary="Replace a meeting type's settings (booked meetings keep theirs)")
def put_type(type_id: int, body: MeetingTypeIn, hub: HubDep, session: SessionDep, _: Writer) -> MeetingTypePublic:
    row = _type(session, type_id)
    try:
        schedule.update_type(session, meeting_type=row, data=schedule.TypeIn(**body.model_dump()))
    except schedule.ScheduleError as exc:
        session.rollback()
        raise _invalid(exc.field, exc.message) from None
    session.commit()
    return _type_public(hub, row)


@router.delete("/meeting-types/{type_id}", status_code=204, response_class=Response,
               responses={409: {"description": "Meetings were booked with it", **_PROBLEM}},
               summary="Delete a meeting type nobody booked; one with meetings answers 409 (deactivate it instead)")
def delete_type(type_id: int, session: SessionDep, _: Writer) -> Response:
    row = _type(session, type_id)
    try:
        schedule.delete_type(session, meeting_type=row)
    except schedule.TypeInUse as exc:
        raise Problem(409, str(exc), slug="meeting-type-in-use") from None
    session.commit()
    return Response(status_code=204)


@router.get("/meeting-types/{type_id}/slots",
            summary="Free slots of a type: `days` local days from `start` in `time_zone`, as the booking page "
                    "shows them")
def get_slots(
    type_id: int,
    hub: HubDep,
    session: SessionDep,
    _: Reader,
    start: Annotated[date | None, Query(description="The first local day (default: today in time_zone)")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_SLOT_DAYS)] = 7,
    time_zone: Annotated[str | None, Query(max_length=64, description="IANA zone (default: the hub's)")] = None,
    actor: Annotated[ActorName, Query(description=ACTOR_HELP)] = "customer",
) -> Availability:
    row = _type(session, type_id)
    zone_name = time_zone or hub.settings.default_timezone
    zone = zone_or_none(zone_name)
    if zone is None:
        raise _invalid("time_zone", f"{zone_name!r} is not an IANA time zone (e.g. Europe/Moscow)", where="query")
    now = clock.now()
    first = start or now.astimezone(zone).date()
    begin, end = local_day_bounds(first, zone, days)
    found = []
    if row.active and end > now:  # a closed type, like its booking page, has no slots
        found = slots_for(session, booking.for_actor(row, Actor(actor)), now=now, start=max(begin, now), end=end,
                          default_zone=hub.settings.default_timezone)
    return Availability(meeting_type_id=type_id, time_zone=zone_name, start=first, days=days,
                        slots=[SlotPublic(starts_at=s.starts_at, ends_at=s.ends_at, host_ids=list(s.host_ids))
                               for s in found])


# --- meetings ---------------------------------------------------------------------------------

@router.get("/meetings", summary="List meetings, most recently booked first, by type, contact, host, status or start")
def get_meetings(
    hub: HubDep,
    session: SessionDep,
    _: Reader,
    meeting_type_id: int | None = None,
    contact_id: int | None = None,
    host_id: int | None = None,
    status: MeetingStatus | None = None,
    starts_after: Annotated[AwareDatetime | None, Query(description="Starting at or after")] = None,
    starts_before: Annotated[AwareDatetime | None, Query(description="Starting before")] = None,
    limit: Limit = None,
    cursor: str | None = None,
) -> MeetingPage:
    stmt = select(Meeting)
    for column, value in ((Meeting.meeting_type_id, meeting_type_id), (Meeting.contact_id, contact_id),
                          (Meeting.host_id, host_id), (Meeting.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    if starts_after is not None:
        stmt = stmt.where(Meeting.starts_at >= starts_after)
    if starts_before is not None:
        stmt = stmt.where(Meeting.starts_at < starts_before)
    rows, next_cursor = id_page(session, stmt, Meeting, limit=page_size(hub, limit), cursor=cursor, newest_first=True)
    return MeetingPage(items=[_meeting_public(hub, r) for r in rows], next_cursor=next_cursor)


@router.get("/meetings/{meeting_id}", summary="One meeting")
def get_meeting(meeting_id: int, hub: HubDep, session: SessionDep, _: Reader) -> MeetingPublic:
    return _meeting_public(hub, _meeting(session, meeting_id))


def _visitor(session: Session, hub: Any, body: BookingIn) -> Visitor:
    """The attendee: the body's details, filled in from the contact when one is named."""
    name, email, phone = body.name, body.email, body.phone
    locale, zone = body.locale, body.time_zone
    if body.contact_id is not None:
        contact = session.get(Contact, body.contact_id)
        if contact is None or contact.merged_into is not None:
            raise _invalid("contact_id", f"contact {body.contact_id} does not exist")
        idents = identities_of(session, [contact.id]).get(contact.id, [])
        email = email or next((i.value for i in idents if i.kind == IdentityKind.EMAIL), None)
        phone = phone or next((i.value for i in idents if i.kind == IdentityKind.PHONE), None)
        name = name or contact.display_name or email or phone
        locale, zone = locale or contact.locale, zone or contact.time_zone
    if zone is not None and zone_or_none(zone) is None:
        raise _invalid("time_zone", f"{zone!r} is not an IANA time zone (e.g. Europe/Moscow)")
    return Visitor(name=name or "", email=email, phone=phone, notes=body.notes,
                   locale=locale or hub.settings.default_locale, time_zone=zone or hub.settings.default_timezone)


@router.post("/meetings", status_code=201, responses=TAKEN,
             summary="Book a free slot: an invitation (iCalendar) goes to the attendee; 409 if the slot was just taken")
def post_meeting(body: BookingIn, hub: HubDep, session: SessionDep, principal: Writer) -> MeetingPublic:
    row = session.get(MeetingType, body.meeting_type_id)
    if row is None:
        raise _invalid("meeting_type_id", f"meeting type {body.meeting_type_id} does not exist")
    visitor = _visitor(session, hub, body)
    try:
        meeting = booking.book(session, meeting_type=row, starts_at=body.starts_at, visitor=visitor,
                               actor=Actor(body.actor), contact_id=body.contact_id, actor_user_id=principal.user_id)
    except BookingError as exc:
        session.rollback()
        raise _booking_problem(exc) from None
    session.commit()
    return _meeting_public(hub, meeting)


def _change(hub: Any, session: Session, meeting_id: int, action: Any) -> MeetingPublic:
    meeting = _meeting(session, meeting_id)
    try:
        action(meeting)
    except BookingError as exc:
        session.rollback()
        raise _booking_problem(exc) from None
    session.commit()
    return _meeting_public(hub, meeting)


@router.post("/meetings/{meeting_id}/reschedule", responses=TAKEN,
             summary="Move a booked meeting to another free slot: a new invitation version goes out")
def post_reschedule(meeting_id: int, body: RescheduleIn, hub: HubDep, session: SessionDep,
                    principal: Writer) -> MeetingPublic:
    return _change(hub, session, meeting_id, lambda m: booking.reschedule(
        session, meeting=m, starts_at=body.starts_at, actor=Actor(body.actor), actor_user_id=principal.user_id))


@router.post("/meetings/{meeting_id}/cancel", responses=TAKEN,
             summary="Cancel a booked meeting: the attendee gets the cancellation")
def post_cancel(meeting_id: int, body: CancelIn, hub: HubDep, session: SessionDep, principal: Writer) -> MeetingPublic:
    return _change(hub, session, meeting_id, lambda m: booking.cancel(
        session, meeting=m, actor=Actor(body.actor), reason=body.reason, actor_user_id=principal.user_id))


@router.post("/meetings/{meeting_id}/close", responses=TAKEN,
             summary="Mark a meeting that has started completed or a no-show")
def post_close(meeting_id: int, body: CloseIn, hub: HubDep, session: SessionDep, principal: Writer) -> MeetingPublic:
    return _change(hub, session, meeting_id, lambda m: booking.close(
        session, meeting=m, status=MeetingStatus(body.status), actor_user_id=principal.user_id))
