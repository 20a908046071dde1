"""The channel adapter contract, owned by the core. An adapter is a plug-in (`hub.plugin.Plugin`)
registered under the entry-point group `hub.channels`, in channels/ or in a package of its own
(plugins/telegram); the hub knows nothing channel-specific."""

from __future__ import annotations

import asyncio
from abc import ABC
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from hub.ingest import InboundEvent
from hub.models import DeliveryStatus
from hub.plugin import NavEntry, PeriodicJob, Plugin

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
    # Sending rules given at enqueue (hub.sending.DeliveryRules as a dict) and the campaign run, if any.
    rules: Mapping[str, Any] | None = None
    campaign_run_id: int | None = None


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
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    limits: ClassVar[ChannelLimits] = ChannelLimits()
    Settings: ClassVar[type[ChannelSettings]] = ChannelSettings
    # How many sends the worker may run at once on this channel.
    concurrency: ClassVar[int] = 4
    # Example values of the settings that make it work: Admin → Channels shows them, as HUB_* lines
    # and as TOML, to a channel that is not configured yet.
    setup_example: ClassVar[dict[str, Any]] = {}

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

    def validate_content(self, content: Mapping[str, Any]) -> None:
        """Refuse content the channel cannot carry (ValueError says what is wrong)."""
        body = content.get("text") or ""
        if self.limits.max_body_chars is not None and len(body) > self.limits.max_body_chars:
            raise ValueError(f"{self.name} bodies are limited to {self.limits.max_body_chars} characters")
        if content.get("html") and not self.limits.html:
            raise ValueError(f"{self.name} cannot carry HTML")
        if content.get("attachments") and not self.limits.attachments:
            raise ValueError(f"{self.name} cannot carry attachments")
