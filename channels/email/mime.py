"""Outbound MIME: what an outbox row's content becomes on the wire.

Every header value a user or contact can influence passes through Python's header registry
(which refuses CR and LF) after names are flattened to one line, so no value can start a header
of its own. Bodies are quoted-printable and attachments base64: the message is 7-bit clean and a
retry carries the same Message-ID and boundaries (both derive from the idempotency key).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import MIMEPart
from email.utils import format_datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from channels.email.html import html_to_text
from channels.email.settings import EmailSettings

SMTP_POLICY = email_policy.SMTP
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_MSGID = re.compile(r"^[!-;=?-~]{1,250}@[!-;=?-~]{1,250}$")  # printable ASCII without < > and spaces


def one_line(value: str, *, limit: int = 200) -> str:
    """A display value flattened to one line: control characters (CR, LF, tab, NUL…) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID without angle brackets or surrounding space; None when there is none."""
    if not value:
        return None
    value = value.strip()
    match = re.search(r"<([^<>\s]+)>", value)
    value = match.group(1) if match else value.split()[0] if value.split() else ""
    value = value.strip("<>")
    if not value or len(value) > 290 or not _MSGID.match(value):
        return None if not value else _hashed_id(value)
    return value


def _hashed_id(value: str) -> str:
    # Over-long or odd ids still need a stable key that fits the external_id column.
    return "mid-sha256:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def message_token(idempotency_key: str) -> str:
    """The local part of a delivery's Message-ID: 32 base32 characters of SHA-256(idempotency key)."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()[:20]
    return base64.b32encode(digest).decode().lower()


def message_id_for(idempotency_key: str, domain: str) -> str:
    """The Message-ID (no brackets) a delivery carries on every attempt."""
    return f"{message_token(idempotency_key)}@{domain}"


def reply_address(settings: EmailSettings, token: str) -> str:
    """Where replies go: the configured reply-to, tagged with the message token when enabled."""
    base = settings.reply_to or settings.from_address
    if not settings.reply_to_tagged:
        return base
    local, _, domain = base.rpartition("@")
    return f"{local}+{token}@{domain}"


NoBreaks = Annotated[str, StringConstraints(pattern=r"^[^\r\n\x00]*$")]


class AttachmentRef(BaseModel):
    """A stored file (see channels.email.store) an outbound message carries."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = None
    filename: NoBreaks = Field(min_length=1, max_length=255)
    content_type: str = Field(pattern=r"^[a-zA-Z0-9][\w.+-]*/[\w.+-]+$", max_length=255)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class CalendarPart(BaseModel):
    """An iCalendar invitation (RFC 5545/5546) an email carries: a text/calendar alternative whose
    MIME `method=` equals the METHOD inside, plus the same file attached as invite.ics."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["REQUEST", "CANCEL", "PUBLISH", "REPLY", "COUNTER", "DECLINECOUNTER", "REFRESH", "ADD"]
    ics: str = Field(min_length=1, max_length=1_000_000)

    @model_validator(mode="after")
    def _method_matches(self) -> CalendarPart:
        from icalendar import Calendar

        try:
            parsed = Calendar.from_ical(self.ics)
        except ValueError as exc:
            raise ValueError(f"calendar.ics is not iCalendar text: {exc}") from None
        if str(parsed.get("METHOD", "")).upper() != self.method:
            raise ValueError("calendar.method must equal the METHOD inside the iCalendar text")
        return self


