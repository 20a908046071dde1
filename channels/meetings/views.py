"""The agents' side: meeting types, weekly hours and exceptions, the meetings list with its actions
(reschedule, cancel, completed, no-show), and the "Book meeting" panel on the contact page."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select
from starlette.responses import Response

from hub import clock
from hub.models import IdentityKind, User
from hub.contacts import identities_of
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require
from hub.web.panels import contact_or_404, render_panel
from channels.meetings import booking, schedule
from channels.meetings.booking import Actor, BookingError, Visitor
from channels.meetings.models import ExceptionKind, LocationKind, Meeting, MeetingStatus, MeetingType
from channels.meetings.notify import manage_url
from channels.meetings.slots import UTC, local_day_bounds, slots_for, zone_names

if TYPE_CHECKING:
    from channels.meetings.channel import MeetingsChannel

Writer = Annotated[Agent, Depends(require("meetings:write"))]
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday"))
ERRORS = {
    "slug": N_("Use 3–80 lowercase letters, digits and hyphens, not used by another type."),
    "name": N_("A name is required."),
    "host_ids": N_("Choose at least one active host."),
    "duration_minutes": N_("Enter a duration from 5 to 720 minutes."),
    "buffer_before_minutes": N_("Enter 0 to 240 minutes."),
    "buffer_after_minutes": N_("Enter 0 to 240 minutes."),
    "min_notice_minutes": N_("Enter 0 to 43200 minutes."),
    "horizon_days": N_("Enter 1 to 365 days."),
    "slot_step_minutes": N_("Enter 5 to 720 minutes."),
    "location_kind": N_("Choose phone, video link or address."),
    "reminder_offsets": N_("Up to five offsets in minutes, each from 5 minutes to 14 days."),
    "reminder_channels": N_("Reminders go by email or SMS."),
    "time_zone": N_("Choose a time zone from the list."),
    "hours": N_("Write hours like 09:00-13:00, 14:00-18:00, without overlaps."),
    "day": N_("Choose a date."),
}
BOOKING_ERRORS = {
    "slot-taken": N_("That time has just been booked by someone else."),
    "not-available": N_("That time cannot be booked."),
    "too-late": N_("The meeting is too close to change it."),
    "wrong-state": N_("The meeting is no longer booked."),
    "invalid": N_("Check the details and try again."),
}
MEETING_NOT_FOUND = N_("There is no such meeting.")
PANEL_DAYS = 14


def _int(value: str, default: int = -1) -> int:
    try:
        return int(value.strip())
    except (ValueError, AttributeError):
        return default


def _type_form(values: dict[str, Any]) -> schedule.TypeIn:
    return schedule.TypeIn(
        slug=values.get("slug", ""), name=values.get("name", ""), description=values.get("description", ""),
        team_name=values.get("team_name") or None, host_ids=[_int(h) for h in values.get("host_ids", []) if h],
        duration_minutes=_int(values.get("duration_minutes", "")),
        buffer_before_minutes=_int(values.get("buffer_before_minutes", ""), 0),
        buffer_after_minutes=_int(values.get("buffer_after_minutes", ""), 0),
        min_notice_minutes=_int(values.get("min_notice_minutes", ""), 0),
        horizon_days=_int(values.get("horizon_days", "")),
        slot_step_minutes=_int(values.get("slot_step_minutes", ""), 0) or None,
        location_kind=values.get("location_kind", ""), location=values.get("location", ""),
        reminder_offsets=[_int(o) for o in values.get("reminder_offsets", "").replace(";", ",").split(",") if o.strip()],
        reminder_channels=values.get("reminder_channels", []), active=values.get("active") == "on")


def _type_values(row: MeetingType) -> dict[str, Any]:
    return {"slug": row.slug, "name": row.name, "description": row.description, "team_name": row.team_name or "",
            "host_ids": [str(h) for h in row.host_ids], "duration_minutes": str(row.duration_minutes),
            "buffer_before_minutes": str(row.buffer_before_minutes), "buffer_after_minutes": str(row.buffer_after_minutes),
            "min_notice_minutes": str(row.min_notice_minutes), "horizon_days": str(row.horizon_days),
            "slot_step_minutes": str(row.slot_step_minutes), "location_kind": row.location_kind, "location": row.location,
            "reminder_offsets": ", ".join(str(o) for o in row.reminder_offsets),
            "reminder_channels": list(row.reminder_channels), "active": "on" if row.active else ""}


def _users(db: Any) -> list[User]:
    return list(db.scalars(select(User).where(User.is_active.is_(True)).order_by(User.display_name, User.email)))


def build_router(channel: MeetingsChannel) -> APIRouter:
    router = APIRouter()

    # --- meetings ------------------------------------------------------------------------------

    @router.get("/meetings")
    def meetings_page(request: Request, agent: Writer, show: str = "upcoming") -> Response:
        hub = get_hub(request)
        now = clock.now()
        with hub.session(read_only=True) as db:
            query = select(Meeting)
            if show == "past":
                query = query.where(Meeting.starts_at < now).order_by(Meeting.starts_at.desc())
            else:
                show = "upcoming"
                query = query.where(Meeting.ends_at >= now - timedelta(days=1)).order_by(Meeting.starts_at)
            rows = list(db.scalars(query.limit(200)))
            types = {t.id: t for t in db.scalars(select(MeetingType))}
            users = {u.id: u.display_name or u.email for u in _users(db)}
        return render(request, agent, "meetings/index.html", meetings=rows, types=types, users=users, show=show,
                      now=now)

    @router.get("/meetings/{meeting_id:int}")
    def meeting_page(request: Request, meeting_id: int, agent: Writer) -> Response:
        hub = get_hub(request)
        with hub.session(read_only=True) as db:
            meeting = db.get(Meeting, meeting_id)
            if meeting is None:
                raise PageError(404, MEETING_NOT_FOUND)
            meeting_type = db.get(MeetingType, meeting.meeting_type_id)
            host = booking.host_name(db, meeting.host_id)
        return render(request, agent, "meetings/meeting.html", m=meeting, meeting_type=meeting_type, host=host,
                      link=manage_url(hub.settings, meeting.uid, locale=meeting.locale))

    @router.post("/meetings/{meeting_id:int}/close")
    def close_meeting(request: Request, meeting_id: int, agent: Writer,
                      status: Annotated[str, Form(max_length=20)] = "") -> Response:
        return _act(request, agent, meeting_id, lambda db, m: booking.close(
            db, meeting=m, status=MeetingStatus(status) if status in ("completed", "no_show") else MeetingStatus.BOOKED,
            actor_user_id=agent.id))

    @router.post("/meetings/{meeting_id:int}/cancel")
    def cancel_meeting(request: Request, meeting_id: int, agent: Writer,
                       reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
        return _act(request, agent, meeting_id, lambda db, m: booking.cancel(
            db, meeting=m, actor=Actor.AGENT, reason=reason, actor_user_id=agent.id))

    @router.get("/meetings/{meeting_id:int}/reschedule")
    def reschedule_page(request: Request, meeting_id: int, agent: Writer) -> Response:
        hub = get_hub(request)
        with hub.session(read_only=True) as db:
            meeting = db.get(Meeting, meeting_id)
            if meeting is None:
                raise PageError(404, MEETING_NOT_FOUND)
            meeting_type = db.get(MeetingType, meeting.meeting_type_id)
            slots = _agent_slots(db, hub, agent, meeting_type, ignore_meeting_id=meeting.id)  # type: ignore[arg-type]
        return render(request, agent, "meetings/reschedule.html", meeting=meeting, meeting_type=meeting_type,
                      slots=slots, back=request.query_params.get("back") or "/meetings")

    @router.post("/meetings/{meeting_id:int}/reschedule")
    def reschedule_meeting(request: Request, meeting_id: int, agent: Writer,
                           start: Annotated[str, Form(max_length=64)] = "") -> Response:
        starts_at = _parse(start)
        if starts_at is None:
            raise PageError(422, BOOKING_ERRORS["not-available"])
        return _act(request, agent, meeting_id, lambda db, m: booking.reschedule(
            db, meeting=m, starts_at=starts_at, actor=Actor.AGENT, actor_user_id=agent.id))

    def _act(request: Request, agent: Agent, meeting_id: int, action: Any) -> Response:
        hub = get_hub(request)
        with hub.session() as db:
            meeting = db.get(Meeting, meeting_id)
            if meeting is None:
                raise PageError(404, MEETING_NOT_FOUND)
            try:
                action(db, meeting)
                db.commit()
            except BookingError as exc:
                db.rollback()
                raise PageError(exc.status, BOOKING_ERRORS.get(exc.code, BOOKING_ERRORS["invalid"])) from None
            contact_id = meeting.contact_id
        back = request.query_params.get("back") or ""
        if back == "contact":
            return redirect(request, f"/contacts/{contact_id}")
        if back == "meeting":
            return redirect(request, f"/meetings/{meeting_id:int}")
        return redirect(request, "/meetings")

    # --- meeting types -------------------------------------------------------------------------

    @router.get("/meetings/types")
    def types_page(request: Request, agent: Writer) -> Response:
        hub = get_hub(request)
        with hub.session(read_only=True) as db:
            types = list(db.scalars(select(MeetingType).order_by(MeetingType.name)))
            users = _users(db)
        base = hub.settings.public_url(request)
        return render(request, agent, "meetings/types.html", types=types, users={u.id: u.display_name or u.email for u in users},
                      base=base)

    @router.get("/meetings/types/new")
    def new_type(request: Request, agent: Writer) -> Response:
        values = {"host_ids": [str(agent.id)], "duration_minutes": "30", "buffer_before_minutes": "0",
                  "buffer_after_minutes": "0", "min_notice_minutes": "240", "horizon_days": "30",
                  "slot_step_minutes": "30", "location_kind": LocationKind.VIDEO, "reminder_offsets": "1440, 60",
                  "reminder_channels": ["email", "sms"], "active": "on"}
        return _type_page(request, agent, None, values, {})

    @router.get("/meetings/types/{type_id:int}")
    def edit_type(request: Request, type_id: int, agent: Writer) -> Response:
        with get_hub(request).session(read_only=True) as db:
            row = db.get(MeetingType, type_id)
            if row is None:
                raise PageError(404, N_("There is no such meeting type."))
            values = _type_values(row)
        return _type_page(request, agent, type_id, values, {})

    @router.post("/meetings/types")
    async def create_type(request: Request, agent: Writer) -> Response:
        return await _save_type(request, agent, None)

    @router.post("/meetings/types/{type_id:int}")
    async def update_type(request: Request, type_id: int, agent: Writer) -> Response:
        return await _save_type(request, agent, type_id)

    async def _save_type(request: Request, agent: Agent, type_id: int | None) -> Response:
        form = await request.form()
        values: dict[str, Any] = {k: str(form.get(k) or "")[:5000] for k in form.keys() if k not in ("host_ids", "reminder_channels")}
        values["host_ids"] = [str(v) for v in form.getlist("host_ids")][:50]
        values["reminder_channels"] = [str(v) for v in form.getlist("reminder_channels")][:5]
        hub = get_hub(request)
        with hub.session() as db:
            try:
                data = _type_form(values)
                if type_id is None:
                    schedule.create_type(db, data=data)
                else:
                    row = db.get(MeetingType, type_id)
                    if row is None:
                        raise PageError(404, N_("There is no such meeting type."))
                    schedule.update_type(db, meeting_type=row, data=data)
                db.commit()
            except schedule.ScheduleError as exc:
                db.rollback()
                return _type_page(request, agent, type_id, values, {exc.field: ERRORS.get(exc.field, ERRORS["name"])}, status=422)
        return redirect(request, "/meetings/types")

    def _type_page(request: Request, agent: Agent, type_id: int | None, values: dict[str, Any], errors: dict[str, str],
                   status: int = 200) -> Response:
        with get_hub(request).session(read_only=True) as db:
            users = _users(db)
        return render(request, agent, "meetings/type_form.html", status=status, type_id=type_id, values=values,
                      errors=errors, users=users, location_kinds=list(LocationKind))

    # --- availability --------------------------------------------------------------------------

    @router.get("/meetings/availability")
    def availability_page(request: Request, agent: Writer) -> Response:
        hub = get_hub(request)
        with hub.session(read_only=True) as db:
            hours = schedule.weekly_hours(db, user_id=agent.id)
            zone = schedule.host_zone(db, user_id=agent.id) or agent.user.time_zone or hub.settings.default_timezone
            exceptions = schedule.exceptions_of(db, user_id=agent.id, since=clock.now().date() - timedelta(days=1))
        values = {f"day{d}": schedule.format_spans(hours[d]) for d in range(7)}
        return _availability(request, agent, values, zone, exceptions, {})

    def _availability(request: Request, agent: Agent, values: dict[str, str], zone: str, exceptions: list[Any],
                      errors: dict[str, str], status: int = 200, saved: bool = False) -> Response:
        return render(request, agent, "meetings/availability.html", status=status, values=values, zone=zone,
                      zones=zone_names(), weekdays=WEEKDAYS, exceptions=exceptions, errors=errors, saved=saved,
                      format_spans=schedule.format_spans)

    @router.post("/meetings/availability")
    async def save_availability(request: Request, agent: Writer) -> Response:
        form = await request.form()
        values = {f"day{d}": str(form.get(f"day{d}") or "")[:500] for d in range(7)}
        zone = str(form.get("time_zone") or "")[:64]
        hub = get_hub(request)
        with hub.session() as db:
            try:
                hours = {d: schedule.parse_spans(values[f"day{d}"], field_name=f"day{d}") for d in range(7)}
                schedule.set_hours(db, user_id=agent.id, time_zone=zone, hours=hours)
                db.commit()
            except schedule.ScheduleError as exc:
                db.rollback()
                exceptions = schedule.exceptions_of(db, user_id=agent.id, since=clock.now().date() - timedelta(days=1))
                key = exc.field if exc.field in ERRORS else "hours"
                return _availability(request, agent, values, zone, exceptions, {exc.field: ERRORS[key]}, status=422)
        return redirect(request, "/meetings/availability")

    @router.post("/meetings/availability/exceptions")
    def add_exception(request: Request, agent: Writer, day: Annotated[str, Form(max_length=10)] = "",
                      kind: Annotated[str, Form(max_length=10)] = "off", hours: Annotated[str, Form(max_length=500)] = "",
                      note: Annotated[str, Form(max_length=200)] = "") -> Response:
        hub = get_hub(request)
        with hub.session() as db:
            try:
                try:
                    when = date.fromisoformat(day)
                except ValueError:
                    raise schedule.ScheduleError("day", "choose a date") from None
                spans = schedule.parse_spans(hours, field_name="hours")
                schedule.add_exception(db, user_id=agent.id, day=when,
                                       kind=ExceptionKind.EXTRA if kind == "extra" else ExceptionKind.OFF,
                                       spans=spans, note=note)
                db.commit()
            except schedule.ScheduleError as exc:
                db.rollback()
                raise PageError(422, ERRORS.get(exc.field, ERRORS["hours"])) from None
        return redirect(request, "/meetings/availability")

    @router.post("/meetings/availability/exceptions/{exception_id:int}/delete")
    def delete_exception(request: Request, exception_id: int, agent: Writer) -> Response:
        with get_hub(request).session() as db:
            if not schedule.delete_exception(db, user_id=agent.id, exception_id=exception_id):
                raise PageError(404, N_("There is no such exception."))
            db.commit()
        return redirect(request, "/meetings/availability")

    # --- the contact page's "Book meeting" panel -----------------------------------------------

    def panel(request: Request, agent: Agent, contact_id: int, **kwargs: Any) -> Response:
        hub = get_hub(request)
        with hub.session(read_only=True) as db:
            contact = contact_or_404(db, contact_id)
            types = list(db.scalars(select(MeetingType).where(MeetingType.active.is_(True)).order_by(MeetingType.name)))
            values = kwargs.get("values") or {}
            chosen = next((t for t in types if str(t.id) == str(values.get("type_id"))), types[0] if types else None)
            slots = _agent_slots(db, hub, agent, chosen) if chosen else []
            meetings = list(db.scalars(select(Meeting).where(Meeting.contact_id == contact.id)
                                       .order_by(Meeting.starts_at.desc()).limit(20)))
            names = {t.id: t.name for t in db.scalars(select(MeetingType))}
            links = {m.id: manage_url(hub.settings, m.uid, locale=m.locale) for m in meetings}
        options = {"types": types, "chosen": chosen, "slots": slots, "meetings": meetings, "type_names": names,
                   "links": links, "now": clock.now()}
        return render_panel(request, agent, "meetings", contact_id, options=options, **kwargs)

    @router.get("/contacts/{contact_id}/compose/meetings")
    def panel_form(request: Request, contact_id: int, agent: Writer, type_id: str = "") -> Response:
        return panel(request, agent, contact_id, values={"type_id": type_id} if type_id else None)

    @router.post("/contacts/{contact_id}/compose/meetings")
    def panel_book(request: Request, contact_id: int, agent: Writer, type_id: Annotated[str, Form(max_length=20)] = "",
                   start: Annotated[str, Form(max_length=64)] = "", notes: Annotated[str, Form(max_length=2000)] = "",
                   client_id: Annotated[str, Form(max_length=100)] = "") -> Response:
        hub = get_hub(request)
        values = {"type_id": type_id, "start": start, "notes": notes, "client_id": client_id}
        starts_at = _parse(start)
        with hub.session() as db:
            contact = contact_or_404(db, contact_id)
            meeting_type = db.get(MeetingType, _int(type_id)) if type_id.isdigit() else None
            if meeting_type is None or starts_at is None:
                return panel(request, agent, contact_id, values=values, status=422,
                             errors={"start": N_("Choose a meeting type and a time.")})
            idents = identities_of(db, [contact.id]).get(contact.id, [])
            email = next((i.value for i in idents if i.kind == IdentityKind.EMAIL), None)
            phone = next((i.value for i in idents if i.kind == IdentityKind.PHONE), None)
            visitor = Visitor(name=contact.display_name or email or phone or "?", email=email, phone=phone, notes=notes,
                              locale=contact.locale or hub.settings.default_locale,
                              time_zone=contact.time_zone or agent.fmt.tz.key)
            try:
                if not (email or phone):
                    raise BookingError("the contact has no email or phone", field="email")
                booking.book(db, meeting_type=meeting_type, starts_at=starts_at, visitor=visitor, actor=Actor.AGENT,
                             contact_id=contact.id, actor_user_id=agent.id)
                db.commit()
            except BookingError as exc:
                db.rollback()
                message = N_("The contact needs an email or a phone number first.") if exc.field == "email" \
                    else BOOKING_ERRORS.get(exc.code, BOOKING_ERRORS["invalid"])
                return panel(request, agent, contact_id, values=values, status=exc.status, errors={"start": message})
        return panel(request, agent, contact_id, sent=N_("Meeting booked."))

    return router


def _parse(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def _agent_slots(db: Any, hub: Any, agent: Agent, meeting_type: MeetingType, *, ignore_meeting_id: int | None = None) -> list[Any]:
    """The next two weeks of free slots, for an agent: the minimum notice does not bind them."""
    now = clock.now()
    start, end = local_day_bounds(now.astimezone(agent.fmt.tz).date(), agent.fmt.tz, PANEL_DAYS)
    return slots_for(db, booking.for_actor(meeting_type, Actor.AGENT), now=now, start=max(start, now), end=end,
                     default_zone=hub.settings.default_timezone,
                     ignore_meeting_id=ignore_meeting_id)
