"""What a meeting sends: invitations with iCalendar (REQUEST, CANCEL) and reminders, all through the outbox.

Invitations are enqueued in the transaction that changed the meeting, keyed by UID and SEQUENCE, so a
retried request adds nothing. Reminders are rows (`MeetingReminder`) planned per meeting version; the
`meetings.queue_reminders` tick hands each one to the outbox when it is due, after checking that the
meeting still stands and the contact has not withdrawn consent for that channel. Their outbox key is
meeting + channel + offset + sequence, so however often the tick or the worker restarts, each
reminder of each version is sent once; a moved or cancelled meeting cancels the old version's rows
and any of their deliveries still queued.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock, outbox
from hub.contacts import consent_status
from hub.models import ConsentStatus, Purpose, User
from hub.signing import sign
from hub.web import i18n
from channels.meetings.ics import build_ics
from channels.meetings.models import Meeting, MeetingReminder, MeetingStatus, MeetingType, ReminderStatus

if TYPE_CHECKING:
    from hub.runtime import Hub
    from hub.settings import Settings

log = logging.getLogger("channels.meetings")

MANAGE_PURPOSE = "meetings.manage"
_ENV = Environment(
    loader=FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),  # messages/meetings/…
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def manage_token(settings: Settings, uid: str) -> str:
    """The signed token of a meeting's customer links (reschedule, cancel): no id, nothing guessable."""
    return sign(settings, MANAGE_PURPOSE, {"u": uid})


def manage_url(settings: Settings, uid: str, *, locale: str | None = None) -> str:
    url = f"{settings.public_base_url.rstrip('/')}/channels/meetings/m/{manage_token(settings, uid)}"
    return f"{url}?lang={locale}" if locale else url


def usable(hub: Hub, channel: str) -> bool:
    adapter = hub.channels.get(channel)
    return adapter is not None and adapter.configured


def consent_withdrawn(session: Session, *, contact_id: int, channel: str) -> bool:
    """Whether the contact withdrew transactional consent on `channel` (invitations and reminders are transactional)."""
    return consent_status(session, contact_id=contact_id, channel=channel, purpose=Purpose.TRANSACTIONAL) \
        == ConsentStatus.WITHDRAWN


def _context(session: Session, hub: Hub, meeting: Meeting, meeting_type: MeetingType) -> dict[str, Any]:
    locale = meeting.locale if meeting.locale in i18n.LOCALES else hub.settings.default_locale
    translations = i18n.package_translations(locale, "meetings")
    host = session.get(User, meeting.host_id)
    return {
        "_": translations.gettext, "gettext": translations.gettext, "ngettext": translations.ngettext,
        "fmt": i18n.Formatter(meeting.locale, i18n.zone(meeting.visitor_time_zone, hub.settings.default_timezone)),
        "meeting": meeting, "meeting_type": meeting_type, "host_name": (host.display_name or host.email) if host else "",
        "manage_url": manage_url(hub.settings, meeting.uid, locale=meeting.locale), "locale": meeting.locale,
        "time_zone": meeting.visitor_time_zone,
    }


def render(template: str, ctx: dict[str, Any]) -> str:
    return _ENV.get_template(f"messages/meetings/{template}").render(ctx)


def _plain(html: str) -> str:
    from hub.html import html_to_text

    return html_to_text(html, links=True)  # the text part of a message we send: links keep their address


def _sms_text(html: str) -> str:
    return " ".join(Markup(html).striptags().split())


def invitation_ics(session: Session, hub: Hub, meeting: Meeting, meeting_type: MeetingType, *, now: datetime,
                   method: str | None = None) -> tuple[str, str]:
    """(METHOD, iCalendar text) of the meeting's current version: REQUEST, or CANCEL once cancelled;
    PUBLISH for the file a customer downloads."""
    ctx = _context(session, hub, meeting, meeting_type)
    cancelled = meeting.status == MeetingStatus.CANCELLED
    method = method or ("CANCEL" if cancelled else "REQUEST")
    host = session.get(User, meeting.host_id)
    organizer = _organizer_address(hub) or (host.email if host else "meetings@hub.invalid")
    description = Markup(render("ics_description.html", ctx)).unescape().strip()
    ics = build_ics(method=method, uid=meeting.uid, sequence=meeting.sequence, starts_at=meeting.starts_at,
                    ends_at=meeting.ends_at, stamp=now,
                    summary=f"{meeting_type.name}: {meeting.name}" if meeting.name else meeting_type.name,
                    description=description, location=meeting.location, organizer_email=organizer,
                    organizer_name=ctx["host_name"], attendee_email=meeting.email, attendee_name=meeting.name,
                    host_email=host.email if host else None, host_name=ctx["host_name"], cancelled=cancelled,
                    url=ctx["manage_url"])
    return method, ics


