"""Customer pages at /channels/meetings/: book a meeting type, then move or cancel it by a signed link.

They work without JavaScript: the visitor's zone is the `tz` query parameter (a picker on the page
sets it); a tiny script only fills it in from the browser on the first visit. The pages speak the
visitor's language (`?lang=`, then the browser's) and show every time in the visitor's zone.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from babel import dates as babel_dates
from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import Response

from hub import clock, throttle
from hub.signing import BadLink, unsign
from hub.web.i18n import N_
from hub.web.public import public_locale, render_public
from channels.meetings import booking
from channels.meetings.booking import Actor, BookingError, SlotTaken, TooLate, Visitor
from channels.meetings.channel import BOOKING_BUCKETS
from channels.meetings.models import Meeting, MeetingStatus, MeetingType
from channels.meetings.notify import MANAGE_PURPOSE, invitation_ics, manage_token
from channels.meetings.slots import (
    UTC,
    group_by_day,
    local_day_bounds,
    repeated_wall_time,
    slots_for,
    zone_names,
    zone_or_none,
)

if TYPE_CHECKING:
    from channels.meetings.channel import MeetingsChannel
    from hub.runtime import Hub

DAYS_SHOWN = 7
ZONE_SCRIPT = """// Fills the time zone in from the browser on the first visit; the page works without it.
(function () {
  var params = new URLSearchParams(location.search);
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
  if (!params.has("tz") && zone) {
    params.set("tz", zone);
    location.replace(location.pathname + "?" + params.toString());
    return;
  }
  var picker = document.getElementById("tz");
  if (picker) {
    picker.addEventListener("change", function () { picker.form.submit(); });
  }
})();
"""
FIELD_MESSAGES = {
    "name": N_("Please tell us your name."),
    "email": N_("Give an email address or a phone number we can reach you at."),
    "phone": N_("That is not a phone number we can use."),
    "start": N_("That time cannot be booked; please choose another one."),
}
EMAIL_INVALID = N_("That is not a valid email address.")
LIMITED = N_("Too many booking attempts from your network. Please try again in a few minutes.")


def _hub(request: Request) -> Hub:
    return request.app.state.hub


def _zone_name(request: Request, fallback: str) -> str:
    asked = request.query_params.get("tz") or ""
    return asked if zone_or_none(asked) else fallback


def _page_error(request: Request, status: int, message: str, *, locale: str | None = None, **values: Any) -> Response:
    return render_public(request, "public/meetings/error.html", locale=locale or public_locale(request), status=status,
                         message=message, **values)


def _type_or_404(session: Any, slug: str) -> MeetingType | None:
    if len(slug) > 80:
        return None
    found = session.scalars(select(MeetingType).where(MeetingType.slug == slug)).first()
    return found if found is not None and found.active else None


def _parse_start(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _week(request: Request, zone_name: str, now: datetime) -> date:
    zone = zone_or_none(zone_name) or UTC
    today = now.astimezone(zone).date()
    try:
        asked = date.fromisoformat(request.query_params.get("day") or "")
    except ValueError:
        return today
    return min(max(asked, today), today + timedelta(days=400))


def _slot_days(session: Any, hub: Hub, meeting_type: MeetingType, *, zone_name: str, first: date,
               ignore_meeting_id: int | None = None) -> list[tuple[date, list[tuple[Any, datetime]]]]:
    zone = zone_or_none(zone_name) or UTC
    start, end = local_day_bounds(first, zone, DAYS_SHOWN)
    found = slots_for(session, meeting_type, now=clock.now(), start=start, end=end,
                      default_zone=hub.settings.default_timezone, ignore_meeting_id=ignore_meeting_id)
    grouped = group_by_day(found, zone)
    return [(first + timedelta(days=i), grouped.get(first + timedelta(days=i), [])) for i in range(DAYS_SHOWN)]


def repeat_label(local: datetime, locale: str) -> str:
    """The UTC offset ("GMT-04:00") of a time its day shows twice, so the two can be told apart; "" otherwise."""
    if not repeated_wall_time(local):
        return ""
    return babel_dates.format_time(local, "ZZZZ", tzinfo=local.tzinfo, locale=locale)


def _render(request: Request, template: str, **values: Any) -> Response:
    """A booking page; its times are told apart by their offset where the day repeats them."""
    return render_public(request, template, repeat_label=repeat_label, **values)


def _nav_links(request: Request, first: date, today: date) -> dict[str, str | None]:
    def at(day: date) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "day"] + [("day", day.isoformat())]
        return f"{request.url.path}?{urlencode(params)}"

    earlier = first - timedelta(days=DAYS_SHOWN)
    return {"earlier": at(max(earlier, today)) if first > today else None, "later": at(first + timedelta(days=DAYS_SHOWN))}


def build_router(channel: MeetingsChannel) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    settings = channel.settings

    @router.get("/static/zone.js")
    def zone_script() -> Response:
        return Response(ZONE_SCRIPT, media_type="text/javascript",
                        headers={"cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"})

    @router.get("/m/{token}")
    def manage(request: Request, token: str) -> Response:
        hub = _hub(request)
        with hub.session(read_only=True) as db:
            found = _meeting_by_token(request, db, token)
            if isinstance(found, Response):
                return found
            meeting, meeting_type = found
            locale = public_locale(request, meeting.locale)
            zone_name = _zone_name(request, meeting.visitor_time_zone)
            return _render(
                request, "public/meetings/manage.html", locale=locale, time_zone=zone_name, meeting=meeting,
                meeting_type=meeting_type, host_name=booking.host_name(db, meeting.host_id), zone_name=zone_name,
                token=token, can_change=_can_change(meeting, meeting_type), notice=request.query_params.get("done"))

    @router.get("/m/{token}/invite.ics")
    def ics_file(request: Request, token: str) -> Response:
        hub = _hub(request)
        with hub.session(read_only=True) as db:
            found = _meeting_by_token(request, db, token)
            if isinstance(found, Response):
                return found
            meeting, meeting_type = found
            _method, ics = invitation_ics(db, hub, meeting, meeting_type, now=clock.now(), method="PUBLISH")
        return Response(ics, media_type="text/calendar; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="invite.ics"', "cache-control": "no-store",
                                 "referrer-policy": "no-referrer", "x-robots-tag": "noindex, nofollow"})

    @router.get("/m/{token}/reschedule")
    def reschedule_page(request: Request, token: str) -> Response:
        hub = _hub(request)
        with hub.session(read_only=True) as db:
            found = _meeting_by_token(request, db, token)
            if isinstance(found, Response):
                return found
            meeting, meeting_type = found
            locale = public_locale(request, meeting.locale)
            if not _can_change(meeting, meeting_type):
                return _too_late(request, locale, token, meeting)
            zone_name = _zone_name(request, meeting.visitor_time_zone)
            now = clock.now()
            first = _week(request, zone_name, now)
            days = _slot_days(db, hub, meeting_type, zone_name=zone_name, first=first, ignore_meeting_id=meeting.id)
            today = now.astimezone(zone_or_none(zone_name) or UTC).date()
            return _render(
                request, "public/meetings/reschedule.html", locale=locale, time_zone=zone_name, meeting=meeting,
                meeting_type=meeting_type, days=days, zone_name=zone_name, zones=zone_names(), token=token,

                nav=_nav_links(request, first, today))

    @router.post("/m/{token}/reschedule")
    def reschedule(request: Request, token: str, start: Annotated[str, Form(max_length=64)] = "",
                   tz: Annotated[str, Form(max_length=64)] = "", lang: Annotated[str, Form(max_length=5)] = "") -> Response:
        hub = _hub(request)
        starts_at = _parse_start(start)
        with hub.session() as db:
            found = _meeting_by_token(request, db, token, lang=lang)
            if isinstance(found, Response):
                return found
            meeting, meeting_type = found
            locale = lang if lang in ("ru", "en") else public_locale(request, meeting.locale)
            if starts_at is None:
                return _page_error(request, 422, FIELD_MESSAGES["start"], locale=locale, back=_manage_path(token, locale))
            try:
                booking.reschedule(db, meeting=meeting, starts_at=starts_at, actor=Actor.CUSTOMER)
                if tz and zone_or_none(tz):
                    meeting.visitor_time_zone = tz
                db.commit()
            except BookingError as exc:
                db.rollback()
                return _booking_error(request, exc, locale=locale, back=f"/channels/meetings/m/{token}/reschedule?"
                                      + urlencode({"lang": locale, "tz": tz or meeting.visitor_time_zone}))
        return Response(status_code=303, headers={"Location": _manage_path(token, locale, done="moved")})

    @router.post("/m/{token}/cancel")
    def cancel(request: Request, token: str, reason: Annotated[str, Form(max_length=2000)] = "",
               lang: Annotated[str, Form(max_length=5)] = "") -> Response:
        hub = _hub(request)
        with hub.session() as db:
            found = _meeting_by_token(request, db, token, lang=lang)
            if isinstance(found, Response):
                return found
            meeting, _meeting_type = found
            locale = lang if lang in ("ru", "en") else public_locale(request, meeting.locale)
            try:
                booking.cancel(db, meeting=meeting, actor=Actor.CUSTOMER, reason=reason)
                db.commit()
            except BookingError as exc:
                db.rollback()
                return _booking_error(request, exc, locale=locale, back=_manage_path(token, locale))
        return Response(status_code=303, headers={"Location": _manage_path(token, locale, done="cancelled")})

    @router.get("/{slug}")
    def book_page(request: Request, slug: str) -> Response:
        hub = _hub(request)
        locale = public_locale(request)
        with hub.session(read_only=True) as db:
            meeting_type = _type_or_404(db, slug)
            if meeting_type is None:
                return _page_error(request, 404, N_("There is no such meeting to book."), locale=locale)
            zone_name = _zone_name(request, hub.settings.default_timezone)
            now = clock.now()
            first = _week(request, zone_name, now)
            days = _slot_days(db, hub, meeting_type, zone_name=zone_name, first=first)
            today = now.astimezone(zone_or_none(zone_name) or UTC).date()
            return _render(
                request, "public/meetings/book.html", locale=locale, time_zone=zone_name, meeting_type=meeting_type,
                hosts=_host_label(db, meeting_type), days=days, zone_name=zone_name, zones=zone_names(),

                nav=_nav_links(request, first, today), zone_given="tz" in request.query_params)

    @router.get("/{slug}/book")
    def book_form(request: Request, slug: str, start: str = "") -> Response:
        hub = _hub(request)
        locale = public_locale(request)
        zone_name = _zone_name(request, hub.settings.default_timezone)
        with hub.session(read_only=True) as db:
            meeting_type = _type_or_404(db, slug)
            if meeting_type is None:
                return _page_error(request, 404, N_("There is no such meeting to book."), locale=locale)
            starts_at = _parse_start(start)
            if starts_at is None:
                return _page_error(request, 422, FIELD_MESSAGES["start"], locale=locale, back=_book_path(slug, locale, zone_name))
            return _form(request, db, meeting_type, locale=locale, zone_name=zone_name, starts_at=starts_at, values={})

    @router.post("/{slug}/book")
    def book(request: Request, slug: str, start: Annotated[str, Form(max_length=64)] = "",
             tz: Annotated[str, Form(max_length=64)] = "", lang: Annotated[str, Form(max_length=5)] = "",
             name: Annotated[str, Form(max_length=300)] = "", email: Annotated[str, Form(max_length=320)] = "",
             phone: Annotated[str, Form(max_length=40)] = "", notes: Annotated[str, Form(max_length=2000)] = "") -> Response:
        hub = _hub(request)
        locale = lang if lang in ("ru", "en") else public_locale(request)
        zone_name = tz if zone_or_none(tz) else hub.settings.default_timezone
        values = {"name": name, "email": email, "phone": phone, "notes": notes}
        with hub.session(read_only=True) as reader:  # nothing to book: nothing counted, nothing written
            if _type_or_404(reader, slug) is None:
                return _page_error(request, 404, N_("There is no such meeting to book."), locale=locale)
        wait = throttle.per_address(hub, BOOKING_BUCKETS, request.client.host if request.client else "",
                                    limit=settings.booking_rate_limit, window_seconds=settings.booking_rate_window_seconds)
        if wait is not None:
            response = _page_error(request, 429, LIMITED, locale=locale, back=_book_path(slug, locale, zone_name))
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        with hub.session() as db:
            meeting_type = _type_or_404(db, slug)
            if meeting_type is None:
                return _page_error(request, 404, N_("There is no such meeting to book."), locale=locale)
            starts_at = _parse_start(start)
            if starts_at is None:
                return _page_error(request, 422, FIELD_MESSAGES["start"], locale=locale, back=_book_path(slug, locale, zone_name))
            visitor = Visitor(name=name, email=email, phone=phone, notes=notes, locale=locale, time_zone=zone_name)
            try:
                meeting = booking.book(db, meeting_type=meeting_type, starts_at=starts_at, visitor=visitor)
                uid = meeting.uid
                db.commit()
            except BookingError as exc:
                db.rollback()
                if exc.field in ("name", "email", "phone"):
                    message = EMAIL_INVALID if exc.field == "email" and email.strip() else FIELD_MESSAGES[exc.field]
                    return _form(request, db, meeting_type, locale=locale, zone_name=zone_name, starts_at=starts_at,
                                 values=values, errors={exc.field: message}, status=422)
                return _booking_error(request, exc, locale=locale, back=_book_path(slug, locale, zone_name))
        return Response(status_code=303, headers={"Location": _manage_path(manage_token(hub.settings, uid), locale, done="booked")})

    def _form(request: Request, db: Any, meeting_type: MeetingType, *, locale: str, zone_name: str, starts_at: datetime,
              values: dict[str, str], errors: dict[str, str] | None = None, status: int = 200) -> Response:
        return _render(
            request, "public/meetings/form.html", locale=locale, time_zone=zone_name, status=status,
            meeting_type=meeting_type, hosts=_host_label(db, meeting_type), starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=meeting_type.duration_minutes), zone_name=zone_name,
            values=values, errors=errors or {}, back=_book_path(meeting_type.slug, locale, zone_name))

    return router


def _book_path(slug: str, locale: str, zone_name: str) -> str:
    return f"/channels/meetings/{slug}?" + urlencode({"lang": locale, "tz": zone_name})


def _manage_path(token: str, locale: str, *, done: str | None = None) -> str:
    params = {"lang": locale, **({"done": done} if done else {})}
    return f"/channels/meetings/m/{token}?" + urlencode(params)


def _host_label(db: Any, meeting_type: MeetingType) -> str:
    if meeting_type.team_name:
        return meeting_type.team_name
    return booking.host_name(db, meeting_type.host_ids[0]) if meeting_type.host_ids else ""


def _can_change(meeting: Meeting, meeting_type: MeetingType) -> bool:
    return meeting.status == MeetingStatus.BOOKED and \
        meeting.starts_at - clock.now() >= timedelta(minutes=meeting_type.min_notice_minutes)


def _meeting_by_token(request: Request, db: Any, token: str, *, lang: str = "") -> tuple[Meeting, MeetingType] | Response:
    hub = _hub(request)
    try:
        payload = unsign(hub.settings, MANAGE_PURPOSE, token)
        uid = payload["u"] if isinstance(payload, dict) and isinstance(payload.get("u"), str) else None
    except BadLink:
        uid = None
    meeting = db.scalars(select(Meeting).where(Meeting.uid == uid)).first() if uid else None
    if meeting is None:
        return _page_error(request, 404, N_("This link is not valid. Use the latest link from your email or message."),
                           locale=lang if lang in ("ru", "en") else None)
    meeting_type = db.get(MeetingType, meeting.meeting_type_id)
    return meeting, meeting_type


def _too_late(request: Request, locale: str, token: str, meeting: Meeting) -> Response:
    message = N_("This meeting can no longer be changed online. Please contact us.") \
        if meeting.status == MeetingStatus.BOOKED else N_("This meeting is no longer booked.")
    return _page_error(request, 409, message, locale=locale, back=_manage_path(token, locale))


def _booking_error(request: Request, exc: BookingError, *, locale: str, back: str) -> Response:
    if isinstance(exc, SlotTaken):
        message = N_("Sorry, that time has just been booked by someone else. Please choose another one.")
    elif isinstance(exc, TooLate):
        message = N_("This meeting can no longer be changed online. Please contact us.")
    elif exc.code == "wrong-state":
        message = N_("This meeting is no longer booked.")
    else:
        message = FIELD_MESSAGES["start"]
    return _page_error(request, exc.status, message, locale=locale, back=back)
