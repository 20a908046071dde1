"""What Twilio is told to do with a call (TwiML), as pure functions of the settings and the time.

An inbound call rings the agents' lines one at a time, each for ring_timeout_seconds; each Dial's
action brings the call back here with the outcome, and the next line rings. When every line has
rung out, or outside business hours, the caller is asked for a voicemail, which is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from twilio.twiml.voice_response import VoiceResponse

from channels.phone.settings import WEEKDAYS, AgentLine, PhoneSettings

UrlFor = Callable[[str], str]  # a route path ("/voice/next?step=2") to the absolute URL Twilio calls


def is_open(settings: PhoneSettings, *, now: datetime, default_zone: str) -> bool:
    """Whether `now` falls in the business hours (no hours configured: always open)."""
    if not settings.business_hours:
        return True
    local = now.astimezone(ZoneInfo(settings.time_zone or default_zone))
    day, moment = WEEKDAYS[local.weekday()], local.time().replace(tzinfo=None)
    return any(day in hours.days and hours.opens <= moment < hours.closes for hours in settings.business_hours)


def _dial(response: VoiceResponse, settings: PhoneSettings, line: AgentLine, *, action: str, url_for: UrlFor) -> None:
    options = {}
    if settings.record_answered_calls:
        options = {"record": "record-from-answer-dual", "recording_status_callback": url_for("/recording"),
                   "recording_status_callback_event": "completed"}
    dial = response.dial(timeout=settings.ring_timeout_seconds, action=action, method="POST",
                         answer_on_bridge=True, **options)
    if line.number:
        dial.number(line.number)
    else:
        dial.client(line.client)


def voicemail(settings: PhoneSettings, *, url_for: UrlFor, closed: bool = False) -> str:
    """Ask for a message and record it; the recording callback puts its link on the call's event."""
    response = VoiceResponse()
    response.say(settings.closed_greeting if closed else settings.voicemail_greeting, language=settings.language)
    response.record(max_length=settings.voicemail_max_seconds, play_beep=True, timeout=5,
                    action=url_for("/voice/voicemail"), method="POST",
                    recording_status_callback=url_for("/recording"), recording_status_callback_event="completed")
    response.hangup()
    return str(response)


def answer(settings: PhoneSettings, *, now: datetime, default_zone: str, url_for: UrlFor) -> str:
    """The first answer to an inbound call: ring the first line, or voicemail."""
    if not is_open(settings, now=now, default_zone=default_zone):
        return voicemail(settings, url_for=url_for, closed=True)
    return ring(settings, step=0, url_for=url_for, greet=True)


def ring(settings: PhoneSettings, *, step: int, url_for: UrlFor, greet: bool = False) -> str:
    """Ring line number `step` of the ring order; voicemail once every line has had its turn."""
    lines = settings.ring_order
    if step >= len(lines):
        return voicemail(settings, url_for=url_for)
    response = VoiceResponse()
    if greet and settings.greeting:
        response.say(settings.greeting, language=settings.language)
    _dial(response, settings, lines[step], action=url_for(f"/voice/next?step={step + 1}"), url_for=url_for)
    return str(response)


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def bridge(settings: PhoneSettings, *, customer: str, ref: str, url_for: UrlFor) -> str:
    """Click-to-call: once the agent's phone answers, dial the customer from the hub's number."""
    response = VoiceResponse()
    options = {}
    if settings.record_answered_calls:
        options = {"record": "record-from-answer-dual", "recording_status_callback": url_for(f"/recording?ref={ref}"),
                   "recording_status_callback_event": "completed"}
    dial = response.dial(caller_id=settings.caller_id, timeout=settings.ring_timeout_seconds,
                         action=url_for(f"/voice/bridged?ref={ref}"), method="POST", **options)
    dial.number(customer)
    return str(response)
