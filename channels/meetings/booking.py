"""Booking, moving, cancelling and closing meetings: each is one unit of work in the caller's session.

Every change lands on the contact's timeline through `hub.ingest.post_event` (kinds meeting.booked,
meeting.rescheduled, meeting.cancelled, meeting.completed, meeting.no_show), sends the attendee the
new version of the invitation and re-plans the reminders, all inside the same transaction. The slot
check here gives a friendly answer; the database constraint (see models) is what makes a second
booking of the same time impossible when two requests race.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import clock
from hub.event_updates import complete_event
from hub.identities import InvalidIdentity, normalize_email, normalize_phone
from hub.ingest import IdentityRef, InboundEvent, post_event
from hub.models import Direction, IdentityKind, User
from channels.meetings import notify
from channels.meetings.models import LocationKind, Meeting, MeetingStatus, MeetingType, is_overlap
from channels.meetings.slots import UTC, free_slots, host_calendars, zone_or_none

if TYPE_CHECKING:
    from hub.runtime import Hub

CHANNEL = "meetings"


class Actor(StrEnum):
    CUSTOMER = "customer"  # through a public page or a signed link: the minimum notice applies
    AGENT = "agent"


class BookingError(Exception):
    """A booking change that cannot be made; `code` is stable, the message is for logs and the API."""

    code = "invalid"
    status = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class SlotTaken(BookingError):
    """Someone else holds that time (the check, or the database constraint, said so)."""

    code = "slot-taken"
    status = 409


class NotAvailable(BookingError):
    """The time is outside the host's hours, inside the minimum notice or past the horizon."""

    code = "not-available"


class TooLate(BookingError):
    """A customer's change inside the minimum notice before the meeting."""

    code = "too-late"
    status = 409


class WrongState(BookingError):
    """The meeting was already cancelled or closed."""

    code = "wrong-state"
    status = 409


@dataclass(frozen=True)
class Visitor:
    name: str
    email: str | None = None
    phone: str | None = None
    notes: str = ""
    locale: str = "ru"
    time_zone: str = "UTC"


def clean_visitor(visitor: Visitor, *, region: str) -> Visitor:
    """Normalized contact details; BookingError names the field that is wrong."""
    name = " ".join((visitor.name or "").split())[:300]
    if not name:
        raise BookingError("a name is required", field="name")
    email = phone = None
    if visitor.email and visitor.email.strip():
        try:
            email = normalize_email(visitor.email)
        except InvalidIdentity:
            raise BookingError("that is not a valid email address", field="email") from None
    if visitor.phone and visitor.phone.strip():
        try:
            phone = normalize_phone(visitor.phone, region)
        except InvalidIdentity:
            raise BookingError("that is not a valid phone number", field="phone") from None
    if not (email or phone):
        raise BookingError("an email or a phone number is required", field="email")
    zone = visitor.time_zone if zone_or_none(visitor.time_zone) else "UTC"
    return Visitor(name=name, email=email, phone=phone, notes=(visitor.notes or "")[:2000],
                   locale=visitor.locale if visitor.locale in ("ru", "en") else "ru", time_zone=zone)


def _hosts_free_at(session: Session, hub: Hub, meeting_type: MeetingType, starts_at: datetime, *, now: datetime,
                   ignore_meeting_id: int | None = None) -> list[int]:
    """The type's hosts free for a meeting starting at `starts_at`; SlotTaken or NotAvailable if none."""
    window = (starts_at, starts_at + timedelta(seconds=1))
    calendars = host_calendars(session, host_ids=list(meeting_type.host_ids), start=window[0], end=window[1],
                               default_zone=hub.settings.default_timezone, ignore_meeting_id=ignore_meeting_id)
    found = [s for s in free_slots(meeting_type, calendars, now=now, start=window[0], end=window[1])
             if s.starts_at == starts_at]
    if found:
        return _fairest_first(session, list(found[0].host_ids), now=now)
    for cal in calendars:
        cal.busy = []
    if any(s.starts_at == starts_at for s in free_slots(meeting_type, calendars, now=now, start=window[0], end=window[1])):
        raise SlotTaken("that time has just been booked by someone else")
    raise NotAvailable("that time cannot be booked", field="start")


def _fairest_first(session: Session, hosts: list[int], *, now: datetime) -> list[int]:
    """A team's free members, those with the fewest upcoming meetings first (round robin by load)."""
    if len(hosts) < 2:
        return hosts
    load = dict(session.execute(
        select(Meeting.host_id, func.count()).where(Meeting.host_id.in_(hosts), Meeting.status == MeetingStatus.BOOKED,
                                                   Meeting.starts_at >= now).group_by(Meeting.host_id)).all())
    return sorted(hosts, key=lambda h: (load.get(h, 0), hosts.index(h)))


def for_actor(meeting_type: MeetingType, actor: Actor) -> MeetingType:
    """The type as the actor may book it: agents are not bound by the minimum notice."""
    if actor == Actor.CUSTOMER or meeting_type.min_notice_minutes == 0:
        return meeting_type
    return MeetingType(**{**meeting_type.model_dump(), "min_notice_minutes": 0})