class EmailContent(BaseModel):
    """The content of an email outbox row; `validate_content` checks it before anything is queued."""

    model_config = ConfigDict(extra="forbid")

    subject: NoBreaks = Field(min_length=1, max_length=998)
    text: str | None = Field(default=None, max_length=2_000_000)
    html: str | None = Field(default=None, max_length=5_000_000)
    to_name: str | None = Field(default=None, max_length=300)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=100)
    in_reply_to: str | None = Field(default=None, max_length=300)
    references: list[str] = Field(default_factory=list, max_length=1000)
    thread_key: str | None = Field(default=None, max_length=300)
    # RFC 2369 / RFC 8058 headers for campaign mail: an https or mailto URL, and one-click POST.
    list_unsubscribe: NoBreaks | None = Field(default=None, max_length=2000)
    list_unsubscribe_post: bool = False
    # A meeting invitation or cancellation (channels.meetings).
    calendar: CalendarPart | None = None

    @field_validator("in_reply_to")
    @classmethod
    def _msgid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalized = normalize_message_id(value)
        if normalized is None or any(c in value for c in "\r\n"):
            raise ValueError("in_reply_to is not a Message-ID")
        return normalized

    @field_validator("references")
    @classmethod
    def _msgids(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            normalized = normalize_message_id(item)
            if normalized is None or any(c in item for c in "\r\n"):
                raise ValueError(f"{item[:80]!r} in references is not a Message-ID")
            out.append(normalized)
        return out

    @field_validator("list_unsubscribe")
    @classmethod
    def _unsubscribe(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(https://|mailto:)[!-~]+$", value):
            raise ValueError("list_unsubscribe must be one https:// or mailto: URL without spaces")
        return value

    @model_validator(mode="after")
    def _has_body(self) -> EmailContent:
        if not (self.text or self.html):
            raise ValueError("an email needs text or html")
        if self.list_unsubscribe_post and not (self.list_unsubscribe or "").startswith("https://"):
            raise ValueError("list_unsubscribe_post needs an https:// list_unsubscribe URL")
        return self


def _address(name: str | None, addr: str) -> Address:
    local, _, domain = addr.rpartition("@")
    return Address(display_name=one_line(name or ""), username=local, domain=domain)


def build_message(
    content: EmailContent,
    *,
    settings: EmailSettings,
    to_address: str,
    idempotency_key: str,
    date: datetime,
    read_attachment: Callable[[AttachmentRef], bytes],
    max_references: int = 50,
) -> tuple[MIMEPart, str]:
    """The message for one delivery and its Message-ID (without brackets)."""
    token = message_token(idempotency_key)
    message_id = f"{token}@{settings.id_domain}"

    root = MIMEPart(policy=SMTP_POLICY)
    root["From"] = _address(settings.from_name, settings.from_address)
    root["To"] = _address(content.to_name, to_address)
    root["Subject"] = one_line(content.subject, limit=998)
    root["Date"] = format_datetime(date)
    root["Message-ID"] = f"<{message_id}>"
    root["Reply-To"] = _address(settings.from_name, reply_address(settings, token))
    if content.in_reply_to:
        root["In-Reply-To"] = f"<{content.in_reply_to}>"
    references = [r for r in content.references if not r.startswith("mid-sha256:")][-max_references:]
    if references:
        root["References"] = " ".join(f"<{r}>" for r in references)
    if content.list_unsubscribe:
        root["List-Unsubscribe"] = f"<{content.list_unsubscribe}>"
        if content.list_unsubscribe_post:
            root["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    root["MIME-Version"] = "1.0"

    # MIMEPart, not EmailMessage: its sub-parts then carry no MIME-Version header of their own.
    text = content.text if content.text else html_to_text(content.html or "")
    root.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if content.html:
        root.add_alternative(content.html, subtype="html", charset="utf-8", cte="quoted-printable")
    if content.calendar is not None:
        # Calendar clients read the alternative (RFC 6047); others offer the attachment. Base64
        # keeps the CRLF line ends and the folding of the iCalendar text byte for byte.
        method = {"method": content.calendar.method}
        root.add_alternative(content.calendar.ics, subtype="calendar", charset="utf-8", cte="base64", params=method)
        root.add_attachment(content.calendar.ics.encode("utf-8"), maintype="text", subtype="calendar",
                            filename="invite.ics", params={**method, "charset": "utf-8"})
    for ref in content.attachments:
        maintype, _, subtype = ref.content_type.lower().partition("/")
        root.add_attachment(read_attachment(ref), maintype=maintype, subtype=subtype,
                            filename=one_line(ref.filename, limit=255))

    # Boundaries from the token: the bytes of a retry equal the first attempt's. "=_" cannot
    # occur in quoted-printable or base64 text, so no body line can look like a boundary.
    for index, part in enumerate(p for p in root.walk() if p.is_multipart()):
        part.set_boundary(f"=_hub_{token[:20]}_{index}")
    return root, message_id


def to_bytes(message: MIMEPart) -> bytes:
    """The message as it goes over SMTP (CRLF line ends, 7-bit)."""
    return message.as_bytes(policy=SMTP_POLICY)
