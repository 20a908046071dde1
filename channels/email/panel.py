"""The email pages of the workspace: the compose panel on the contact page (a new message or a
reply, with attachments), and for admins the mail kept raw because it could not be read whole."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.responses import Response

from channels.email.compose import EmailDraft, EmailRefused, compose_email, email_addresses, store_upload
from channels.email.models import EmailRawMessage
from hub.extensions import NavEntry
from hub.models import Direction, TimelineEvent
from hub.web.i18n import N_
from hub.web.pages import Agent, get_hub, render, require
from hub.web.panels import GENERAL, NOT_CONFIGURED, Sender, contact_or_404, new_form, pydantic_errors, render_panel

if TYPE_CHECKING:
    from channels.email.channel import EmailChannel

ERRORS = {"invalid-identity": ("to", N_("That is not a valid email address.")),
          "not-found": (GENERAL, N_("An attached file is gone; attach it again.")),
          "attachment-too-large": ("files", N_("An attached file is too large."))}
FIELDS = {"text": N_("Write the message first."), "subject": N_("An email needs a subject on one line."),
          "to": N_("Choose one of the contact's email addresses."),
          "files": N_("Attach at most 20 files.")}
MAX_FILES = 20
KEPT_PATH = "/admin/email/kept"
KEPT_NAV = NavEntry(N_("Kept mail"), KEPT_PATH, "admin", "alert")
KEPT_SHOWN = 200


def build_router(channel: EmailChannel) -> APIRouter:
    router = APIRouter()

    def panel(request: Request, agent: Agent, contact_id: int, **kwargs: Any) -> Response:
        with get_hub(request).session(read_only=True) as db:
            contact = contact_or_404(db, contact_id)
            options = {"emails": email_addresses(db, contact_id=contact.id)}  # type: ignore[arg-type]
        return render_panel(request, agent, "email", contact_id, options=options, **kwargs)

    @router.get("/contacts/{contact_id}/compose/email")
    def form(request: Request, contact_id: int, agent: Sender, reply_to: int | None = None) -> Response:
        values = new_form()
        if reply_to is not None:
            # Answering an email: its sender and subject become the defaults (compose_email threads it).
            with get_hub(request).session(read_only=True) as db:
                event = db.get(TimelineEvent, reply_to)
                if event is not None and event.channel == "email" and event.contact_id == contact_id:
                    subject = event.subject or ""
                    values.update(reply_to_event_id=event.id,
                                  subject=subject if subject.lower().startswith("re:") else f"Re: {subject}".strip(),
                                  to=(event.data or {}).get("from") or "" if event.direction == Direction.IN else "")
        return panel(request, agent, contact_id, values=values)

    @router.post("/contacts/{contact_id}/compose/email")
    def send(request: Request, contact_id: int, agent: Sender, to: Annotated[str, Form(max_length=320)] = "",
             subject: Annotated[str, Form(max_length=998)] = "", text: Annotated[str, Form(max_length=1_000_000)] = "",
             reply_to_event_id: Annotated[str, Form(max_length=20)] = "",
             client_id: Annotated[str, Form(max_length=100)] = "",
             files: Annotated[list[UploadFile], File()] = []) -> Response:  # noqa: B006
        values = {"to": to, "subject": subject, "text": text, "reply_to_event_id": reply_to_event_id,
                  "client_id": client_id}
        files = [f for f in files if f.filename]  # an empty file input still sends one nameless part
        if not text.strip():
            return panel(request, agent, contact_id, values=values, errors={"text": FIELDS["text"]}, status=422)
        if len(files) > MAX_FILES:
            return panel(request, agent, contact_id, values=values, errors={"files": FIELDS["files"]}, status=422)
        with get_hub(request).session() as db:
            contact_or_404(db, contact_id)
            try:
                uploaded = [store_upload(db, channel=channel, data=f.file.read(channel.settings.max_attachment_bytes + 1),
                                         filename=f.filename, content_type=f.content_type,
                                         uploaded_by=agent.principal.user_id) for f in files]
                draft = EmailDraft(contact_id=contact_id, subject=subject.strip() or None, text=text, to=to or None,
                                   reply_to_event_id=int(reply_to_event_id) if reply_to_event_id.isdigit() else None,
                                   attachment_ids=[row.id for row in uploaded], client_id=client_id or None)
                compose_email(db, draft=draft, actor=agent.principal)
            except ValidationError as exc:
                db.rollback()
                return panel(request, agent, contact_id, values=values, status=422,
                             errors=pydantic_errors(exc, FIELDS, N_("Check the message and try again.")))
            except EmailRefused as exc:
                db.rollback()
                return panel(request, agent, contact_id, values=values, status=exc.status,
                             errors=dict([_error(exc)]))
            db.commit()
        return panel(request, agent, contact_id, sent=N_("Email queued; it shows on the timeline."))

    @router.get(KEPT_PATH)
    def kept(request: Request, agent: Annotated[Agent, Depends(require("admin"))]) -> Response:
        """Every message kept raw (unreadable, malformed, too large), newest first, with why."""
        with get_hub(request).session(read_only=True) as db:
            total = db.scalar(select(func.count()).select_from(EmailRawMessage)) or 0
            rows = db.execute(
                select(EmailRawMessage, TimelineEvent).outerjoin(TimelineEvent, TimelineEvent.id == EmailRawMessage.event_id)
                .order_by(EmailRawMessage.id.desc()).limit(KEPT_SHOWN)
            ).all()
            items = [_kept_item(raw, event) for raw, event in rows]
        return render(request, agent, "admin_email_kept.html", items=items, total=total, shown=KEPT_SHOWN)

    return router


def _kept_item(raw: EmailRawMessage, event: TimelineEvent | None) -> dict[str, Any]:
    data = (event.data or {}) if event is not None else {}
    origin = raw.origin or {}
    where = (f"{origin['mailbox']}, UID {origin.get('uid')}" if origin.get("mailbox") else origin.get("via") or "")
    return {"id": raw.id, "received": raw.created_at, "reason": raw.reason, "size": raw.size,
            "message_id": raw.message_id, "where": where, "defects": ([origin["error"]] if origin.get("error") else []) + list(data.get("defects") or [])[:5],
            "subject": event.subject if event is not None else None, "sender": data.get("from") or None,
            "event_id": event.id if event is not None else None,
            "contact_id": event.contact_id if event is not None else None}


def _error(exc: EmailRefused) -> tuple[str, str]:
    if exc.slug in ERRORS:
        return ERRORS[exc.slug]
    if exc.slug == "channel-not-configured":
        return GENERAL, NOT_CONFIGURED
    # compose_email refuses with one generic slug; its message names what it refused.
    message = str(exc)
    if "subject" in message:
        return "subject", FIELDS["subject"]
    if "address" in message:
        return "to", FIELDS["to"]
    return GENERAL, message
