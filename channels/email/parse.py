"""Raw RFC 822 bytes → a timeline event and the files that came with it. Pure: no I/O, no clock.

Real mail is messy, so every step degrades instead of failing: a header the strict parser chokes on
is decoded from its raw form, an unknown charset falls back to UTF-8 and then Windows-1252, a body
that cannot be walked leaves a headers-only event. Whatever was not trusted is listed in `defects`,
and the caller keeps such a message raw.
"""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email import policy as email_policy
from email.errors import MissingHeaderBodySeparatorDefect
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from channels.email import dsn, quotes
from hub.html import html_to_text, sanitize_html
from channels.email.mime import normalize_message_id, one_line
from hub.identities import InvalidIdentity, normalize_email
from hub.ingest import IdentityRef, InboundEvent
from hub.models import Direction, IdentityKind

CHANNEL = "email"
MB = 1024 * 1024
UNKNOWN_SENDER = "email:unknown-sender"
# Headers kept on the event for the agent and for rules (the full set is in the raw message).
_KEPT_HEADERS = ("list-id", "list-unsubscribe", "auto-submitted", "precedence", "x-mailer", "user-agent",
                 "content-language", "return-path", "delivered-to", "x-original-to", "organization")
_CHARSET_ALIASES = {
    "cp-1251": "cp1251", "win-1251": "cp1251", "x-cp1251": "cp1251", "windows1251": "cp1251",
    "iso-8859-8-i": "iso-8859-8", "x-mac-cyrillic": "mac_cyrillic", "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "x-sjis": "shift_jis",
    "x-user-defined": "cp1252", "utf8": "utf-8", "x-unicode20utf8": "utf-8",
    "unknown-8bit": "", "x-unknown": "", "unknown": "", "us-ascii": "", "ascii": "", "ansi_x3.4-1968": "",
}
_SURROGATES = re.compile("[\ud800-\udfff]")
_SAFE_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_EXTENSIONS = {"text/plain": ".txt", "text/html": ".html", "message/rfc822": ".eml", "image/jpeg": ".jpg",
               "application/octet-stream": ".bin", "text/rfc822-headers": ".txt"}


@dataclass(frozen=True)
class ParseLimits:
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_attachments: int = 50
    max_references: int = 50
    max_text_chars: int = 1_000_000
    max_html_chars: int = 2_000_000
    max_depth: int = 30


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytes | None  # None when it was over the size cap (the raw message keeps it)
    content_id: str | None = None
    inline: bool = False
    skipped: str | None = None

    def describe(self) -> dict[str, Any]:
        info = {"filename": self.filename, "content_type": self.content_type, "size": self.size,
                "sha256": self.sha256, "inline": self.inline}
        if self.content_id:
            info["content_id"] = self.content_id
        if self.skipped:
            info["skipped"] = self.skipped
        return info


@dataclass(frozen=True)
class ParsedMessage:
    event: InboundEvent
    attachments: tuple[ParsedAttachment, ...]
    message_id: str | None
    # Message-IDs this one answers, most relevant first (In-Reply-To, then References newest first).
    thread_candidates: tuple[str, ...]
    recipients: tuple[str, ...]
    report: dsn.DeliveryReport | None
    defects: tuple[str, ...]
    sha256: str


def clean(value: str, fallback_charset: str | None = None) -> str:
    """Text the store accepts: no NUL, no lone surrogates (8-bit header bytes decoded after all)."""
    if _SURROGATES.search(value):
        raw = value.encode("utf-8", "surrogateescape")
        for charset in ("utf-8", fallback_charset):
            if charset:
                try:
                    value = raw.decode(charset)
                    break
                except (UnicodeDecodeError, LookupError):
                    continue
        else:
            value = raw.decode("cp1252", "replace")
        value = _SURROGATES.sub("\ufffd", value)
    return value.replace("\x00", "")


