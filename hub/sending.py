"""Sending rules the worker checks on each claimed delivery, just before it goes out.

A rule is a `SendGate`: given a claimed message it answers nothing (go ahead), `defer(until)` (not
now: quiet hours, a frequency cap, an exhausted rate budget) or `skip(reason)` (never: consent
withdrawn, address suppressed). Checking at send time, not when the audience was computed, is the
point: a contact who unsubscribed a minute ago must not get the campaign queued an hour ago.

The hub's own gates (consent, suppression, quiet hours in the recipient's time zone, a frequency cap
per contact) hold back marketing only; transactional mail always goes. Plug-ins contribute more
gates through `Plugin.send_gates()`: extensions their rules, channels their own lists (email's
bounce and complaint list), so each list is checked once, here, at send time. The worker runs all
of them in one read-only session per batch; a gate with a `prepare(session, messages, now)` method
loads what it needs for the whole batch in a few queries instead of a few per message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import phonenumbers
from phonenumbers import timezone as phone_zones
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select

from hub.db import among
from hub.models import ConsentRecord, ConsentStatus, Contact, Delivery, Identity, IdentityKind, Purpose
from hub.settings import FrequencyCap, QuietHours

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.channel import OutboundMessage
    from hub.runtime import Hub

log = logging.getLogger("hub.sending")


class Verdict(StrEnum):
    SEND = "send"
    DEFER = "defer"
    SKIP = "skip"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    until: datetime | None = None

    @classmethod
    def defer(cls, until: datetime, reason: str) -> Decision:
        return cls(Verdict.DEFER, reason, until)

    @classmethod
    def skip(cls, reason: str) -> Decision:
        return cls(Verdict.SKIP, reason)


SEND = Decision(Verdict.SEND)


class SendGate(Protocol):
    """One sending rule; `check` returns None to let the message go."""

    name: str

    def check(self, session: Session, *, message: OutboundMessage, now: datetime) -> Decision | None: ...


def gates_of(hub: Hub) -> list[SendGate]:
    """The hub's own gates, then every gate the installed extensions contribute, then the channels',
    each in name order."""
    gates: list[SendGate] = builtin_gates(hub)
    for _name, extension in sorted(hub.extensions.items()):
        gates.extend(extension.send_gates())
    for _name, channel in sorted(hub.channels.items()):
        gates.extend(channel.send_gates())
    return gates


def _marketing_only(gate: SendGate) -> bool:
    """Whether a gate holds back marketing only (the hub's own, and those that say so)."""
    return isinstance(gate, _BUILTIN) or bool(getattr(gate, "marketing_only", False))


def decide(hub: Hub, messages: Sequence[OutboundMessage], *, now: datetime,
           gates: Sequence[SendGate] | None = None) -> list[Decision]:
    """The first objection of any gate to each message, or SEND; aligned with `messages`."""
    if gates is None:
        gates = gates_of(hub)
        if not any(_is_marketing(m) for m in messages):  # most rules hold back marketing only
            gates = [g for g in gates if not _marketing_only(g)]
    gates = list(gates)
    if not gates or not messages:
        return [SEND] * len(messages)
    decisions: list[Decision] = []
    with hub.session(read_only=True) as session:
        for gate in gates:
            prepare = getattr(gate, "prepare", None)
            if prepare is not None:
                prepare(session, messages, now)
        for message in messages:
            decision = SEND
            for gate in gates:
                found = gate.check(session, message=message, now=now)
                if found is not None and found.verdict != Verdict.SEND:
                    decision = found
                    break
            if decision is SEND:
                for gate in gates:
                    admit = getattr(gate, "admitted", None)
                    if admit is not None:
                        admit(message, now)
            decisions.append(decision)
    return decisions


# --- rules a cause gives its deliveries ------------------------------------------------------

class DeliveryRules(BaseModel):
    """Per-delivery sending rules (stored on `Delivery.rules`); what is left out comes from settings.

    `"off"` switches a default off for this delivery (a campaign that may send at night, say).
    """

    model_config = ConfigDict(extra="forbid")

    quiet_hours: QuietHours | Literal["off"] | None = None
    frequency_cap: FrequencyCap | Literal["off"] | None = None


def clean_rules(rules: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Validated rules as stored (None when there are none); ValueError names what is wrong."""
    if rules is None:
        return None
    if not isinstance(rules, Mapping):
        raise ValueError("rules must be an object")
    try:
        parsed = DeliveryRules.model_validate(dict(rules))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid sending rules: {problems}") from None
    dumped = parsed.model_dump(exclude_none=True)
    return dumped or None


_NO_RULES = DeliveryRules()


def rules_of(message: OutboundMessage) -> DeliveryRules:
    """The message's rules (stored ones were validated at enqueue; a bad row counts as none). Read
    only: the gates ask for them per message, up to four times, and a batch's messages mostly carry
    the same rules, so they are parsed once per distinct value and shared."""
    if not message.rules:
        return _NO_RULES
    try:
        key = orjson.dumps(message.rules, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not JSON's types (a caller's own object): parsed as it is, every time
        parsed = _parsed_rules_of(dict(message.rules))
    else:
        parsed = _parsed_rules(key)
    if parsed is None:
        log.warning("delivery %s has invalid sending rules %r; using the defaults", message.delivery_id, message.rules)
        return _NO_RULES
    return parsed


@lru_cache(maxsize=256)
def _parsed_rules(key: bytes) -> DeliveryRules | None:
    return _parsed_rules_of(orjson.loads(key))


def _parsed_rules_of(rules: dict[str, Any]) -> DeliveryRules | None:
    try:
        return DeliveryRules.model_validate(rules)
    except ValidationError:
        return None


def _is_marketing(message: OutboundMessage) -> bool:
    return message.purpose == Purpose.MARKETING


_IDENTITY_KINDS = frozenset(kind.value for kind in IdentityKind)


def address_kind(channel: str, address: str) -> str:
    """Which identity kind a channel's address is (email for email, phone for SMS, voice, WhatsApp…;
    a channel named after an identity kind, such as telegram, addresses by that kind)."""
    if channel in _IDENTITY_KINDS:
        return channel
    if channel == "email" or "@" in address:
        return IdentityKind.EMAIL.value
    return IdentityKind.PHONE.value


# --- consent ---------------------------------------------------------------------------------

class ConsentGate:
    """Marketing never goes to a contact whose newest decision for the channel is "withdrawn" (nor, with
    `sending.require_opt_in`, to one who never said "granted")."""

    name = "consent"

    def __init__(self, hub: Hub) -> None:
        self.require_opt_in = hub.settings.sending.require_opt_in
        self._status: dict[tuple[int, str], str] = {}

    def prepare(self, session: Session, messages: Sequence[OutboundMessage], now: datetime) -> None:
        pairs = {(m.contact_id, m.channel) for m in messages if _is_marketing(m) and m.contact_id is not None}
        self._status = {}
        if not pairs:
            return
        rows = session.execute(
            select(ConsentRecord.contact_id, ConsentRecord.channel, ConsentRecord.status)
            .where(among(session, ConsentRecord.contact_id, {c for c, _ in pairs}),
                   ConsentRecord.channel.in_({ch for _, ch in pairs}),
                   ConsentRecord.purpose == Purpose.MARKETING.value)
            .order_by(ConsentRecord.occurred_at.desc(), ConsentRecord.id.desc())
        ).all()
        for row in rows:
            self._status.setdefault((row.contact_id, row.channel), row.status)

    def check(self, session: Session, *, message: OutboundMessage, now: datetime) -> Decision | None:
        if not _is_marketing(message):
            return None
        if message.contact_id is None:
            return Decision.skip("marketing needs opt-in, and the delivery has no contact") if self.require_opt_in else None
        status = self._status.get((message.contact_id, message.channel))
        if status == ConsentStatus.WITHDRAWN:
            return Decision.skip(f"the contact withdrew marketing consent for {message.channel}")
        if status is None and self.require_opt_in:
            return Decision.skip(f"the contact never opted in to marketing by {message.channel}")
        return None


# --- the do-not-contact list ---------------------------------------------------------------

class SuppressionGate:
    """Marketing never goes to an address on the hub's do-not-contact list (hub.suppression); the email
    channel also checks its own bounce list when it sends."""

    name = "suppression"

    def __init__(self, hub: Hub) -> None:
        self.region = hub.settings.default_region
        self._listed: set[int] = set()

    def prepare(self, session: Session, messages: Sequence[OutboundMessage], now: datetime) -> None:
        from hub.suppression import SuppressionEntry, address_hash

        # Each address normalised and hashed once per batch (it was twice: here and in check()).
        wanted: dict[int, tuple[str, str]] = {}
        for m in messages:
            if _is_marketing(m):
                kind = address_kind(m.channel, m.address)
                wanted[m.delivery_id] = (kind, address_hash(kind, m.address, region=self.region))
        self._listed = set()
        if not wanted:
            return
        rows = session.execute(
            select(SuppressionEntry.kind, SuppressionEntry.value_hash)
            .where(among(session, SuppressionEntry.value_hash, {h for _, h in wanted.values()}))
        ).all()
        listed = {(r.kind, r.value_hash) for r in rows}
        # By delivery: check() then hashes nothing again.
        self._listed = {delivery_id for delivery_id, pair in wanted.items() if pair in listed}

    def check(self, session: Session, *, message: OutboundMessage, now: datetime) -> Decision | None:
        if message.delivery_id in self._listed and _is_marketing(message):
            return Decision.skip(f"{message.address} is on the do-not-contact list")
        return None


# --- quiet hours in the recipient's time zone ---------------------------------------------------

def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_of_phone(phone: str, *, region: str, default: str) -> str | None:
    """The time zone a phone number's region suggests: the only one, else the default if it is a candidate.

    A number whose country spans several zones (a Russian mobile, say) gives all of them: then the
    hub's default zone if it is among them, else the first candidate.
    """
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in phone_zones.time_zones_for_number(parsed) if z != phone_zones.UNKNOWN_TIMEZONE]
    if not zones:
        return None
    if len(zones) == 1 or default not in zones:
        return zones[0]
    return default


def allowed_from(moment: datetime, window: QuietHours, zone: ZoneInfo) -> datetime | None:
    """None if `moment` is inside the local sending window, else the next moment (UTC) the window opens.

    The opening is computed as a wall-clock time on that local date, so a DST change between now and
    then moves the UTC instant as it should (09:00 local is 09:00 local on either side of it).
    """
    start, end = _clock(window.start), _clock(window.end)
    local = moment.astimezone(zone)
    now_t = local.time().replace(tzinfo=None)
    inside = start <= now_t < end if start < end else (now_t >= start or now_t < end)
    if inside:
        return None
    day: date = local.date() if now_t < start else local.date() + timedelta(days=1)
    opening = datetime.combine(day, start, tzinfo=zone)
    # A start inside a DST gap (02:30 on the spring-forward night) resolves to the first real minute after it.
    opening = opening.astimezone(timezone.utc)
    return max(opening, moment)


class QuietHoursGate:
    """Marketing goes out only in the recipient's local sending window (SMS: 09:00–21:00 by default)."""

    name = "quiet_hours"

    def __init__(self, hub: Hub) -> None:
        self.settings = hub.settings
        self._zones: dict[int, str | None] = {}
        self._phones: dict[int, str] = {}

    def window(self, message: OutboundMessage) -> QuietHours | None:
        rule = rules_of(message).quiet_hours
        if rule == "off":
            return None
        if isinstance(rule, QuietHours):
            return rule
        return self.settings.sending.quiet_hours.get(message.channel)

    def prepare(self, session: Session, messages: Sequence[OutboundMessage], now: datetime) -> None:
        ids = {m.contact_id for m in messages
               if _is_marketing(m) and m.contact_id is not None and self.window(m) is not None}
        self._zones, self._phones = {}, {}
        if not ids:
            return
        self._zones = dict(session.execute(select(Contact.id, Contact.time_zone).where(among(session, Contact.id, ids))).all())
        phones = session.execute(
            select(Identity.contact_id, Identity.value)
            .where(among(session, Identity.contact_id, ids), Identity.kind == IdentityKind.PHONE.value)
            .order_by(Identity.contact_id, Identity.is_primary.desc(), Identity.id)
        ).all()
        for row in phones:
            self._phones.setdefault(row.contact_id, row.value)

    def zone_for(self, message: OutboundMessage) -> ZoneInfo:
        """The contact's own zone, else one its phone number suggests, else the hub's default."""
        default = self.settings.default_timezone
        if message.contact_id is not None:
            own = _zone(self._zones.get(message.contact_id))
            if own is not None:
                return own
        phone = message.address if address_kind(message.channel, message.address) == "phone" else None
        if phone is None and message.contact_id is not None:
            phone = self._phones.get(message.contact_id)
        if phone:
            guessed = _zone(zone_of_phone(phone, region=self.settings.default_region, default=default))
            if guessed is not None:
                return guessed
        return ZoneInfo(default)

    def check(self, session: Session, *, message: OutboundMessage, now: datetime) -> Decision | None:
        if not _is_marketing(message):
            return None
        window = self.window(message)
        if window is None:
            return None
        zone = self.zone_for(message)
        until = allowed_from(now, window, zone)
        if until is None:
            return None
        return Decision.defer(until, f"quiet hours: sending is allowed {window.start}–{window.end} in {zone.key}")


# --- a frequency cap per contact -------------------------------------------------------------

_SENT_STATUSES = ("sent", "delivered", "read", "failed", "undelivered", "bounced")


class FrequencyCapGate:
    """At most N marketing deliveries to one contact within D days; more wait until the oldest ages out."""

    name = "frequency_cap"

    def __init__(self, hub: Hub) -> None:
        self.default = hub.settings.sending.frequency_cap
        self._recent: dict[int, list[datetime]] = {}

    def cap(self, message: OutboundMessage) -> FrequencyCap | None:
        rule = rules_of(message).frequency_cap
        if rule == "off":
            return None
        return rule if isinstance(rule, FrequencyCap) else self.default

    def prepare(self, session: Session, messages: Sequence[OutboundMessage], now: datetime) -> None:
        caps = [(m.contact_id, c) for m in messages if _is_marketing(m) and m.contact_id is not None
                and (c := self.cap(m)) is not None]
        self._recent = {}
        if not caps:
            return
        longest = max(c.days for _, c in caps)
        ids = {contact_id for contact_id, _ in caps}
        rows = session.execute(
            select(Delivery.contact_id, Delivery.sent_at)
            .where(among(session, Delivery.contact_id, ids), Delivery.purpose == Purpose.MARKETING.value,
                   Delivery.sent_at.is_not(None), Delivery.sent_at > now - timedelta(days=longest),
                   Delivery.status.in_(_SENT_STATUSES))
            .order_by(Delivery.sent_at)
        ).all()
        for row in rows:
            self._recent.setdefault(row.contact_id, []).append(row.sent_at)

    def admitted(self, message: OutboundMessage, now: datetime) -> None:
        """A message of this batch will go out: later ones to the same contact must count it."""
        if _is_marketing(message) and message.contact_id is not None and self.cap(message) is not None:
            self._recent.setdefault(message.contact_id, []).append(now)

    def check(self, session: Session, *, message: OutboundMessage, now: datetime) -> Decision | None:
        if not _is_marketing(message) or message.contact_id is None:
            return None
        cap = self.cap(message)
        if cap is None:
            return None
        window = timedelta(days=cap.days)
        recent = sorted(t for t in self._recent.get(message.contact_id, ()) if t > now - window)
        if len(recent) < cap.max:
            return None
        # Enough of the oldest must age out to leave room for one more.
        until = recent[len(recent) - cap.max] + window
        return Decision.defer(max(until, now + timedelta(seconds=1)),
                              f"frequency cap: {len(recent)} marketing messages in {cap.days:g} days (max {cap.max})")


def builtin_gates(hub: Hub) -> list[SendGate]:
    """The hub's own rules, fresh per batch (they cache what `prepare` loaded): cheapest refusals first."""
    return [ConsentGate(hub), SuppressionGate(hub), QuietHoursGate(hub), FrequencyCapGate(hub)]


_BUILTIN = (ConsentGate, SuppressionGate, QuietHoursGate, FrequencyCapGate)