def _organizer_address(hub: Hub) -> str | None:
    email = hub.channels.get("email")
    return getattr(getattr(email, "settings", None), "from_address", None) if email is not None else None


def meeting_changed(session: Session, *, meeting: Meeting, meeting_type: MeetingType, now: datetime) -> None:
    """After a booking, a move or a cancellation: tell the attendee and re-plan reminders."""
    hub: Hub = session.info["hub"]
    cancel_reminders(session, meeting=meeting)
    if meeting.status == MeetingStatus.BOOKED:
        plan_reminders(session, meeting=meeting, meeting_type=meeting_type, now=now)
    ctx = _context(session, hub, meeting, meeting_type)
    kind = "cancelled" if meeting.status == MeetingStatus.CANCELLED else ("booked" if meeting.sequence == 0 else "moved")
    ctx["change"] = kind
    if meeting.email and usable(hub, "email") and not consent_withdrawn(session, contact_id=meeting.contact_id, channel="email"):
        method, ics = invitation_ics(session, hub, meeting, meeting_type, now=now)
        html = render("invitation.html", ctx)
        subject = _plain(render("invitation_subject.html", ctx)).strip()
        outbox.enqueue(session, channel="email", address=meeting.email, contact_id=meeting.contact_id,
                       purpose=Purpose.TRANSACTIONAL, idempotency_key=f"meeting:{meeting.uid}:{method.lower()}:{meeting.sequence}",
                       content={"subject": subject, "html": html, "text": _plain(html), "to_name": meeting.name,
                                "calendar": {"method": method, "ics": ics}})
    elif meeting.phone and usable(hub, "sms") and not consent_withdrawn(session, contact_id=meeting.contact_id, channel="sms"):
        outbox.enqueue(session, channel="sms", address=meeting.phone, contact_id=meeting.contact_id,
                       purpose=Purpose.TRANSACTIONAL, idempotency_key=f"meeting:{meeting.uid}:sms:{kind}:{meeting.sequence}",
                       content={"text": _sms_text(render("sms_confirmation.html", ctx))})
    _tell_host(session, hub, meeting=meeting, meeting_type=meeting_type, kind=kind, now=now)


def _tell_host(session: Session, hub: Hub, *, meeting: Meeting, meeting_type: MeetingType, kind: str, now: datetime) -> None:
    """The host gets the same calendar entry (same UID and SEQUENCE), in their own language and zone."""
    host = session.get(User, meeting.host_id)
    if host is None or not host.email or not usable(hub, "email"):
        return
    locale = host.locale if host.locale in i18n.LOCALES else hub.settings.default_locale
    translations = i18n.package_translations(locale, "meetings")
    ctx = {**_context(session, hub, meeting, meeting_type), "change": kind, "locale": locale,
           "_": translations.gettext, "gettext": translations.gettext, "ngettext": translations.ngettext,
           "fmt": i18n.Formatter(locale, i18n.zone(host.time_zone, hub.settings.default_timezone)),
           "time_zone": host.time_zone or hub.settings.default_timezone,
           "agent_url": f"{hub.settings.public_base_url.rstrip('/')}/meetings/{meeting.id}"}
    method, ics = invitation_ics(session, hub, meeting, meeting_type, now=now)
    html = render("host.html", ctx)
    # No contact: the host's copy is not part of the customer's timeline.
    outbox.enqueue(session, channel="email", address=host.email, purpose=Purpose.TRANSACTIONAL,
                   idempotency_key=f"meeting:{meeting.uid}:host:{method.lower()}:{meeting.sequence}",
                   content={"subject": _plain(render("host_subject.html", ctx)).strip(), "html": html,
                            "text": _plain(html), "to_name": ctx["host_name"], "calendar": {"method": method, "ics": ics}})


def _address(meeting: Meeting, channel: str) -> str | None:
    return {"email": meeting.email, "sms": meeting.phone}.get(channel)


