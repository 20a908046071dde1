"""The email adapter: SMTP out through the outbox, IMAP and an HTTP pipe in, DSNs as status."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.channel import (
    TEXT,
    Capability,
    Channel,
    ChannelLimits,
    ContentPart,
    MarketingContext,
    OutboundMessage,
    PeriodicJob,
    PermanentSendError,
    SendResult,
    SignatureError,
)
from channels.email.mime import AttachmentRef, EmailContent, ascii_address, build_message
from channels.email.parse import ParseLimits, parse_message
from channels.email.settings import EmailSettings
from channels.email.smtp import Prepared, SmtpSender, prepare_all
from channels.email.store import EmailFiles
from hub import clock
from hub.identities import InvalidIdentity, normalize_email
from hub.html import html_to_text
from hub.ingest import InboundEvent
from hub.plugin import EventKind, TimelineChannel
from hub.translatable import N_


log = logging.getLogger("channels.email")


class RawPayload(BaseModel):
    """A recorded inbound message: the RFC 822 bytes in base64, and where they were read."""

    model_config = ConfigDict(extra="forbid")

    raw: str = Field(min_length=1)
    mailbox: str | None = None
    uid: int | None = None


class EmailChannel(Channel):
    name = "email"
    label = "Email"
    mailing_label = N_("email")
    timeline_channels = (TimelineChannel("email", N_("Email"), "email"),)
    event_kinds = (EventKind("email", N_("Email")), EventKind("email.bounced", N_("Bounced")))
    capabilities = frozenset({Capability.SEND, Capability.RECEIVE, Capability.STATUS, Capability.POLL})
    limits = ChannelLimits(max_body_chars=2_000_000, html=True, attachments=True,
                           max_attachment_bytes=10 * 1024 * 1024, delivery_receipts=True)
    # A subject line (RFC 5322 caps a line at 998 characters), an HTML body, a plain-text body.
    parts = (ContentPart("subject", N_("Subject"), max_chars=998, one_line=True, missing=N_("an email needs a subject"),
                         empty=N_("the subject came out empty")),
             ContentPart("html", N_("HTML body"), html=True), TEXT)
    Settings = EmailSettings
    identity_kind = "email"  # hub.channel_hooks: a delivery goes to the contact's email identity
    # One SMTP conversation carries many messages; smtp_connections sets the parallelism.
    concurrency = 1
    setup_example = {"smtp_host": "smtp.example.com", "smtp_port": 587, "smtp_security": "starttls",
                     "smtp_username": "hub@example.com", "smtp_password": "your-smtp-password",
                     "from_address": "support@example.com", "from_name": "Support"}

    settings: EmailSettings

    @property
    def configured(self) -> bool:
        return self.settings.enabled and bool(self.settings.smtp_host and self.settings.from_address)

    def missing_settings(self) -> list[str]:
        return super().missing_settings() + [name for name in ("smtp_host", "from_address")
                                             if not getattr(self.settings, name)]

    def test_message(self, address: str) -> OutboundMessage:
        try:
            address = normalize_email(address)
        except InvalidIdentity as exc:
            raise ValueError(str(exc)) from None
        return self._test_message(address, {
            "subject": "A test from the hub",
            "text": "This is a test message sent from Admin → Channels. Email works.",
        })

    @property
    def max_request_bytes(self) -> int:
        # Piped mail and attachment uploads: the routes apply their own, finer caps below this.
        return self.settings.max_raw_bytes

    @cached_property
    def files(self) -> EmailFiles:
        return EmailFiles(Path(self.hub.settings.data_dir))

    @property
    def parse_limits(self) -> ParseLimits:
        s = self.settings
        return ParseLimits(max_attachment_bytes=s.max_attachment_bytes, max_attachments=s.max_attachments,
                           max_references=s.max_references)

    # --- inbound --------------------------------------------------------------------------------

    @staticmethod
    def parse(payload: Any) -> Sequence[InboundEvent]:
        """A recorded payload {"raw": base64, "mailbox", "uid"} → the message's event."""
        if not isinstance(payload, Mapping):
            raise ValueError('an email payload is an object like {"raw": "<base64 of the message>"}')
        try:
            record = RawPayload.model_validate(payload)
            raw = base64.b64decode(record.raw, validate=True)
        except ValidationError as exc:
            raise ValueError(f"not an email payload: {exc.errors()[0]['msg']}") from None
        except binascii.Error:
            raise ValueError("raw is not valid base64") from None
        return [parse_message(raw).event]

    def verify(self, *, url: str, headers: Mapping[str, str], body: bytes, form: Mapping[str, Any] | None = None) -> None:
        """The pipe endpoint's bearer token, compared in constant time; no token configured refuses all."""
        expected = self.settings.inbound_token
        given = ""
        for name, value in headers.items():
            if name.lower() == "authorization" and value[:7].lower() == "bearer ":
                given = value[7:].strip()
        if expected is None or not expected.get_secret_value():
            raise SignatureError("the email pipe endpoint is off: set inbound_token under [channels.email]")
        if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
            raise SignatureError("missing or wrong bearer token")

    def router(self) -> APIRouter:
        from channels.email.webhooks import build_router

        return build_router(self)

    def web_router(self) -> APIRouter:
        from channels.email.panel import build_router

        return build_router(self)

    def nav(self) -> list[Any]:
        from channels.email.panel import KEPT_NAV

        return [KEPT_NAV]

    def jobs(self) -> list[PeriodicJob]:
        if not (self.settings.enabled and self.settings.imap):
            return []
        return [PeriodicJob("email.poll_imap", poll_imap, seconds=self.settings.poll_seconds)]

    def poll(self) -> list[Any]:
        """Poll every configured IMAP mailbox once (what the email.poll_imap job runs)."""
        from channels.email.imap import poll_all

        return poll_all(self)

    def receive_file(self, path: Path, *, origin: dict[str, Any], strict: bool = False) -> Any:
        """Record one message from a file in its own transaction (the HTTP pipe's unit of work)."""
        from channels.email.inbound import receive

        with self.hub.session() as session, session.begin():
            return receive(session, channel=self, path=path, origin=origin, strict=strict)

    # --- outbound -------------------------------------------------------------------------------

    def decorate_marketing(self, content: dict[str, Any], context: MarketingContext) -> dict[str, Any]:
        """The sender the marketer chose, List-Unsubscribe with List-Unsubscribe-Post (RFC 8058) and
        tracked links with an open pixel; a plain-text part from the HTML when the message has none."""
        if context.sender_name:
            content["from_name"] = context.sender_name
        if context.sender_address:
            content["from_address"] = context.sender_address  # checked again when queued and sent
        if context.recipient_name:
            content["to_name"] = context.recipient_name
        url = context.unsubscribe_url
        if url and url.startswith("https://"):
            content["list_unsubscribe"], content["list_unsubscribe_post"] = url, True
        elif url:  # both headers need https (RFC 8058; mailbox providers ignore anything else)
            log.warning("the unsubscribe URL is not https://: marketing email goes out without List-Unsubscribe")
        html = content.get("html")
        if html and context.track_links is not None:
            # The plain-text part, when the template has none, comes from the same parse.
            content["html"], text = context.track_links(html)
            if content.get("text") is None:
                content["text"] = text
        elif html and content.get("text") is None:
            content["text"] = html_to_text(html, links=True)
        return content

    def validate_content(self, content: Mapping[str, Any]) -> None:
        try:
            parsed = EmailContent.model_validate(dict(content))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "content"
            raise ValueError(f"email {where}: {first['msg']}") from None
        self._check_sender(parsed)
        total = sum(a.size for a in parsed.attachments)
        if any(a.size > self.settings.max_attachment_bytes for a in parsed.attachments):
            raise ValueError(f"an attachment is over {self.settings.max_attachment_bytes} bytes")
        if total > self.settings.max_message_bytes:
            raise ValueError(f"attachments add up to {total} bytes, over {self.settings.max_message_bytes}")
        for ref in parsed.attachments:
            if not self.files.attachments.exists(ref.sha256):
                raise ValueError(f"attachment {ref.filename!r} is not stored; upload it first")

    def _check_sender(self, content: EmailContent) -> None:
        """A From address of the content's own must be one this channel may send as; ValueError otherwise."""
        if content.from_address is None:
            return
        try:
            address = normalize_email(content.from_address)
        except InvalidIdentity as exc:
            raise ValueError(f"email from_address: {exc}") from None
        if not self.settings.allows_sender(address):
            raise ValueError(f"email from_address {address} is not one this hub may send as: add it to "
                             "sender_addresses under [channels.email] (only addresses the domain's SPF and "
                             "DKIM cover)")

    def _prepare(self, message: OutboundMessage) -> Prepared:
        if not self.configured:
            raise PermanentSendError("email is not configured: set smtp_host and from_address under [channels.email]")
        try:
            address = normalize_email(message.address)
        except InvalidIdentity as exc:
            raise PermanentSendError(str(exc)) from None
        try:
            content = EmailContent.model_validate(dict(message.content))
        except ValidationError as exc:
            raise PermanentSendError(f"the stored content is not a valid email: {exc.errors()[0]['msg']}") from None
        try:
            self._check_sender(content)  # the settings may have changed since it was queued
        except ValueError as exc:
            raise PermanentSendError(str(exc)) from None

        def read(ref: AttachmentRef) -> bytes:
            try:
                return self.files.attachments.read(ref.sha256)
            except FileNotFoundError:
                raise PermanentSendError(f"attachment {ref.filename!r} is missing from the store") from None

        try:
            data, message_id = build_message(content, settings=self.settings, to_address=address,
                                             idempotency_key=message.idempotency_key, date=clock.now(),
                                             read_attachment=read, max_references=self.settings.max_references)
        except ValueError as exc:  # an address 7-bit mail cannot carry
            raise PermanentSendError(str(exc)) from None
        return ascii_address(address), data, message_id

    async def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | BaseException]:
        # Reading attachments and encoding them is blocking work: keep it off the event loop.
        prepared = await asyncio.to_thread(prepare_all, messages, self._prepare)
        return await SmtpSender(self.settings).deliver(prepared)

    async def send(self, message: OutboundMessage) -> SendResult:
        result = (await self.send_many([message]))[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def send_gates(self) -> list[Any]:
        """Marketing mail never goes to an address on this channel's suppression list (checked by the
        worker with the hub's own gates, once, at send time)."""
        from channels.email.suppression import SuppressionGate

        return [SuppressionGate(self.name)]


def poll_imap(hub: Any) -> None:
    """The email.poll_imap tick."""
    hub.channel("email").poll()