def _codec(charset: str | None) -> str | None:
    name = (charset or "").strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a text part in their declared charset (KOI8-R, windows-1251, UTF-7…), never failing."""
    codec = _codec(charset)
    if codec:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(codec or "cp1252", "replace")


def _decode_raw_header(value: str, fallback_charset: str | None) -> str:
    out = []
    try:
        parts = decode_header(value)
    except Exception:  # noqa: BLE001 - a header beyond even the lenient decoder: take it as written
        return clean(value, fallback_charset)
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(decode_text(chunk, charset or fallback_charset))
        else:
            out.append(chunk)
    return clean("".join(out), fallback_charset)


def header(message: Message, name: str, fallback_charset: str | None = None) -> str | None:
    """One header's decoded text (encoded words and RFC 2047 charsets resolved), or None."""
    try:
        value = message.get(name)
        if value is not None:
            return clean(" ".join(str(value).split()), fallback_charset)
    except Exception:  # noqa: BLE001 - the strict header parser failed; decode the raw value instead
        pass
    for key, raw in message.raw_items():
        if key.lower() == name.lower():
            return " ".join(_decode_raw_header(str(raw), fallback_charset).split())
    return None


def _addresses(message: Message, name: str, charset: str | None) -> list[tuple[str, str]]:
    try:
        value = message.get(name)
        found = [(clean(a.display_name, charset), clean(a.addr_spec, charset)) for a in getattr(value, "addresses", ())]
        if found:
            return found
    except Exception:  # noqa: BLE001
        pass
    text = header(message, name, charset)
    return [(clean(n, charset), clean(a, charset)) for n, a in getaddresses([text])] if text else []


def _email(address: str) -> str | None:
    try:
        return normalize_email(address)
    except InvalidIdentity:
        return None


def _message_ids(value: str | None, limit: int) -> list[str]:
    if not value:
        return []
    found = re.findall(r"<([^<>\s]{1,400})>", value)
    ids = [normalize_message_id(f"<{v}>") for v in found[-limit:]] if found else [normalize_message_id(value)]
    return [i for i in ids if i]


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if not 1970 <= parsed.year <= 2200:
        return None
    return parsed.astimezone(timezone.utc)


def safe_filename(name: str | None, content_type: str, index: int) -> str:
    """A file name that names nothing outside its folder and shows no control characters."""
    name = clean(name or "")
    if name.startswith("=?"):
        name = _decode_raw_header(name, None)
    name = re.split(r"[\\/]", name)[-1]
    name = re.sub(r"[\x00-\x1f\x7f<>:\"|?*\u202a-\u202e\u2066-\u2069]", "_", name).strip(" .")
    if not name:
        ext = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type, strict=False) or ".bin"
        name = f"attachment-{index}{ext}"
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 140 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:150]
    return name


@dataclass
class _Body:
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def extend(self, other: _Body, *, texts: bool = True, htmls: bool = True) -> None:
        if texts:
            self.texts += other.texts
        if htmls:
            self.htmls += other.htmls
        self.attachments += other.attachments
        self.defects += other.defects