def _blocked(meeting_type: MeetingType, starts_at: datetime) -> dict[str, datetime]:
    ends_at = starts_at + timedelta(minutes=meeting_type.duration_minutes)
    return dict(starts_at=starts_at, ends_at=ends_at,
                blocked_from=starts_at - timedelta(minutes=meeting_type.buffer_before_minutes),
                blocked_until=ends_at + timedelta(minutes=meeting_type.buffer_after_minutes))


def _claim(session: Session, values: dict[str, Any], hosts: list[int], *, meeting_id: int | None = None) -> int:
    """Insert (or move) the meeting for the first host the database lets have it; its host id."""
    for host_id in hosts:
        savepoint = session.begin_nested()
        try:
            if meeting_id is None:
                session.execute(Meeting.__table__.insert().values(**values, host_id=host_id))
            else:
                session.execute(update(Meeting).where(Meeting.id == meeting_id).values(**values, host_id=host_id))
            savepoint.commit()
            return host_id
        except IntegrityError as exc:
            savepoint.rollback()
            if not is_overlap(exc):
                raise
    raise SlotTaken("that time has just been booked by someone else")


def _event_data(meeting: Meeting, meeting_type: MeetingType, **extra: Any) -> dict[str, Any]:
    return {"meeting_id": meeting.id, "uid": meeting.uid, "meeting_type": meeting_type.slug,
            "starts_at": meeting.starts_at.isoformat(), "ends_at": meeting.ends_at.isoformat(),
            "host_id": meeting.host_id, "sequence": meeting.sequence, **extra}


def book(session: Session, *, meeting_type: MeetingType, starts_at: datetime, visitor: Visitor,
         actor: Actor = Actor.CUSTOMER, contact_id: int | None = None, actor_user_id: int | None = None) -> Meeting:
    """Book `starts_at` for the visitor; the contact is found by email/phone (or created), never duplicated."""
    hub: Hub = session.info["hub"]
    now = clock.now()
    if not meeting_type.active:
        raise NotAvailable("this meeting type is not open for booking")
    visitor = clean_visitor(visitor, region=hub.settings.default_region)
    starts_at = starts_at.astimezone(UTC)
    hosts = _hosts_free_at(session, hub, for_actor(meeting_type, actor), starts_at, now=now)
    uid = f"{uuid.uuid4().hex}@{_uid_domain(hub)}"
    identities = [IdentityRef(kind=IdentityKind.EMAIL, value=visitor.email)] if visitor.email else []
    identities += [IdentityRef(kind=IdentityKind.PHONE, value=visitor.phone)] if visitor.phone else []
    times = _blocked(meeting_type, starts_at)
    posted = post_event(session, event=InboundEvent(
        channel=CHANNEL, kind="meeting.booked", direction=Direction.IN if actor == Actor.CUSTOMER else Direction.INTERNAL,
        external_id=f"meeting:{uid}:booked", contact_id=contact_id, identities=identities if contact_id is None else [],
        display_name=visitor.name, subject=meeting_type.name,
        text=_when_text(starts_at, times["ends_at"], visitor.time_zone, visitor.notes),
        data={"uid": uid, "meeting_type": meeting_type.slug, "starts_at": starts_at.isoformat(),
              "ends_at": times["ends_at"].isoformat(), "time_zone": visitor.time_zone},
        actor_user_id=actor_user_id))
    if posted.contact_created:  # what the visitor chose is the best we know of a new contact
        posted.contact.locale = posted.contact.locale or visitor.locale
        posted.contact.time_zone = posted.contact.time_zone or visitor.time_zone
    values = dict(uid=uid, meeting_type_id=meeting_type.id, contact_id=posted.contact.id, status=MeetingStatus.BOOKED.value,
                  sequence=0, name=visitor.name, email=visitor.email, phone=visitor.phone, notes=visitor.notes,
                  locale=visitor.locale, visitor_time_zone=visitor.time_zone, location=_location(meeting_type, visitor),
                  booked_by_user_id=actor_user_id, created_at=now, updated_at=now, **times)
    _claim(session, values, hosts)
    meeting = session.scalars(select(Meeting).where(Meeting.uid == uid)).one()
    complete_event(session, posted.event, **_event_data(meeting, meeting_type, time_zone=visitor.time_zone))
    notify.meeting_changed(session, meeting=meeting, meeting_type=meeting_type, now=now)
    return meeting


def _when_text(starts_at: datetime, ends_at: datetime, zone_name: str, extra: str = "") -> str:
    """The meeting's time for the timeline, in the customer's zone and language-neutral (stored once)."""
    zone = zone_or_none(zone_name) or UTC
    local_start, local_end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    when = f"{local_start:%Y-%m-%d %H:%M}–{local_end:%H:%M} ({zone_name})"
    return f"{when}\n{extra}" if extra else when


def _location(meeting_type: MeetingType, visitor: Visitor) -> str:
    # A phone meeting without a number of ours to dial means we call the customer.
    if not meeting_type.location and meeting_type.location_kind == LocationKind.PHONE and visitor.phone:
        return visitor.phone
    return meeting_type.location


