"""The email channel's section of the config: `[channels.email]` (env HUB_CHANNELS__EMAIL__…)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hub.channel import ChannelSettings
from hub.identities import InvalidIdentity, normalize_email

Security = Literal["starttls", "tls", "none"]

MB = 1024 * 1024
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _address(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if any(c in value for c in "\r\n"):
        raise ValueError("an address may not contain line breaks")
    try:
        return normalize_email(value)
    except InvalidIdentity as exc:
        raise ValueError(str(exc)) from None


class ImapMailbox(BaseModel):
    """One mailbox the hub polls (the one replies and bounces arrive in)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    # "tls": implicit TLS (993); "starttls": upgrade on 143 and refuse to go on without it;
    # "none": plain text, for a server on loopback only.
    security: Security = "tls"
    ca_file: Path | None = None
    username: str = Field(min_length=1)
    password: SecretStr
    folder: str = "INBOX"
    timeout: float = Field(60, gt=0, le=600)

    @model_validator(mode="after")
    def _no_plain_password_off_host(self) -> ImapMailbox:
        if self.security == "none" and self.host not in LOOPBACK:
            raise ValueError(f"security 'none' would send the password to {self.host} in plain text; "
                             "use 'tls' or 'starttls' (plain text is for a server on this machine)")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)

    @property
    def key(self) -> str:
        """A stable name for this mailbox's sync state (a different folder is a different mailbox)."""
        return f"{self.username}@{self.host}:{self.effective_port}/{self.folder}"[:300]


class EmailSettings(ChannelSettings):
    # Outbound SMTP. Certificates are always checked; `smtp_ca_file` trusts a private CA.
    smtp_host: str = ""
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: Security = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(30, gt=0, le=600)
    smtp_ca_file: Path | None = None
    # Connections opened per batch the worker hands over; each carries messages one after another.
    smtp_connections: int = Field(2, ge=1, le=20)
    from_address: str = ""
    from_name: str = ""
    # Other From addresses a campaign may name as its sender ("news@shop.example"), or whole domains
    # ("@shop.example"). List only what the domain's SPF and DKIM cover for this SMTP server:
    # receivers judge the From domain. from_address is always allowed.
    sender_addresses: list[str] = Field(default_factory=list, max_length=200)
    # Where replies go (the polled mailbox); from_address when unset. With `reply_to_tagged`
    # the local part gets "+<message token>" so a reply threads even if a client drops References.
    reply_to: str | None = None
    reply_to_tagged: bool = False
    # Envelope sender (MAIL FROM), where bounces are returned; from_address when unset.
    bounce_address: str | None = None
    # The right-hand side of generated Message-IDs; the from_address domain when unset.
    message_id_domain: str | None = None

    # Inbound.
    imap: list[ImapMailbox] = Field(default_factory=list)
    poll_seconds: float = Field(60, ge=5, le=86_400)
    # Messages fetched per mailbox per poll; the rest wait for the next tick.
    poll_batch: int = Field(200, ge=1, le=10_000)
    # Larger messages are not parsed: they are kept raw, with an event saying so.
    max_message_bytes: int = Field(25 * MB, ge=64 * 1024)
    # Beyond this even the raw copy is refused (HTTP 413; IMAP leaves it on the server).
    max_raw_bytes: int = Field(200 * MB, ge=64 * 1024)
    max_attachment_bytes: int = Field(10 * MB, ge=1024)
    max_attachments: int = Field(50, ge=0, le=1000)
    max_references: int = Field(50, ge=1, le=1000)
    soft_bounce_threshold: int = Field(3, ge=1, le=100)
    soft_bounce_window_days: int = Field(30, ge=1, le=3650)
    # Bearer token of the pipe endpoint POST /channels/email/inbound; the endpoint refuses all without it.
    inbound_token: SecretStr | None = None

    @field_validator("from_address", mode="before")
    @classmethod
    def _from(cls, value: str) -> str:
        return _address(value) or ""

    @field_validator("sender_addresses", mode="before")
    @classmethod
    def _senders(cls, value: list[str] | str) -> list[str]:
        if isinstance(value, str):  # HUB_CHANNELS__EMAIL__SENDER_ADDRESSES="a@x.example,@y.example"
            value = [part for part in value.split(",") if part.strip()]
        out = []
        for entry in value:
            entry = str(entry).strip()
            if not entry:
                continue
            if entry.startswith("@"):
                # A domain: checked as the right-hand side of an address would be.
                out.append("@" + (_address("postmaster" + entry) or "").rpartition("@")[2])
            else:
                out.append(_address(entry) or "")
        return out

    def allows_sender(self, address: str) -> bool:
        """Whether `address` (normalised) may be the From address of a message."""
        return (address == self.from_address or address in self.sender_addresses
                or "@" + address.rpartition("@")[2] in self.sender_addresses)

    @field_validator("reply_to", "bounce_address", mode="before")
    @classmethod
    def _optional_address(cls, value: str | None) -> str | None:
        return _address(value)

    @field_validator("from_name", "smtp_host", "message_id_domain", "smtp_username")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "\r\n\0"):
            raise ValueError("may not contain line breaks")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EmailSettings:
        if self.max_raw_bytes < self.max_message_bytes:
            raise ValueError("max_raw_bytes must be at least max_message_bytes")
        if self.smtp_password is not None and not self.smtp_username:
            raise ValueError("smtp_password is set but smtp_username is not")
        if self.smtp_username and self.smtp_security == "none" and self.smtp_host not in LOOPBACK:
            raise ValueError(f"smtp_security 'none' would send the SMTP password to {self.smtp_host} in plain "
                             "text; use 'starttls' or 'tls'")
        if self.reply_to_tagged and not (self.reply_to or self.from_address):
            raise ValueError("reply_to_tagged needs reply_to or from_address")
        return self

    @property
    def effective_smtp_port(self) -> int:
        return self.smtp_port or {"starttls": 587, "tls": 465, "none": 25}[self.smtp_security]

    @property
    def id_domain(self) -> str:
        return self.message_id_domain or (self.from_address.rpartition("@")[2] if self.from_address else "hub.invalid")

    @property
    def envelope_sender(self) -> str:
        return self.bounce_address or self.from_address
