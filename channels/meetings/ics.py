"""iCalendar for invitations (RFC 5545 content, RFC 5546 iTIP methods), built with `icalendar`.

The UID is the meeting's and never changes; SEQUENCE is the meeting's and rises with every change
the attendee must see (a new time, a cancellation), so calendar clients replace the old version
instead of adding a second event. The library escapes text (commas, semicolons, backslashes,
newlines) and folds lines longer than 75 octets.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//The hub//Meetings//EN"


def build_ics(*, method: str, uid: str, sequence: int, starts_at: datetime, ends_at: datetime, stamp: datetime,
              summary: str, description: str, location: str, organizer_email: str, organizer_name: str,
              attendee_email: str | None, attendee_name: str, host_email: str | None = None, host_name: str = "",
              cancelled: bool = False, url: str | None = None) -> str:
    """One VEVENT in a VCALENDAR with METHOD `method` (REQUEST or CANCEL), as CRLF text."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", starts_at)
    event.add("dtend", ends_at)
    event.add("summary", summary)
    if description:
        event.add("description", description)
    if location:
        event.add("location", location)
    if url:
        event.add("url", url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    organizer = vCalAddress(f"mailto:{organizer_email}")
    organizer.params["cn"] = vText(organizer_name or organizer_email)
    event["organizer"] = organizer
    if attendee_email:
        attendee = vCalAddress(f"mailto:{attendee_email}")
        attendee.params["cn"] = vText(attendee_name or attendee_email)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("ACCEPTED")
        event.add("attendee", attendee, encode=False)
    if host_email:
        host = vCalAddress(f"mailto:{host_email}")
        host.params["cn"] = vText(host_name or host_email)
        host.params["role"] = vText("CHAIR")
        host.params["partstat"] = vText("ACCEPTED")
        event.add("attendee", host, encode=False)
    cal.add_component(event)
    return cal.to_ical().decode("utf-8")