class _Walker:
    def __init__(self, limits: ParseLimits, charset: str | None) -> None:
        self.limits = limits
        self.charset = charset
        self.attachment_count = 0

    def walk(self, part: Message, depth: int = 0) -> _Body:
        body = _Body()
        body.defects += [f"{type(d).__name__}" for d in getattr(part, "defects", [])]
        if depth > self.limits.max_depth:
            body.defects.append(f"nesting deeper than {self.limits.max_depth} levels was not read")
            return body
        ctype = part.get_content_type()
        if part.is_multipart():
            children = [c for c in part.get_payload() if isinstance(c, Message)]
            if ctype == "message/rfc822" or ctype == "message/global":
                self._attach(body, part, ctype)
            elif ctype == "multipart/alternative":
                self._alternative(body, children, depth)
            elif ctype == "multipart/related":
                for i, child in enumerate(children):
                    sub = self.walk(child, depth + 1)
                    if i:  # resources of the root part (inline images)
                        sub.attachments = [_inline(a) for a in sub.attachments]
                    body.extend(sub)
            else:
                for child in children:
                    body.extend(self.walk(child, depth + 1))
            return body
        if ctype in dsn._REPORT_TYPES:
            return body  # read by dsn.read_report
        disposition = part.get_content_disposition()
        named = bool(part.get_param("filename", header="content-disposition") or part.get_param("name"))
        if disposition != "attachment" and not named and ctype.startswith("text/") and ctype not in _FILE_TEXT:
            text = self._text(part)
            (body.htmls if ctype == "text/html" else body.texts).append(text)
            return body
        self._attach(body, part, ctype)
        return body

    def _alternative(self, body: _Body, children: list[Message], depth: int) -> None:
        subs = [self.walk(child, depth + 1) for child in children]
        text_from = next((s for s in subs if s.texts), None)
        html_from = next((s for s in reversed(subs) if s.htmls), None)
        for sub in subs:
            if sub is text_from or sub is html_from:
                body.extend(sub, texts=sub is text_from, htmls=sub is html_from)
            else:
                body.defects += sub.defects

    def _text(self, part: Message) -> str:
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = str(part.get_payload()).encode("utf-8", "surrogateescape")
        return clean(decode_text(data, part.get_content_charset() or self.charset))

    def _attach(self, body: _Body, part: Message, ctype: str) -> None:
        self.attachment_count += 1
        index = self.attachment_count
        if ctype.startswith("message/"):
            inner = part.get_payload()
            try:
                data = inner[0].as_bytes() if isinstance(inner, list) and inner else part.get_payload(decode=True)
            except Exception:  # noqa: BLE001 - an attached message that cannot be re-serialised
                data = part.get_payload(decode=True)
                body.defects.append("an attached message could not be re-serialised")
        else:
            data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = str(part.get_payload() or "").encode("utf-8", "surrogateescape")
        content_type = ctype if _SAFE_TYPE.match(ctype) else "application/octet-stream"
        try:
            filename = part.get_filename()
        except Exception:  # noqa: BLE001
            filename = None
        if filename is None and ctype.startswith("message/"):
            filename = "message.eml"
        content_id = normalize_message_id(header(part, "Content-ID")) if part.get("Content-ID") else None
        skipped = None
        if index > self.limits.max_attachments:
            skipped = f"more than {self.limits.max_attachments} attachments"
        elif len(data) > self.limits.max_attachment_bytes:
            skipped = f"larger than {self.limits.max_attachment_bytes} bytes"
        body.attachments.append(ParsedAttachment(
            filename=safe_filename(filename, content_type, index),
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            data=None if skipped else data,
            content_id=content_id,
            inline=part.get_content_disposition() == "inline",
            skipped=skipped,
        ))


# Text types that are files to keep, not prose to show.
_FILE_TEXT = {"text/calendar", "text/csv", "text/vcard", "text/x-vcard", "text/rfc822-headers",
              "text/directory", "text/x-diff", "text/x-patch"}


def _inline(a: ParsedAttachment) -> ParsedAttachment:
    return ParsedAttachment(a.filename, a.content_type, a.size, a.sha256, a.data, a.content_id, True, a.skipped)


def _body_charset(message: Message) -> str | None:
    for part in message.walk() if message.is_multipart() else [message]:
        charset = part.get_content_charset()
        if _codec(charset):
            return charset
    return None


