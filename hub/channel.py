"""The channel adapter contract, owned by the core. An adapter is a plug-in (`hub.plugin.Plugin`)
registered under the entry-point group `hub.channels`, in channels/ or in a package of its own
(plugins/telegram); the hub knows nothing channel-specific."""

from __future__ import annotations

import asyncio
from abc import ABC
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from hub.ingest import InboundEvent
from hub.models import DeliveryStatus
from hub.plugin import NavEntry, PeriodicJob, Plugin
from hub.translatable import N_

if TYPE_CHECKING:
    from hub.runtime import Hub


class Capability(StrEnum):
    SEND = "send"  # delivers outbox rows
    RECEIVE = "receive"  # turns provider payloads into timeline events
    STATUS = "status"  # provider callbacks move delivery status forward
    POLL = "poll"  # periodic jobs fetch from the provider (an IMAP mailbox)


@dataclass(frozen=True)
class ChannelLimits:
    """What a message on this channel may carry; checked before anything reaches the outbox."""

    max_body_chars: int | None = None
    html: bool = False
    attachments: bool = False
    max_attachment_bytes: int | None = None
    delivery_receipts: bool = False


@dataclass(frozen=True)
class ContentPart:
    """One part of what a message on a channel carries, as a template writes it and content holds it."""

    name: str  # the content key: "subject", "html", "text"
    label: str  # a msgid, translated where it is shown
    max_chars: int | None = None  # of the rendered part
    html: bool = False  # rendered with every value escaped
    one_line: bool = False  # a header line (a subject): folded to one line, needed in every message
    # What to say (a msgid) when a template leaves the part empty and it may not be: a one-line
    # part always, a message's only body part. A message needs at least one of its body parts.
    missing: str | None = None
    empty: str | None = None  # what to say when a one-line part renders empty (a msgid)


TEXT = ContentPart("text", N_("Text"), missing=N_("the message needs its text"))


@dataclass(frozen=True)
class MarketingContext:
    """What a feature sending marketing (campaigns, surveys) knows, in values any channel can read;
    `Channel.decorate_marketing` decides what a message on the channel makes of them."""

    locale: str
    # The signed page that unsubscribes this contact from this channel: a GET shows a confirmation,
    # a POST unsubscribes at once (RFC 8058 one-click). None when the feature has none.
    unsubscribe_url: str | None = None
    # The delivery's idempotency key, and what rewrites an HTML body's links into tracked ones
    # (html → (tracked html, its plain text)): for channels that carry links.
    delivery_key: str | None = None
    track_links: Callable[[str], tuple[str, str]] | None = None
    # Who the message is from, as the marketer wrote it (a name, an address): a channel with a
    # From field uses what it can.
    sender_name: str | None = None
    sender_address: str | None = None
    recipient_name: str | None = None


class ChannelSettings(BaseModel):
    """An adapter's section of the config (`[channels.<name>]`); adapters subclass it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


@dataclass(frozen=True)
class OutboundMessage:
    """A delivery as the adapter sees it: a detached snapshot, never an ORM row."""

    delivery_id: int
    channel: str
    address: str
    content: Mapping[str, Any]
    idempotency_key: str
    purpose: str
    contact_id: int | None
    attempt: int
    # Sending rules given at enqueue (hub.sending.DeliveryRules as a dict), if any.
    rules: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SendResult:
    """What a successful hand-over to the provider returned."""

    provider_id: str | None
    status: DeliveryStatus = DeliveryStatus.SENT
    detail: str | None = None


class SendError(Exception):
    """A send that did not happen; the worker decides retry or dead from the subclass."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientSendError(SendError):
    """Try again later (4xx SMTP replies, 429, 5xx from an API, network errors)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Never retry (5xx SMTP replies, an opted-out number, an invalid address)."""


class SignatureError(Exception):
    """A webhook whose signature is missing or wrong: answered 403, nothing is stored."""


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's word on a delivery, as a status callback carries it."""

    provider_id: str
    status: DeliveryStatus
    occurred_at: datetime | None = None
    detail: str | None = None


