"""A phone call as Twilio would run it: fetch TwiML, follow its verbs, post the callbacks.

Enough of TwiML for the hub's call flows: Say, Play, Pause, Dial (Number, Client; timeout,
action, record), Record (action, recordingStatusCallback), Redirect, Hangup. Who answers is the
server's configuration; time is counted, never slept.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

if TYPE_CHECKING:
    from standins.twilio_local.server import LocalTwilio

MAX_DOCUMENTS = 30  # a loop of Redirects ends the call, as Twilio's own limit does


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


@dataclass
class CallResult:
    """What happened, step by step, for tests and the demo's log."""

    sid: str
    steps: list[str] = field(default_factory=list)
    status: str = "completed"
    duration: int = 0
    answered_by: str | None = None
    recordings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class CallRun:
    """One call through the TwiML it is given; `run` returns its CallResult."""

    def __init__(self, server: LocalTwilio, *, sid: str, params: dict[str, Any], url: str | None,
                 twiml: str | None = None, status_callback: str | None = None,
                 status_events: tuple[str, ...] = ("completed",), answering: dict[str, str] | None = None,
                 voicemail_seconds: int | None = None, talk_seconds: int | None = None) -> None:
        self.server = server
        self.params = params
        self.url = url
        self.twiml = twiml
        self.status_callback = status_callback
        self.status_events = status_events
        self.answering = {**server.answering, **(answering or {})}
        self.voicemail_seconds = server.voicemail_seconds if voicemail_seconds is None else voicemail_seconds
        self.talk_seconds = server.talk_seconds if talk_seconds is None else talk_seconds
        self.result = CallResult(sid=sid)
        self.sequence = 0
        self.hung_up = False

    # --- callbacks ---------------------------------------------------------------------------

    def _status(self, event: str, status: str, **extra: Any) -> None:
        self.params["CallStatus"] = status
        if self.status_callback and event in self.status_events:
            params = {**self.params, "CallbackSource": "call-progress-events", "SequenceNumber": str(self.sequence),
                      "Timestamp": self.server.rfc2822(), **extra}
            self.sequence += 1
            self.server.signer.post(self.status_callback, params)

    def _fetch(self, url: str, extra: dict[str, Any] | None = None) -> str | None:
        delivered = self.server.signer.post(url, {**self.params, **(extra or {})})
        if delivered.status_code != 200:
            self.result.errors.append(f"{url} answered {delivered.status_code or delivered.error}")
            return None
        return delivered.body

    # --- the call ----------------------------------------------------------------------------

    def run(self, *, callee: str | None = None) -> CallResult:
        """Run the call; `callee` (outbound calls) answers first, or the call ends busy or unanswered."""
        self._status("initiated", "queued")
        if callee is not None:
            behaviour = self.answering.get(callee, "answer")
            self._status("ringing", "ringing")
            if behaviour != "answer":
                self.result.steps.append(f"call {callee}: {behaviour}")
                self.result.status, self.result.duration = behaviour, 0
                self._status("completed", behaviour, CallDuration="0", Duration="0")
                return self.result
            self.result.steps.append(f"call {callee}: answered")
            self._status("answered", "in-progress")
        else:
            self.params["CallStatus"] = "ringing"
        document, base = (self.twiml, self.url) if self.twiml else (self._fetch(self.url) if self.url else None, self.url)
        documents = 0
        while document is not None and not self.hung_up and documents < MAX_DOCUMENTS:
            documents += 1
            self.params["CallStatus"] = "in-progress"
            document, base = self._execute(document, base)
        if documents >= MAX_DOCUMENTS:
            self.result.errors.append("too many TwiML documents; the call was ended")
        self.result.status = "completed"
        duration = str(self.result.duration)
        self._status("completed", "completed", CallDuration=duration, Duration=duration)
        return self.result

    def _execute(self, document: str, base: str | None) -> tuple[str | None, str | None]:
        """Run one TwiML document; the next document to run (from an action or Redirect), if any."""
        try:
            root = ET.fromstring(document)
        except ET.ParseError as exc:
            self.result.errors.append(f"the TwiML is not XML: {exc}")
            return None, None
        if root.tag != "Response":
            self.result.errors.append(f"the TwiML root is <{root.tag}>, not <Response>")
            return None, None
        for verb in root:
            attrs = verb.attrib
            if verb.tag in ("Say", "Play"):
                self.result.steps.append(f"{verb.tag.lower()}: {(verb.text or '').strip()}")
                self.result.duration += 3
            elif verb.tag == "Pause":
                self.result.duration += int(attrs.get("length", "1"))
            elif verb.tag == "Hangup":
                self.result.steps.append("hangup")
                self.hung_up = True
                return None, None
            elif verb.tag == "Redirect":
                target = self._url(base, (verb.text or "").strip())
                return self._fetch(target), target
            elif verb.tag == "Dial":
                outcome = self._dial(verb, base)
                if outcome is not None:
                    return outcome
            elif verb.tag == "Record":
                outcome = self._record(verb, base)
                if outcome is not None:
                    return outcome
            else:
                self.result.errors.append(f"unsupported verb <{verb.tag}>")
        self.hung_up = True  # the end of a document ends the call
        return None, None

    def _dial(self, verb: ET.Element, base: str | None) -> tuple[str | None, str | None] | None:
        attrs = verb.attrib
        timeout = int(attrs.get("timeout", "30"))
        targets = []
        for noun in verb:
            if noun.tag == "Number":
                targets.append((noun.text or "").strip())
            elif noun.tag == "Client":
                identity = noun.findtext("Identity") or noun.text or ""
                targets.append("client:" + identity.strip())
        if not targets and verb.text and verb.text.strip():
            targets.append(verb.text.strip())
        behaviours = [self.answering.get(t, "no-answer") for t in targets]
        answered = next((t for t, b in zip(targets, behaviours, strict=True) if b == "answer"), None)
        dial_sid = new_sid("CA")
        if answered is not None:
            status, talk = "completed", self.talk_seconds
            self.result.answered_by = answered
            self.result.duration += 5 + talk
            self.result.steps.append(f"dial {', '.join(targets)}: answered by {answered}")
            if attrs.get("record", "do-not-record") != "do-not-record":
                self._recording(attrs.get("recordingStatusCallback"), base, talk, source="DialVerb")
        else:
            status = "busy" if behaviours and all(b == "busy" for b in behaviours) else (
                "failed" if behaviours and all(b == "failed" for b in behaviours) else "no-answer")
            talk = 0
            self.result.duration += 0 if status in ("busy", "failed") else timeout
            self.result.steps.append(f"dial {', '.join(targets)}: {status}")
        action = attrs.get("action")
        if action:
            target = self._url(base, action)
            extra = {"DialCallStatus": status, "DialCallSid": dial_sid, "DialCallDuration": str(talk)}
            return self._fetch(target, extra), target
        if answered is not None:
            self.hung_up = True  # the caller hangs up after the conversation
            return None, None
        return None

    def _record(self, verb: ET.Element, base: str | None) -> tuple[str | None, str | None] | None:
        attrs = verb.attrib
        seconds = min(self.voicemail_seconds, int(attrs.get("maxLength", "3600")))
        if seconds <= 0:
            self.result.steps.append("record: the caller hung up without a message")
            self.hung_up = True
            return None, None
        self.result.duration += seconds
        recording_sid, url = self._recording(attrs.get("recordingStatusCallback"), base, seconds, source="RecordVerb")
        self.result.steps.append(f"record: {seconds} s message")
        self.hung_up = True  # the caller leaves the message and hangs up
        action = attrs.get("action")
        if action:
            target = self._url(base, action)
            self._fetch(target, {"RecordingUrl": url, "RecordingSid": recording_sid,
                                 "RecordingDuration": str(seconds), "Digits": "hangup"})
        return None, None

    def _recording(self, callback: str | None, base: str | None, seconds: int, *, source: str) -> tuple[str, str]:
        sid = new_sid("RE")
        url = self.server.recording_url(sid)
        self.result.recordings.append(url)
        if callback:
            self.server.signer.post(self._url(base, callback), {
                "AccountSid": self.server.account_sid,
                "CallSid": self.params["CallSid"],
                "RecordingSid": sid,
                "RecordingUrl": url,
                "RecordingStatus": "completed",
                "RecordingDuration": str(seconds),
                "RecordingChannels": "1",
                "RecordingStartTime": self.server.rfc2822(),
                "RecordingSource": source,
                "RecordingTrack": "both",
            })
        return sid, url

    @staticmethod
    def _url(base: str | None, target: str) -> str:
        return urljoin(base or "", target)