# A header field as Python's parser takes it; and the obsolete form with blanks before the colon
# (RFC 5322 4.5.3, "Subject :"), which it does not.
_FIELD = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_OBS_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:[ \t]*")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def salvage_header_block(raw: bytes) -> tuple[bytes, list[str]] | None:
    """The message with the header lines Python's parser stops at mended, and what was mended.

    One line that is not a header field ends the header block for Python's parser: every field
    after it (To, Subject, Message-ID, the MIME headers) becomes body text. Other mail readers go
    on: an obsolete "Name :" is read as a field, any other bad line is skipped, and the fields
    after it are read. Bad lines after the last real field start the body, as they would have.
    None when there is nothing to mend, or no field at all.
    """
    found = _BLANK_LINE.search(raw)
    head, rest = (raw[:found.start()], raw[found.end():]) if found else (raw, b"")
    lines = head.splitlines(keepends=True)
    kinds = []
    for index, line in enumerate(lines):
        if _FIELD.match(line) or (index == 0 and line.startswith(b"From ")):
            kinds.append("field")
        elif line[:1] in (b" ", b"\t") and kinds and kinds[-1] in ("field", "mended", "continued"):
            kinds.append("continued")
        elif _OBS_FIELD.match(line):
            kinds.append("mended")
        else:
            kinds.append("bad")
    if "field" not in kinds and "mended" not in kinds:
        return None
    last = max(i for i, kind in enumerate(kinds) if kind in ("field", "mended", "continued"))
    if all(kind != "bad" and kind != "mended" for kind in kinds[:last + 1]):
        return None
    kept, defects = [], []
    for line, kind in zip(lines[:last + 1], kinds[:last + 1]):
        shown = line.rstrip(b"\r\n")[:80].decode("utf-8", "replace")
        if kind == "mended":
            kept.append(_OBS_FIELD.sub(lambda m: m.group(1) + b": ", line, count=1))
            defects.append(f"a header name with blanks before its colon was read as a field: {shown!r}")
        elif kind == "bad":
            defects.append(f"a line that is not a header field was skipped: {shown!r}")
        else:
            kept.append(line)
    ending = b"\r\n" if b"\r\n" in head[:200] else b"\n"
    kept = [line if line.endswith(b"\n") else line + ending for line in kept]
    tail = b"".join(lines[last + 1:])
    # Lines after the last field were the body's beginning: after the blank line they stay there.
    body = tail + (ending if tail and not tail.endswith(b"\n") else b"") + (ending + rest if found and tail else rest)
    return b"".join(kept) + ending + body, defects


def parse_message(raw: bytes, *, limits: ParseLimits = ParseLimits()) -> ParsedMessage:
    """Read one raw message into an event (kind message, auto_reply or bounce) and its attachments."""
    if not isinstance(raw, (bytes, bytearray)):
        raise ValueError("an email message is bytes")
    raw = bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    message = BytesParser(policy=email_policy.default).parsebytes(raw)
    salvaged: list[str] = []
    if not message.keys() or any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in message.defects):
        mended = salvage_header_block(raw)
        if mended is not None:
            message = BytesParser(policy=email_policy.default).parsebytes(mended[0])
            salvaged = mended[1]
    if not message.keys():
        raise ValueError("not an RFC 822 message: it has no header fields")
    try:
        charset = _body_charset(message)
        body = _Walker(limits, charset).walk(message)
    except Exception as exc:  # noqa: BLE001 - a body the parser cannot walk: keep the headers, flag it
        charset = None
        body = _Body(defects=[f"the body could not be read ({type(exc).__name__})"])
    body.defects += salvaged
    return _assemble(message, body, digest=digest, charset=charset, limits=limits)


def parse_headers_only(header_block: bytes, *, digest: str, note: str, data: dict[str, Any] | None = None,
                       limits: ParseLimits = ParseLimits()) -> ParsedMessage:
    """An event from a message's headers alone (its body was not read), with `note` saying why."""
    message = BytesHeaderParser(policy=email_policy.default).parsebytes(header_block)
    parsed = _assemble(message, _Body(texts=[note], defects=["body not read"]), digest=digest, charset=None,
                       limits=limits)
    merged = {**parsed.event.data, "body_not_read": True, **(data or {})}
    return replace(parsed, event=parsed.event.model_copy(update={"data": merged, "text": note}))


def too_large_note(size: int, limit: int) -> str:
    return (f"This message is {size / MB:.1f} MB, over the {limit / MB:.0f} MB limit, so the hub did not "
            "open it. It is kept raw for inspection.")


