"""One timeline event per call, kept current as Twilio's callbacks arrive (in any order, repeated).

The event (channel "phone", kind "call") is posted when the call starts ringing, with the CallSid as
its external id (click-to-call events use the hub's own "dial:" reference, since the call exists
before Twilio names it). Each callback adds facts to its data: the call status (which only moves
forward), who answered, durations, recordings. The outcome shown on the timeline is computed from
all the facts, so the order they came in does not matter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from channels.twilio_common.timeline import merged, update_event
from hub import live
from hub.db import after_commit
from hub.ingest import IdentityRef, InboundEvent, IngestResult, post_event
from hub.models import Direction, IdentityKind, TimelineEvent

CHANNEL = "phone"
CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# How Twilio shows a withheld caller id: the number +266696687 ("ANONYMOUS" on a keypad) or a word.
WITHHELD = frozenset({"+266696687", "anonymous", "restricted", "unknown", "private", "unavailable", ""})


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    FAILED = "failed"


# Twilio's call statuses on a forward-only ladder; the final ones never replace each other.
STATUS_RANK = {"queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2,
               "completed": 3, "busy": 3, "no-answer": 3, "failed": 3, "canceled": 3}
FINAL = frozenset(s for s, r in STATUS_RANK.items() if r == 3)


def _value(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is not None and not isinstance(value, str):
        raise ValueError(f"Twilio parameter {key} must be a string")
    return value


def _required(payload: Mapping[str, Any], key: str) -> str:
    value = _value(payload, key)
    if not value:
        raise ValueError(f"a Twilio voice webhook needs {key}")
    return value


def call_sid(payload: Any) -> str:
    if not isinstance(payload, Mapping):
        raise ValueError("a Twilio webhook is a set of form parameters")
    sid = _value(payload, "CallSid") or ""
    if not CALL_SID.match(sid):
        raise ValueError("CallSid is missing or is not a Twilio call SID")
    return sid


def party_identity(number: str) -> IdentityRef:
    """The customer's identity: their E.164 number; withheld caller ids share one "anonymous" contact."""
    if number.strip().lower() in WITHHELD:
        return IdentityRef(kind=IdentityKind.EXTERNAL, value="phone:anonymous")
    if E164.match(number):
        return IdentityRef(kind=IdentityKind.PHONE, value=number)
    return IdentityRef(kind=IdentityKind.EXTERNAL, value=f"phone:{number.strip().lower()}")


def thread_key(ours: str, theirs: str) -> str:
    return f"phone:{ours}:{theirs}"


def parse_call(payload: Any) -> InboundEvent:
    """A voice webhook or call status callback as the call's event (pure)."""
    sid = call_sid(payload)
    sender, recipient = _required(payload, "From"), _required(payload, "To")
    status = _required(payload, "CallStatus").lower()
    if status not in STATUS_RANK:
        raise ValueError(f"unknown Twilio call status {status!r}")
    twilio_direction = _required(payload, "Direction")
    inbound = twilio_direction == "inbound"
    ours, theirs = (recipient, sender) if inbound else (sender, recipient)
    data = {"call_sid": sid, "from": sender, "to": recipient, "direction": "in" if inbound else "out",
            "twilio_direction": twilio_direction, "call_status": status, "outcome": None}
    return InboundEvent(
        channel=CHANNEL,
        kind="call",
        direction=Direction.IN if inbound else Direction.OUT,
        external_id=sid,
        identities=[party_identity(theirs)],
        display_name=_value(payload, "CallerName") if inbound else None,
        subject="Incoming call" if inbound else "Outgoing call",
        text=describe(data),
        thread_key=thread_key(ours, theirs),
        status=status,
        data=data,
    )