def plan_reminders(session: Session, *, meeting: Meeting, meeting_type: MeetingType, now: datetime) -> int:
    """Reminder rows for this version of the meeting; offsets already past are left out. How many."""
    hub: Hub = session.info["hub"]
    planned = 0
    for channel in dict.fromkeys(meeting_type.reminder_channels or []):
        if not _address(meeting, channel) or channel not in hub.channels:
            continue
        for offset in sorted(set(meeting_type.reminder_offsets or []), reverse=True):
            due = meeting.starts_at - timedelta(minutes=offset)
            if due <= now:
                continue
            session.add(MeetingReminder(meeting_id=meeting.id, channel=channel, offset_minutes=offset,
                                        sequence=meeting.sequence, due_at=due, created_at=now))
            planned += 1
    session.flush()
    return planned


def cancel_reminders(session: Session, *, meeting: Meeting) -> int:
    """Call off the reminders of every earlier version and of a closed meeting, queued deliveries included."""
    keep_sequence = meeting.sequence if meeting.status == MeetingStatus.BOOKED else None
    rows = session.scalars(select(MeetingReminder).where(
        MeetingReminder.meeting_id == meeting.id,
        MeetingReminder.status.in_([ReminderStatus.PLANNED, ReminderStatus.QUEUED]))).all()
    count = 0
    for row in rows:
        if keep_sequence is not None and row.sequence == keep_sequence:
            continue
        if row.status == ReminderStatus.QUEUED and row.delivery_id is not None:
            outbox.cancel(session, delivery_id=row.delivery_id)
        row.status = ReminderStatus.CANCELLED.value
        count += 1
    session.flush()
    return count


def queue_due(hub: Hub, *, now: datetime | None = None, limit: int = 200) -> int:
    """Hand due reminders to the outbox (the `meetings.queue_reminders` tick); how many were queued."""
    now = now or clock.now()
    queued = 0
    with hub.session() as session, session.begin():
        rows = session.scalars(
            select(MeetingReminder).where(MeetingReminder.status == ReminderStatus.PLANNED, MeetingReminder.due_at <= now)
            .order_by(MeetingReminder.due_at, MeetingReminder.id).limit(limit)
        ).all()
        # After downtime several reminders of one meeting can be due at once: only the nearest one goes.
        nearest: dict[tuple[int, str, int], int] = {}
        for row in rows:
            key3 = (row.meeting_id, row.channel, row.sequence)
            nearest[key3] = min(nearest.get(key3, row.offset_minutes), row.offset_minutes)
        for row in rows:
            meeting = session.get(Meeting, row.meeting_id)
            reason = _skip_reason(session, hub, row, meeting, now=now)
            if not reason and row.offset_minutes != nearest[(row.meeting_id, row.channel, row.sequence)]:
                reason = "a nearer reminder is due"
            if reason:
                row.status, row.note = ReminderStatus.SKIPPED.value, reason
                continue
            assert meeting is not None
            meeting_type = session.get(MeetingType, meeting.meeting_type_id)
            ctx = _context(session, hub, meeting, meeting_type)  # type: ignore[arg-type]
            key = f"meeting:{meeting.uid}:reminder:{row.channel}:{row.offset_minutes}:{row.sequence}"
            if row.channel == "email":
                html = render("reminder.html", ctx)
                content = {"subject": _plain(render("reminder_subject.html", ctx)).strip(), "html": html,
                           "text": _plain(html), "to_name": meeting.name}
            else:
                content = {"text": _sms_text(render("sms_reminder.html", ctx))}
            delivery = outbox.enqueue(session, channel=row.channel, address=_address(meeting, row.channel) or "",
                                      content=content, idempotency_key=key, contact_id=meeting.contact_id,
                                      purpose=Purpose.TRANSACTIONAL, send_after=row.due_at)
            row.status, row.delivery_id = ReminderStatus.QUEUED.value, delivery.id
            queued += 1
    return queued


def _skip_reason(session: Session, hub: Hub, row: MeetingReminder, meeting: Meeting | None, *, now: datetime) -> str:
    if meeting is None or meeting.status != MeetingStatus.BOOKED or meeting.sequence != row.sequence:
        return "the meeting changed"
    if meeting.starts_at <= now:
        return "the meeting has started"
    if not _address(meeting, row.channel):
        return "no address"
    if not usable(hub, row.channel):
        return f"{row.channel} is not configured"
    if consent_withdrawn(session, contact_id=meeting.contact_id, channel=row.channel):
        return "consent withdrawn"
    return ""