def _assemble(message: Message, body: _Body, *, digest: str, charset: str | None, limits: ParseLimits) -> ParsedMessage:
    def h(m: Message, name: str) -> str | None:
        return header(m, name, charset)

    message_id = normalize_message_id(h(message, "Message-ID"))
    in_reply_to = (_message_ids(h(message, "In-Reply-To"), 1) or [None])[-1]
    references = _message_ids(h(message, "References"), limits.max_references)
    senders = _addresses(message, "From", charset) or _addresses(message, "Sender", charset)
    sender_name, sender_addr = senders[0] if senders else ("", "")
    sender_email = _email(sender_addr) if sender_addr else None
    subject = one_line(h(message, "Subject") or "", limit=1000) or None
    recipients: list[str] = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
        recipients += [a.lower() for _, a in _addresses(message, name, charset) if "@" in a]

    report = None
    if message.get_content_type() == "multipart/report":
        try:
            report = dsn.read_report(message, header=h)
        except Exception:  # noqa: BLE001 - a broken report is still a bounce message, just unread
            body.defects.append("the delivery report could not be read")
    auto_reason = dsn.auto_reply_reason(message, header=h)

    text = "\n\n".join(t for t in body.texts if t.strip())
    html = sanitize_html("\n<hr>\n".join(body.htmls)) if body.htmls else ""
    if not text and body.htmls:
        text = html_to_text(html)
    folded = quotes.fold(text)
    identities, display_name, kind = [], one_line(sender_name, limit=300) or None, "message"
    failed = [r for r in report.recipients if r.failed] if report else []
    if report is not None or dsn.looks_like_bounce(sender_email, subject):
        kind = "bounce"
        # A bounce belongs on the timeline of the person the mail did not reach.
        for recipient in failed or (report.recipients if report else ()):
            addr = _email(recipient.address)
            if addr:
                identities.append(IdentityRef(kind=IdentityKind.EMAIL, value=addr))
        if identities:
            display_name = None
    elif auto_reason:
        kind = "auto_reply"
    if not identities:
        if sender_email:
            identities = [IdentityRef(kind=IdentityKind.EMAIL, value=sender_email)]
        elif "@" in sender_addr:
            identities = [IdentityRef(kind=IdentityKind.EXTERNAL, value=f"email:{sender_addr.lower()[:300]}")]
        else:
            identities = [IdentityRef(kind=IdentityKind.EXTERNAL, value=UNKNOWN_SENDER)]
            display_name = "Unknown email sender"

    original_id = normalize_message_id(report.original_message_id) if report else None
    candidates = [c for c in [original_id, in_reply_to, *reversed(references)] if c]
    candidates = list(dict.fromkeys(candidates))[: limits.max_references + 2]
    external_id = message_id or f"sha256:{digest}"
    root = original_id or (references[0] if references else in_reply_to or external_id)

    data: dict[str, Any] = {
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references": references,
        "from": sender_addr[:320] or (h(message, "From") or "")[:320],
        "reply_to": [a for _, a in _addresses(message, "Reply-To", charset) if "@" in a][:10],
        "to": [a for _, a in _addresses(message, "To", charset)][:100],
        "cc": [a for _, a in _addresses(message, "Cc", charset)][:100],
        "attachments": [a.describe() for a in body.attachments],
        "quoted_text": folded.quoted[: limits.max_text_chars],
        "signature": folded.signature[:10_000],
        "auto_reply": kind == "auto_reply",
        "headers": {n: v[:500] for n in _KEPT_HEADERS if (v := h(message, n))},
    }
    if kind == "auto_reply":
        data["auto_reply_reason"] = auto_reason
    if not sender_email:
        data["sender_unverified"] = True
    if body.defects:
        data["defects"] = sorted(set(body.defects))[:20]
    if report is not None:
        data["report"] = {
            "original_message_id": original_id,
            "reporting_mta": report.reporting_mta,
            "recipients": [
                {"address": r.address, "action": r.action, "status": r.status, "hard": r.hard,
                 "diagnostic": (r.diagnostic or "")[:1000] or None}
                for r in report.recipients
            ],
        }
    html_out = html if len(html) <= limits.max_html_chars else None
    if html and html_out is None:
        data["html_dropped"] = f"sanitized HTML over {limits.max_html_chars} characters"
    event = InboundEvent(
        channel=CHANNEL,
        kind=kind,
        direction=Direction.IN,
        external_id=external_id,
        occurred_at=_date(h(message, "Date")),
        identities=identities[:20],
        display_name=display_name,
        subject=subject,
        text=folded.text[: limits.max_text_chars],
        html=html_out or None,
        data=data,
        thread_key=f"email:{root}"[:300],
    )
    return ParsedMessage(
        event=event,
        attachments=tuple(body.attachments),
        message_id=message_id,
        thread_candidates=tuple(candidates),
        recipients=tuple(dict.fromkeys(recipients)),
        report=report,
        defects=tuple(sorted(set(body.defects))),
        sha256=digest,
    )