def outcome(data: Mapping[str, Any]) -> CallOutcome | None:
    """What the call came to, from everything known so far; None while it is still going."""
    status = data.get("call_status")
    if data.get("answered"):
        return CallOutcome.ANSWERED
    if data.get("voicemail"):
        return CallOutcome.VOICEMAIL
    if status not in FINAL and data.get("dial_status") is None:
        return None
    if status == "busy" or (status in FINAL and data.get("dial_status") == "busy"):
        return CallOutcome.BUSY
    if status == "failed":
        return CallOutcome.FAILED
    return CallOutcome.MISSED if status in FINAL else None


def _duration(seconds: Any) -> str:
    seconds = int(seconds or 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def describe(data: Mapping[str, Any]) -> str:
    """The line the timeline shows for a call."""
    inbound = data.get("direction", "in") == "in"
    who = data.get("from") if inbound else data.get("to")
    if who:
        head = f"{'Call from' if inbound else 'Call to'} {who}"
    else:
        head = "Incoming call" if inbound else "Outgoing call"
    result = data.get("outcome")
    if result == CallOutcome.ANSWERED:
        agent = data.get("agent_label") or data.get("answered_by")
        tail = f"answered{f' by {agent}' if agent else ''}"
        if data.get("talk_seconds") or data.get("duration_seconds"):
            tail += f", {_duration(data.get('talk_seconds') or data.get('duration_seconds'))}"
    elif result == CallOutcome.VOICEMAIL:
        tail = f"voicemail ({_duration(data.get('voicemail_seconds'))})"
    elif result:
        tail = str(result)
    else:
        tail = str(data.get("call_status") or "ringing")
    return f"{head}: {tail}"


def apply_facts(event: TimelineEvent, facts: Mapping[str, Any]) -> bool:
    """Merge callback facts into the event (status forward only); whether anything changed."""
    data = dict(event.data or {})
    new = {k: v for k, v in facts.items() if v is not None}
    status = new.pop("call_status", None)
    if status is not None:
        current = data.get("call_status") or event.status
        if current is None or (STATUS_RANK.get(status, -1) > STATUS_RANK.get(current, -1)):
            new["call_status"] = status
    recording = new.pop("recording", None)
    if recording is not None:
        recordings = {r["sid"]: r for r in data.get("recordings", [])}
        recordings.setdefault(recording["sid"], recording)
        new["recordings"] = sorted(recordings.values(), key=lambda r: r["sid"])
        new.setdefault("recording_url", data.get("recording_url") or recording["url"])
    # Durations only grow: a repeated early callback must not shorten a finished call.
    for key in ("duration_seconds", "talk_seconds", "voicemail_seconds"):
        if key in new and int(new[key]) <= int(data.get(key) or 0):
            del new[key]
    if new.get("answered") is False and data.get("answered"):
        del new["answered"]
    combined = merged(data, **new)
    combined["outcome"] = outcome(combined)
    if combined == data:
        return False
    event.data = combined
    event.status = combined.get("call_status") or event.status
    event.text = describe(combined)
    if combined.get("agent_user_id") and event.actor_user_id is None:
        event.actor_user_id = combined["agent_user_id"]
    return True


def record_facts(session: Session, *, external_id: str, facts: Mapping[str, Any]) -> TimelineEvent | None:
    """Add facts to the call's event; None when the hub has no event for this call."""
    return update_event(session, channel=CHANNEL, external_id=external_id, change=lambda e: apply_facts(e, facts))


def call_started(session: Session, *, event: InboundEvent) -> IngestResult:
    """Post the call's event (once) and, for a new inbound call still going, pop the caller's card."""
    result = post_event(session, event=event)
    if not result.created:
        record_facts(session, external_id=event.external_id or "", facts={"call_status": event.status})
        return result
    if event.direction == Direction.IN and event.status not in FINAL:
        hub = session.info["hub"]
        message = {
            "type": "call.incoming",
            "contact_id": result.contact.id,
            "contact_created": result.contact_created,
            "event_id": result.event.id,
            "call_sid": event.external_id,
            "from": event.data.get("from"),
            "to": event.data.get("to"),
        }
        after_commit(session, lambda: hub.broker.publish(live.AGENTS_TOPIC, message))
    return result