def _uid_domain(hub: Hub) -> str:
    from urllib.parse import urlsplit

    return urlsplit(hub.settings.public_base_url).hostname or "hub.invalid"


def _check_notice(meeting: Meeting, meeting_type: MeetingType, *, now: datetime) -> None:
    if meeting.starts_at - now < timedelta(minutes=meeting_type.min_notice_minutes):
        raise TooLate("the meeting is too close to change it online")


def _check_open(meeting: Meeting) -> None:
    if meeting.status != MeetingStatus.BOOKED:
        raise WrongState(f"the meeting is {meeting.status}")


def reschedule(session: Session, *, meeting: Meeting, starts_at: datetime, actor: Actor = Actor.CUSTOMER,
               actor_user_id: int | None = None) -> Meeting:
    """Move a booked meeting; SEQUENCE rises, a new invitation goes out and reminders are re-planned."""
    hub: Hub = session.info["hub"]
    now = clock.now()
    meeting_type = session.get(MeetingType, meeting.meeting_type_id)
    assert meeting_type is not None
    _check_open(meeting)
    if actor == Actor.CUSTOMER:
        _check_notice(meeting, meeting_type, now=now)
    if starts_at == meeting.starts_at:
        raise BookingError("the meeting is already at that time", field="start")
    hosts = _hosts_free_at(session, hub, for_actor(meeting_type, actor), starts_at, now=now,
                           ignore_meeting_id=meeting.id)
    if meeting.host_id in hosts:  # keep the same host when they are free
        hosts.remove(meeting.host_id)
        hosts.insert(0, meeting.host_id)
    previous = meeting.starts_at
    times = _blocked(meeting_type, starts_at)
    _claim(session, dict(**times, sequence=meeting.sequence + 1, updated_at=now), hosts, meeting_id=meeting.id)
    session.refresh(meeting)
    post_event(session, event=InboundEvent(
        channel=CHANNEL, kind="meeting.rescheduled",
        direction=Direction.IN if actor == Actor.CUSTOMER else Direction.INTERNAL,
        external_id=f"meeting:{meeting.uid}:rescheduled:{meeting.sequence}", contact_id=meeting.contact_id,
        subject=meeting_type.name, text=_when_text(meeting.starts_at, meeting.ends_at, meeting.visitor_time_zone),
        data=_event_data(meeting, meeting_type, previous_starts_at=previous.isoformat()),
        actor_user_id=actor_user_id))
    notify.meeting_changed(session, meeting=meeting, meeting_type=meeting_type, now=now)
    return meeting


def cancel(session: Session, *, meeting: Meeting, actor: Actor = Actor.CUSTOMER, reason: str = "",
           actor_user_id: int | None = None) -> Meeting:
    """Cancel a booked meeting: METHOD:CANCEL goes out with a higher SEQUENCE, reminders are called off."""
    now = clock.now()
    meeting_type = session.get(MeetingType, meeting.meeting_type_id)
    assert meeting_type is not None
    _check_open(meeting)
    if actor == Actor.CUSTOMER:
        _check_notice(meeting, meeting_type, now=now)
    meeting.status = MeetingStatus.CANCELLED.value
    meeting.sequence += 1
    meeting.cancelled_at = meeting.updated_at = now
    session.flush()
    post_event(session, event=InboundEvent(
        channel=CHANNEL, kind="meeting.cancelled",
        direction=Direction.IN if actor == Actor.CUSTOMER else Direction.INTERNAL,
        external_id=f"meeting:{meeting.uid}:cancelled", contact_id=meeting.contact_id, subject=meeting_type.name,
        text=_when_text(meeting.starts_at, meeting.ends_at, meeting.visitor_time_zone, reason[:2000]),
        data=_event_data(meeting, meeting_type, by=actor.value), actor_user_id=actor_user_id))
    notify.meeting_changed(session, meeting=meeting, meeting_type=meeting_type, now=now)
    return meeting


def close(session: Session, *, meeting: Meeting, status: MeetingStatus, actor_user_id: int | None = None) -> Meeting:
    """Mark a meeting completed (fires the `meeting.completed` trigger) or a no-show, once it has started."""
    if status not in (MeetingStatus.COMPLETED, MeetingStatus.NO_SHOW):
        raise BookingError("a meeting closes as completed or no_show", field="status")
    now = clock.now()
    meeting_type = session.get(MeetingType, meeting.meeting_type_id)
    assert meeting_type is not None
    _check_open(meeting)
    if meeting.starts_at > now:
        raise WrongState("the meeting has not started yet")
    meeting.status = status.value
    meeting.updated_at = now
    session.flush()
    post_event(session, event=InboundEvent(
        channel=CHANNEL, kind=f"meeting.{status.value}", direction=Direction.INTERNAL,
        external_id=f"meeting:{meeting.uid}:{status.value}", contact_id=meeting.contact_id, subject=meeting_type.name,
        data=_event_data(meeting, meeting_type), actor_user_id=actor_user_id))
    notify.cancel_reminders(session, meeting=meeting)
    return meeting


def host_name(session: Session, host_id: int) -> str:
    user = session.get(User, host_id)
    return (user.display_name or user.email) if user else ""
