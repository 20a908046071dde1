"""Delivery status notifications (RFC 3464) per recipient, and auto-replies (RFC 3834 and habits).

Only `Action: failed` with a 5.x.x status is a hard bounce; `failed` with 4.x.x is a soft one;
`delayed`, `delivered`, `relayed` and `expanded` are reports, not bounces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email import policy as email_policy

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPORT_TYPES = {"message/delivery-status", "message/global-delivery-status"}
_ORIGINAL_TYPES = {"message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"}


@dataclass(frozen=True)
class RecipientStatus:
    address: str
    action: str
    status: str
    diagnostic: str | None

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    @property
    def hard(self) -> bool:
        return self.failed and self.status.startswith("5.")


@dataclass(frozen=True)
class DeliveryReport:
    recipients: tuple[RecipientStatus, ...]
    original_message_id: str | None  # as written, brackets and all; the caller normalizes
    reporting_mta: str | None


def _address_field(value: str | None) -> str | None:
    # "rfc822; Anna@Example.org" or "rfc822;<anna@example.org>"
    if not value:
        return None
    _, _, addr = value.partition(";") if ";" in value else ("", "", value)
    addr = addr.strip().strip("<>").strip()
    return addr.lower() or None


def _unfold(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _blocks(part: Message) -> list[Message]:
    """The field groups of a delivery-status part (per-message first, then one per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
        return payload
    # A part the parser left as text (odd transfer encodings): read its groups ourselves.
    raw = part.get_payload(decode=True) or b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    groups = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [HeaderParser(policy=email_policy.compat32).parsestr(g + "\n") for g in groups if g.strip()]


def read_report(message: Message, *, header: Callable[[Message, str], str | None]) -> DeliveryReport | None:
    """The per-recipient statuses of a multipart/report DSN; None for any other message."""
    if message.get_content_type() != "multipart/report":
        return None
    parts = message.get_payload()
    if not isinstance(parts, list):
        return None
    status_part = next((p for p in parts if p.get_content_type() in _REPORT_TYPES), None)
    if status_part is None:
        return None
    blocks = _blocks(status_part)
    per_message, per_recipient = (blocks[0], blocks[1:]) if blocks else (None, [])
    recipients = []
    for block in per_recipient:
        address = _address_field(block.get("Final-Recipient")) or _address_field(block.get("Original-Recipient"))
        if not address:
            continue
        action = _unfold(block.get("Action")).lower().split(" ")[0] if block.get("Action") else ""
        status_match = _STATUS.search(_unfold(block.get("Status")))
        diagnostic = _unfold(block.get("Diagnostic-Code")) or None
        if status_match is None and diagnostic:
            status_match = _STATUS.search(diagnostic)
        status = status_match.group(0) if status_match else ""
        recipients.append(RecipientStatus(address=address, action=action, status=status, diagnostic=diagnostic))

    original_id = None
    original = next((p for p in parts if p.get_content_type() in _ORIGINAL_TYPES), None)
    if original is not None:
        inner = original.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            original_id = header(inner[0], "Message-ID")
        else:
            raw = original.get_payload(decode=True) or b""
            headers = BytesHeaderParser(policy=email_policy.compat32).parsebytes(raw if isinstance(raw, bytes) else b"")
            original_id = headers.get("Message-ID")
    reporting = _unfold(per_message.get("Reporting-MTA")) if per_message is not None else None
    return DeliveryReport(recipients=tuple(recipients), original_message_id=original_id, reporting_mta=reporting or None)


_VACATION_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|answer)|autoreply|auto:|out of (the )?office|vacation|"
    r"away from (the )?office|абонент недоступен|автоответ|автоматический ответ|нет на месте|в отпуске|"
    r"abwesenheitsnotiz|automatische antwort|réponse automatique|absence)",
    re.IGNORECASE,
)


def auto_reply_reason(message: Message, *, header: Callable[[Message, str], str | None]) -> str | None:
    """Why this message is an automatic reply (vacation, autoresponder), or None when a person wrote it."""
    auto_submitted = (header(message, "Auto-Submitted") or "").strip().lower()
    # RFC 3834: any keyword but "no" (auto-replied, auto-generated, auto-notified, …), which may
    # carry parameters ("auto-replied; owner-email=…") or a comment ("no (a person wrote)").
    keyword = re.split(r"[\s;(]", auto_submitted, maxsplit=1)[0]
    if keyword and keyword != "no":
        return f"Auto-Submitted: {auto_submitted[:60]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation"):
        if header(message, name) is not None:
            return name
    if (header(message, "X-Autogenerated") or "").strip().lower() == "reply":
        return "X-Autogenerated: Reply"
    if "autoresponder" in (header(message, "X-POST-MessageClass") or "").lower():
        return "X-POST-MessageClass"
    precedence = (header(message, "Precedence") or "").strip().lower()
    if precedence == "auto_reply":
        return "Precedence: auto_reply"
    subject = header(message, "Subject") or ""
    if precedence in {"bulk", "junk", "list"} and _VACATION_SUBJECT.search(subject):
        return f"Precedence: {precedence} with a vacation subject"
    if (header(message, "X-Auto-Response-Suppress") or "") and _VACATION_SUBJECT.search(subject):
        return "an Exchange automatic reply"
    return None


_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery (status notification|failure|has failed)|returned mail|failure notice|"
    r"mail delivery failed|недоставлен|не доставлено)",
    re.IGNORECASE,
)


def looks_like_bounce(sender: str | None, subject: str | None) -> bool:
    """A bounce without a machine-readable report (old MTAs): recorded, never counted as a reply."""
    return bool(sender and _BOUNCE_SENDER.match(sender) and _BOUNCE_SUBJECT.search(subject or ""))
