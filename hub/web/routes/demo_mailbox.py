"""The demo's test mailbox (admins, `hub serve --demo` only): the mail the local SMTP server kept, the
SMS the local Twilio server carried, and a reply written as the customer.

The reply goes back through the email channel's own inbound path (`receive_file`, what the HTTP
pipe and the IMAP poll call), threaded to the message it answers by In-Reply-To and References.
"""

from __future__ import annotations

import mailbox
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from hub import clock
from hub.models import TimelineEvent
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require
from hub.web.timeline_view import STATUS_LABELS

router = APIRouter(prefix="/admin/test-mailbox")
Admin = Annotated[Agent, Depends(require("admin"))]
SHOWN = 100
_KEY = re.compile(r"^[A-Za-z0-9._\-:,]{1,200}$")
# The message as the customer's mail app shows it: images load (the open is counted), links open in a
# new tab (the click is counted), nothing runs.
VIEW_CSP = ("default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; "
            "sandbox allow-popups allow-popups-to-escape-sandbox; frame-ancestors 'none'; form-action 'none'")
NO_DEMO = N_("The test mailbox exists only in the demo (hub serve --demo).")


@dataclass(frozen=True)
class Mail:
    key: str
    received_at: datetime | None
    sender: str
    recipient: str
    subject: str
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else None

    @property
    def links(self) -> list[str]:
        html = self.html
        if html is None:
            return re.findall(r"https?://[^\s<>\"')]+", self.text)
        collector = _Links()
        collector.feed(html)
        return collector.hrefs


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href and href.startswith(("http://", "https://")) and href not in self.hrefs:
            self.hrefs.append(href)


def _folder(request: Request) -> Path:
    folder = get_hub(request).settings.demo.mailbox
    if folder is None:
        raise PageError(404, NO_DEMO)
    return folder


def _maildir(folder: Path) -> mailbox.Maildir:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(folder, create=True)


def _read(box: mailbox.Maildir, key: str) -> Mail:
    if not _KEY.match(key):
        raise PageError(404, N_("There is no such message in the test mailbox."))
    try:
        data = box.get_bytes(key)
        delivered = box.get_message(key).get_date()
    except (KeyError, FileNotFoundError):
        raise PageError(404, N_("There is no such message in the test mailbox.")) from None
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return Mail(key=key, received_at=datetime.fromtimestamp(delivered, timezone.utc) if delivered else None,
                sender=str(message.get("From", "")), recipient=str(message.get("Delivered-To") or message.get("To", "")),
                subject=str(message.get("Subject", "")), message=message)


def list_mail(folder: Path, *, limit: int = SHOWN) -> list[Mail]:
    """The newest messages first."""
    box = _maildir(folder)
    # A Maildir name starts with its delivery time in seconds, and then counts up within the second.
    newest = sorted(box.keys(), key=_delivery_order, reverse=True)[:limit]
    return [_read(box, key) for key in newest]


def _delivery_order(key: str) -> tuple[int, str]:
    head = key.partition(".")[0]
    return (int(head) if head.isdigit() else 0, key)


def text_messages(request: Request) -> tuple[list[dict[str, Any]], str | None]:
    """The SMS the local Twilio server carried (newest first), or why they cannot be shown."""
    url = get_hub(request).settings.demo.twilio_url
    if not url:
        return [], None
    import httpx

    try:
        state = httpx.get(f"{url.rstrip('/')}/_local/state", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return [], N_("The local Twilio server does not answer.")
    messages = list(reversed(state.get("messages", [])))
    for message in messages:
        try:
            message["sent_at"] = parsedate_to_datetime(message.get("date_created") or "")
        except (TypeError, ValueError):
            message["sent_at"] = None
    return messages, None


@router.get("")
def inbox(request: Request, agent: Admin) -> Response:
    folder = _folder(request)
    sms, sms_error = text_messages(request)
    return render(request, agent, "demo_mailbox.html", mails=list_mail(folder), folder=folder, sms=sms,
                  statuses=STATUS_LABELS,
                  sms_error=sms_error, twilio_url=get_hub(request).settings.demo.twilio_url)


@router.get("/{key}")
def message_page(request: Request, key: str, agent: Admin) -> Response:
    mail = _read(_maildir(_folder(request)), key)
    return render(request, agent, "demo_mailbox_message.html", mail=mail, values={}, error=None)


@router.get("/{key}/view")
def view(request: Request, key: str, agent: Admin) -> Response:
    """The message's HTML as a document of its own, under a policy that lets images and links work."""
    mail = _read(_maildir(_folder(request)), key)
    html = mail.html
    if html is None:
        from html import escape

        html = f"<pre>{escape(mail.text)}</pre>"
    # Links open in a new tab, as a mail app opens them, and the message stays on screen.
    return HTMLResponse('<base target="_blank">' + html, headers={"Content-Security-Policy": VIEW_CSP, "Cache-Control": "no-store",
                                       "Referrer-Policy": "no-referrer"})


def customer_reply(original: EmailMessage, *, body: str, now: datetime) -> bytes:
    """An RFC 822 reply from the recipient of `original`, threaded to it."""
    customer = str(original.get("Delivered-To") or original.get("To", ""))
    hub_address = str(original.get("Reply-To") or original.get("From", ""))
    subject = str(original.get("Subject", ""))
    reply = EmailMessage()
    reply["From"] = customer
    reply["To"] = hub_address
    reply["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    reply["Date"] = format_datetime(now)
    domain = (getaddresses([customer])[0][1].rpartition("@")[2] or "customer.invalid")
    reply["Message-ID"] = make_msgid(domain=domain)
    original_id = str(original.get("Message-ID", "")).strip()
    if original_id:
        reply["In-Reply-To"] = original_id
        reply["References"] = " ".join(filter(None, [str(original.get("References", "")).strip(), original_id]))
    part = original.get_body(preferencelist=("plain",))
    quoted = "\n".join("> " + line for line in (part.get_content() if part is not None else "").splitlines())
    reply.set_content(body.strip() + ("\n\n" + quoted if quoted else "") + "\n")
    return bytes(reply)


@router.post("/{key}/reply")
async def reply(request: Request, key: str, agent: Admin,
                body: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    hub = get_hub(request)
    mail = _read(_maildir(_folder(request)), key)
    if not body.strip():
        return render(request, agent, "demo_mailbox_message.html", mail=mail, status=422, values={"body": body},
                      error=N_("Write the customer's answer first."))
    if "email" not in hub.channels:
        raise PageError(409, N_("The email channel is not installed."))
    data = customer_reply(mail.message, body=body, now=clock.now())
    spool = Path(hub.settings.data_dir) / "demo" / "replies"
    spool.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=spool, suffix=".eml", delete=False) as handle:
        handle.write(data)
    received = await run_in_threadpool(hub.channel("email").receive_file, Path(handle.name),  # type: ignore[attr-defined]
                                       origin={"via": "demo-mailbox"})
    if received.event_id is None:
        raise PageError(422, N_("The hub did not keep the reply."))
    with hub.session(read_only=True) as db:
        event = db.get(TimelineEvent, received.event_id)
        contact_id = event.contact_id if event is not None else None
    return redirect(request, f"/contacts/{contact_id}" if contact_id else "/admin/test-mailbox")