class Channel(Plugin, ABC):
    """Base class of every adapter: capabilities and limits are class data, behaviour is methods."""

    name: ClassVar[str]
    label: ClassVar[str] = ""
    # Its name inside a sentence ("our mailings by email"; a msgid): the unsubscribe pages use it.
    # Empty: the label.
    mailing_label: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    limits: ClassVar[ChannelLimits] = ChannelLimits()
    # What a message on it carries (message templates offer these parts): a text by default.
    parts: ClassVar[tuple[ContentPart, ...]] = (TEXT,)
    Settings: ClassVar[type[ChannelSettings]] = ChannelSettings
    # How many sends the worker may run at once on this channel.
    concurrency: ClassVar[int] = 4
    # Example values of the settings that make it work: Admin → Channels shows them, as HUB_* lines
    # and as TOML, to a channel that is not configured yet.
    setup_example: ClassVar[dict[str, Any]] = {}
    # Whether agents record a contact's consent to be reached on it (the contact form's list). None:
    # when it sends to contacts (hub.channel_hooks.consent_channels); phone calls say True themselves.
    asks_consent: ClassVar[bool | None] = None

    def __init__(self, settings: ChannelSettings, hub: Hub) -> None:
        super().__init__(settings, hub)

    @property
    def configured(self) -> bool:
        """Whether the channel can work now (the UI disables its compose panel otherwise)."""
        return self.settings.enabled

    def missing_settings(self) -> list[str]:
        """The settings still to set before the channel can work (Admin → Channels)."""
        return [] if self.settings.enabled else ["enabled"]

    def test_message(self, address: str) -> OutboundMessage | None:
        """A short message to `address` for Admin → Channels' "send a test"; None for a channel that
        sends nothing. ValueError when `address` is not one it can send to."""
        return None

    def _test_message(self, address: str, content: Mapping[str, Any]) -> OutboundMessage:
        import uuid

        return OutboundMessage(delivery_id=0, channel=self.name, address=address, content=content,
                               idempotency_key=f"admin-test:{uuid.uuid4().hex}", purpose="transactional",
                               contact_id=None, attempt=1)

    @property
    def panel_ready(self) -> bool:
        """Whether its compose panel on the contact page can be used now (by default: when configured)."""
        return self.configured

    @property
    def max_request_bytes(self) -> int | None:
        """The largest request body its routes accept; None keeps the API's limit."""
        return None

    def router(self) -> APIRouter | None:
        """Webhooks and public pages, mounted at /channels/<name>/."""
        return None

    def api_router(self) -> APIRouter | None:
        """REST endpoints of what the channel manages (forms, meeting types), mounted under /api/v1 beside
        the hub's own: API keys and scopes, problem details, OpenAPI docs, the API fuzz."""
        return None

    def verify(self, *, url: str, headers: Mapping[str, str], body: bytes, form: Mapping[str, Any] | None = None) -> None:
        """Check the provider's signature on the raw request; raise SignatureError if it is wrong."""
        raise SignatureError(f"channel {self.name!r} accepts no signed webhooks")

    @staticmethod
    def parse(payload: Any) -> Sequence[InboundEvent]:
        """Turn one provider payload into normalized events (pure: no I/O, no clock)."""
        raise NotImplementedError

    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message to the provider; raise a SendError subclass when it did not go."""
        raise PermanentSendError(f"channel {self.name!r} cannot send")

    async def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | BaseException]:
        """Send a batch; adapters override this to reuse a connection. Results align with messages."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(message: OutboundMessage) -> SendResult:
            async with gate:
                return await self.send(message)

        return list(await asyncio.gather(*(one(m) for m in messages), return_exceptions=True))

    def decorate_marketing(self, content: dict[str, Any], context: MarketingContext) -> dict[str, Any]:
        """`content` with what every marketing message on this channel must carry (opt-out wording,
        unsubscribe headers, tracked links); by default nothing is added."""
        return content

    def validate_content(self, content: Mapping[str, Any]) -> None:
        """Refuse content the channel cannot carry (ValueError says what is wrong)."""
        body = content.get("text") or ""
        if self.limits.max_body_chars is not None and len(body) > self.limits.max_body_chars:
            raise ValueError(f"{self.name} bodies are limited to {self.limits.max_body_chars} characters")
        if content.get("html") and not self.limits.html:
            raise ValueError(f"{self.name} cannot carry HTML")
        if content.get("attachments") and not self.limits.attachments:
            raise ValueError(f"{self.name} cannot carry attachments")
