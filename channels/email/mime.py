"""Outbound MIME: what an outbox row's content becomes on the wire.

Written straight to bytes with the standard library's encoders (RFC 2047 words from
`email.header`, quoted-printable from `binascii`, base64, RFC 2231 file names): building an
`email.message` object and serialising it cost ~1.8 ms a message, most of the send path of a
campaign, and its header folding turned a long List-Unsubscribe URL into RFC 2047 words that no
mailbox provider reads (docs/campaigns.md, "Throughput").

Every value a user or contact can influence is one line before it is written (names and subjects
are flattened; addresses, Message-IDs and URLs are validated as printable ASCII without spaces),
so no value can start a header of its own. Bodies are quoted-printable and attachments base64:
the message is 7-bit clean, and a retry carries the same Message-ID and boundaries (both derive
from the idempotency key), so its bytes equal the first attempt's apart from the Date.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from email.header import Header
from email.utils import encode_rfc2231, format_datetime, formataddr
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from hub.html import html_to_text
from channels.email.settings import EmailSettings

CRLF = "\r\n"
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
    # The From header for this message (a campaign's sender): its name, and an address that must be
    # the channel's from_address or one of its sender_addresses (checked when queued and when sent).
    from_name: NoBreaks | None = Field(default=None, max_length=200)
    from_address: NoBreaks | None = Field(default=None, max_length=320)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=100)
    in_reply_to: str | None = Field(default=None, max_length=300)
    references: list[str] = Field(default_factory=list, max_length=1000)
    thread_key: str | None = Field(default=None, max_length=300)
    # RFC 2369 / RFC 8058 headers for campaign mail: an https or mailto URL, and one-click POST.
    list_unsubscribe: NoBreaks | None = Field(default=None, max_length=2000)
    list_unsubscribe_post: bool = False
    # A meeting invitation or cancellation (channels.meetings).
    calendar: CalendarPart | None = None
    # RFC 3834: a message a program sent on its own (an out-of-hours reply is "auto-replied"), so
    # the other side's autoresponder does not answer it and loop.
    auto_submitted: Literal["auto-replied", "auto-generated"] | None = None

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


def ascii_address(addr: str) -> str:
    """The address as 7-bit mail carries it: an international domain in its xn-- form. A local part
    outside ASCII needs SMTPUTF8, which this mailer does not use: ValueError."""
    if addr.isascii():
        return addr
    local, _, domain = addr.rpartition("@")
    if not local.isascii():
        raise ValueError(f"{addr!r} has a non-ASCII local part, which needs SMTPUTF8; the hub sends 7-bit mail only")
    import idna

    return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"


def _mailbox(header: str, name: str | None, addr: str) -> str:
    """`Header: Name <addr>`; a name that is not plain ASCII as RFC 2047 words of at most 75
    characters, and the address on a line of its own when the line would pass 78."""
    addr, name = ascii_address(addr), one_line(name or "")
    if not name:  # formataddr's answer without a name (a campaign's To header)
        return f"{header}: {addr}"
    if name.isascii() and "=?" not in name:
        return f"{header}: {formataddr((name, addr))}"
    shown = Header(name, "utf-8", header_name=header).encode(linesep=CRLF)
    last = f"{header}: {shown}".rsplit(CRLF, 1)[-1]
    return f"{header}: {shown}{CRLF if len(last) + len(addr) + 3 > 78 else ''} <{addr}>"


# The From header is the same for every message of a campaign (and of a channel): built once, not
# through formataddr or email.header each time.
_sender = lru_cache(maxsize=64)(_mailbox)


def _text(name: str, value: str) -> str:
    """An unstructured header (Subject): RFC 2047 words when it is not plain ASCII, folded at 78."""
    plain = value.isascii() and "=?" not in value
    direct = _plain_value(name, value) if plain else _utf8_words(name, value)
    if direct is not None:
        return f"{name}: {direct}"
    return f"{name}: " + Header(value, "us-ascii" if plain else "utf-8", header_name=name).encode(linesep=CRLF)


# What str.splitlines() breaks at: email.header folds a value at each of these, so such a value
# takes the standard library's path.
_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_MAX_LINE = 78
_UTF8_CHROME = len("=?utf-8?b??=")
_QP_SAFE_BYTES = b"!*+-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz "
_QP_SAFE = frozenset(_QP_SAFE_BYTES)  # one column each in a Q word (the space as "_"); others three


def _plain_value(name: str, value: str) -> str | None:
    """A plain ASCII value that fits on the header's first line is written as it is (what
    `email.header.Header` returns for it); None when it must be folded."""
    if not value or len(name) + 2 + len(value) > _MAX_LINE or _LINE_BREAKS.search(value):
        return None
    return value


def _utf8_words(name: str, value: str) -> str | None:
    """`email.header.Header(value, "utf-8", header_name=name).encode(linesep=CRLF)` for a one-line
    value, without its per-character re-encoding (quadratic in the value's length, ~4% of a
    campaign worker's time): the shorter of base64 and Q for the whole value, words cut at
    character boundaries to fit 78 columns, one per line. None for what it does not cover (an
    empty value, line breaks, characters UTF-8 cannot encode); the caller then asks email.header.
    tests/channels/email/test_mime.py holds it to the standard library's output."""
    if not value or _LINE_BREAKS.search(value):
        return None
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    q_length = len(data) + 2 * len(data.translate(None, _QP_SAFE_BYTES))
    b64 = (len(data) + 2) // 3 * 4 < q_length  # email.charset's SHORTEST, ties to Q
    room = _MAX_LINE - len(name) - 2 - _UTF8_CHROME  # the first line carries "Name: "
    if ((len(data) + 2) // 3 * 4 if b64 else q_length) <= room:
        return _word(data, b64)  # one word (most subjects)
    q_lengths = [1 if byte in _QP_SAFE else 3 for byte in data]
    words: list[str] = []
    start = used = 0  # the current word's first byte, and its Q length so far
    at = 0
    for char in value:
        size = len(char.encode("utf-8"))
        end = at + size
        width = (end - start + 2) // 3 * 4 if b64 else used + sum(q_lengths[at:end])
        if width > room:
            if at == start:
                return None  # not even one character fits (a very long header name)
            words.append(_word(data[start:at], b64))
            start, used, room = at, 0, _MAX_LINE - 1 - _UTF8_CHROME
            width = (end - start + 2) // 3 * 4 if b64 else sum(q_lengths[at:end])
        used = width
        at = end
    words.append(_word(data[start:], b64))
    return f"{CRLF} ".join(words)


def _word(data: bytes, b64: bool) -> str:
    if b64:
        return f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="
    return "=?utf-8?q?" + "".join(chr(b) if b in _QP_SAFE and b != 32 else "_" if b == 32 else f"={b:02X}"
                                  for b in data) + "?="


_last_date: tuple[datetime, str] | None = None


def _date_value(date: datetime) -> str:
    """`format_datetime(date)`, remembered for the last second asked: a batch's messages share it."""
    global _last_date
    whole = date.replace(microsecond=0)
    last = _last_date
    if last is not None and last[0] == whole and last[0].tzinfo is whole.tzinfo and last[0].fold == whole.fold:
        return last[1]
    value = format_datetime(whole)
    _last_date = (whole, value)
    return value


def _structured(name: str, tokens: list[str]) -> str:
    """A header of space-separated ASCII tokens (References), folded between tokens; one long token
    (a URL) stays whole, which RFC 5322 allows up to 998 characters."""
    lines, line = [], f"{name}:"
    for token in tokens:
        if len(line) + 1 + len(token) > 78 and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {token}"
    lines.append(line)
    return CRLF.join(lines)


def _params(key: str, value: str) -> list[str]:
    """A Content-Type/Disposition parameter: quoted when plain ASCII, else RFC 2231 (percent-encoded
    UTF-8), split into numbered continuations so no line passes 78 characters."""
    if value.isascii() and not any(c in value for c in '"\\') and len(value) <= 60:
        return [f'{key}="{value}"']
    encoded = encode_rfc2231(value, "utf-8")  # utf-8''%D0%A1…
    if len(encoded) <= 64:
        return [f"{key}*={encoded}"]
    pieces, rest = [], encoded
    while rest:
        cut = min(60, len(rest))
        while cut < len(rest) and "%" in rest[cut - 2:cut]:  # never split a %XX triple
            cut -= 1
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return [f"{key}*{n}*={piece}" for n, piece in enumerate(pieces)]


def _with_params(name: str, value: str, params: list[str]) -> str:
    """`Name: value; p1; p2`, each parameter on a line of its own when the whole would pass 78."""
    line = "; ".join([f"{name}: {value}", *params])
    if len(line) <= 78:
        return line
    return f";{CRLF} ".join([f"{name}: {value}", *params])


def _qp(text: str) -> str:
    """Quoted-printable lines (76 characters, soft breaks), each ending in CRLF, the last one too."""
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    if not normal.endswith("\n"):
        normal += "\n"
    return binascii.b2a_qp(normal.encode("utf-8"), istext=True).decode("ascii").replace("\n", CRLF)


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", CRLF)


def _part(content_type: str, body: str, *, encoding: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [f"Content-Type: {content_type}", *extra, f"Content-Transfer-Encoding: {encoding}", "", body]


def _multipart(subtype: str, boundary: str, parts: list[list[str]]) -> list[str]:
    lines = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"', ""]
    for part in parts:
        lines += [f"--{boundary}", *part]
    return lines + [f"--{boundary}--", ""]


def build_message(
    content: EmailContent,
    *,
    settings: EmailSettings,
    to_address: str,
    idempotency_key: str,
    date: datetime,
    read_attachment: Callable[[AttachmentRef], bytes],
    max_references: int = 50,
) -> tuple[bytes, str]:
    """The message for one delivery as it goes over SMTP (CRLF, 7-bit), and its Message-ID
    (without brackets). ValueError for an address 7-bit mail cannot carry."""
    token = message_token(idempotency_key)
    message_id = f"{token}@{settings.id_domain}"

    head = [
        _sender("From", content.from_name or settings.from_name, content.from_address or settings.from_address),
        _mailbox("To", content.to_name, to_address),
        _text("Subject", one_line(content.subject, limit=998)),
        f"Date: {_date_value(date)}",
        f"Message-ID: <{message_id}>",
        _mailbox("Reply-To", settings.from_name, reply_address(settings, token)),
    ]
    if content.in_reply_to:
        head.append(f"In-Reply-To: <{content.in_reply_to}>")
    references = [r for r in content.references if not r.startswith("mid-sha256:")][-max_references:]
    if references:
        head.append(_structured("References", [f"<{r}>" for r in references]))
    if content.list_unsubscribe:
        head.append(_structured("List-Unsubscribe", [f"<{content.list_unsubscribe}>"]))
        if content.list_unsubscribe_post:
            head.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    if content.auto_submitted:
        head.append(f"Auto-Submitted: {content.auto_submitted}")
    head.append("MIME-Version: 1.0")

    # Boundaries from the token: the bytes of a retry equal the first attempt's. "=_" cannot
    # occur in quoted-printable or base64 text, so no body line can look like a boundary.
    text = content.text if content.text else html_to_text(content.html or "", links=True)
    alternatives = [_part('text/plain; charset="utf-8"', _qp(text), encoding="quoted-printable")]
    if content.html:
        alternatives.append(_part('text/html; charset="utf-8"', _qp(content.html), encoding="quoted-printable"))
    attachments: list[list[str]] = []
    if content.calendar is not None:
        # Calendar clients read the alternative (RFC 6047); others offer the attachment. Base64
        # keeps the CRLF line ends and the folding of the iCalendar text byte for byte.
        method = content.calendar.method
        ics = _b64(content.calendar.ics.encode("utf-8"))
        alternatives.append(_part(f'text/calendar; charset="utf-8"; method="{method}"', ics, encoding="base64"))
        attachments.append(_part(f'text/calendar; method="{method}"; charset="utf-8"; name="invite.ics"', ics,
                                 encoding="base64", extra=('Content-Disposition: attachment; filename="invite.ics"',)))
    for ref in content.attachments:
        filename = one_line(ref.filename, limit=255)
        attachments.append(_part(
            _with_params("Content-Type", ref.content_type.lower(), _params("name", filename))[len("Content-Type: "):],
            _b64(read_attachment(ref)), encoding="base64",
            extra=(_with_params("Content-Disposition", "attachment", _params("filename", filename)),)))

    boundary = f"=_hub_{token[:20]}"
    body = alternatives[0] if len(alternatives) == 1 else _multipart("alternative", f"{boundary}_1", alternatives)
    if attachments:
        body = _multipart("mixed", f"{boundary}_0", [body, *attachments])
    elif len(alternatives) > 1:
        body = _multipart("alternative", f"{boundary}_0", alternatives)
    return CRLF.join([*head, *body]).encode("ascii"), message_id
