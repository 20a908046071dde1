"""The contact page's compose panels (email, SMS, log call): form posts in, the channels' own services out.

The channel routes take JSON for API clients; these take the panels' forms, call the same service
functions (compose_email, compose_sms, log_call), and answer with the panel re-rendered: fresh and
confirmed after a success (which also refreshes the timeline), or with each error beside its field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from channels.email.compose import EmailDraft, EmailRefused, compose_email, email_addresses
from channels.phone.calls import CallOutcome
from channels.phone.service import CallRefused, FollowUp, ManualCall, log_call
from channels.sms.compose import SmsDraft, SmsRefused, compose_sms, phone_numbers
from channels.sms.optout import is_opted_out
from channels.sms.segments import MAX_BODY_CHARS, count_segments
from hub.ingest import ContactNotFound, get_contact
from hub.models import Direction, TimelineEvent
from hub.web.card import display_phone
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, render, require

router = APIRouter()
Sender = Annotated[Agent, Depends(require("timeline:write"))]
PANELS = ("email", "sms", "phone")
GENERAL = "_form"  # the key of an error that belongs to no single field

NOT_CONFIGURED = N_("This channel is not configured yet; an admin can set it up.")
EMAIL_ERRORS = {"invalid-identity": ("to", N_("That is not a valid email address.")),
                "not-found": (GENERAL, N_("An attached file is gone; attach it again."))}
SMS_ERRORS = {"sms-opted-out": (GENERAL, N_("This contact opted out of SMS (replied STOP); they must text START "
                                            "to receive SMS again.")),
              "sms-too-long": ("text", N_("The message is too long for an SMS.")),
              "invalid-identity": ("to", N_("That is not a valid phone number.")),
              "sms-refused": ("to", N_("Choose one of the contact's phone numbers."))}
CALL_FIELDS = {"occurred_at": N_("A logged call cannot be in the future."),
               "number": N_("That is not a valid phone number."),
               "duration_seconds": N_("Give the duration in minutes, at most a day."),
               "follow_up.title": N_("Give the follow-up a title."),
               "follow_up.due_at": N_("The due time is not a valid date and time."),
               "follow_up.assignee_id": N_("Choose an active user to assign the task to.")}


def _options(db: Session, contact_id: int) -> dict[str, Any]:
    try:
        contact = get_contact(db, contact_id)
    except ContactNotFound:
        raise PageError(404, N_("There is no such contact.")) from None
    phones = phone_numbers(db, contact_id=contact.id)  # type: ignore[arg-type]
    return {"emails": email_addresses(db, contact_id=contact.id),  # type: ignore[arg-type]
            "phones": [(p, display_phone(p)) for p in phones],
            "opted_out": is_opted_out(db, contact_id=contact.id)}  # type: ignore[arg-type]


def _panel(request: Request, agent: Agent, channel: str, contact_id: int, *, values: dict[str, Any] | None = None,
           errors: dict[str, str] | None = None, sent: str | None = None, status: int = 200) -> Response:
    """The panel's form: blank with a new client id after `sent`, else the agent's values and the errors."""
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        options = _options(db, contact_id)
    configured = bool(hub.channels.get(channel) and hub.channels[channel].configured)
    fresh = {"client_id": uuid.uuid4().hex}
    panel = {"contact_id": contact_id, "form": fresh if sent or values is None else values, "errors": errors or {},
             "sent": sent, "configured": configured, "max_chars": MAX_BODY_CHARS, **options}
    panel["counter"] = count_segments(panel["form"].get("text") or "")
    response = render(request, agent, f"compose/{channel}.html", status=status, panel=panel,
                      card={"id": contact_id}, max_chars=MAX_BODY_CHARS)
    if sent:
        response.headers["HX-Trigger"] = f"{channel}-sent, timeline-refresh"
    return response


def _pydantic_errors(exc: ValidationError, messages: dict[str, str], fallback: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        key = where if where in messages else GENERAL
        errors.setdefault(key, messages.get(where, fallback))
    return errors


@router.get("/contacts/{contact_id}/compose/{channel}")
def panel_form(request: Request, contact_id: int, channel: str, agent: Sender,
               reply_to: int | None = None) -> Response:
    if channel not in PANELS:
        raise PageError(404, N_("There is no such page."))
    values: dict[str, Any] = {"client_id": uuid.uuid4().hex}
    if channel == "email" and reply_to is not None:
        # Answering an email: its sender and subject become the defaults (compose_email threads it).
        with get_hub(request).session(read_only=True) as db:
            event = db.get(TimelineEvent, reply_to)
            if event is not None and event.channel == "email" and event.contact_id == contact_id:
                subject = event.subject or ""
                values.update(reply_to_event_id=event.id,
                              subject=subject if subject.lower().startswith("re:") else f"Re: {subject}".strip(),
                              to=(event.data or {}).get("from") or "" if event.direction == Direction.IN else "")
    return _panel(request, agent, channel, contact_id, values=values)


@router.post("/contacts/{contact_id}/compose/email")
def send_email(request: Request, contact_id: int, agent: Sender, to: Annotated[str, Form(max_length=320)] = "",
               subject: Annotated[str, Form(max_length=998)] = "", text: Annotated[str, Form(max_length=1_000_000)] = "",
               reply_to_event_id: Annotated[str, Form(max_length=20)] = "",
               client_id: Annotated[str, Form(max_length=100)] = "") -> Response:
    values = {"to": to, "subject": subject, "text": text, "reply_to_event_id": reply_to_event_id,
              "client_id": client_id}
    fields = {"text": N_("Write the message first."), "subject": N_("An email needs a subject on one line."),
              "to": N_("Choose one of the contact's email addresses.")}
    if not text.strip():
        return _panel(request, agent, "email", contact_id, values=values, errors={"text": fields["text"]}, status=422)
    with get_hub(request).session() as db:
        try:
            draft = EmailDraft(contact_id=contact_id, subject=subject.strip() or None, text=text, to=to or None,
                               reply_to_event_id=int(reply_to_event_id) if reply_to_event_id.isdigit() else None,
                               client_id=client_id or None)
            compose_email(db, draft=draft, actor=agent.principal)
        except ValidationError as exc:
            return _panel(request, agent, "email", contact_id, values=values, status=422,
                          errors=_pydantic_errors(exc, fields, N_("Check the message and try again.")))
        except ContactNotFound:
            raise PageError(404, N_("There is no such contact.")) from None
        except EmailRefused as exc:
            db.rollback()
            return _panel(request, agent, "email", contact_id, values=values, status=exc.status,
                          errors=dict([_email_error(exc, fields)]))
        db.commit()
    return _panel(request, agent, "email", contact_id, sent=N_("Email queued; it shows on the timeline."))


def _email_error(exc: EmailRefused, fields: dict[str, str]) -> tuple[str, str]:
    if exc.slug in EMAIL_ERRORS:
        return EMAIL_ERRORS[exc.slug]
    if exc.slug == "channel-not-configured":
        return GENERAL, NOT_CONFIGURED
    # compose_email refuses with one generic slug; its message names what it refused.
    message = str(exc)
    if "subject" in message:
        return "subject", fields["subject"]
    if "address" in message:
        return "to", fields["to"]
    return GENERAL, message


@router.post("/contacts/{contact_id}/compose/sms/segments")
def sms_segments(request: Request, contact_id: int, agent: Sender,
                 text: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    return render(request, agent, "compose/sms.html", counter=count_segments(text), max_chars=MAX_BODY_CHARS)


@router.post("/contacts/{contact_id}/compose/sms")
def send_sms(request: Request, contact_id: int, agent: Sender, to: Annotated[str, Form(max_length=50)] = "",
             text: Annotated[str, Form(max_length=20_000)] = "",
             client_id: Annotated[str, Form(max_length=100)] = "") -> Response:
    values = {"to": to, "text": text, "client_id": client_id}
    if not text.strip():
        return _panel(request, agent, "sms", contact_id, values=values, status=422,
                      errors={"text": N_("Write the message first.")})
    with get_hub(request).session() as db:
        try:
            draft = SmsDraft(contact_id=contact_id, text=text, to=to or None, client_id=client_id or None)
            compose_sms(db, draft=draft, actor=agent.principal)
        except ContactNotFound:
            raise PageError(404, N_("There is no such contact.")) from None
        except SmsRefused as exc:
            db.rollback()
            field, message = SMS_ERRORS.get(exc.slug, (GENERAL, NOT_CONFIGURED if exc.slug == "channel-not-configured"
                                                                else str(exc)))
            return _panel(request, agent, "sms", contact_id, values=values, errors={field: message}, status=exc.status)
        db.commit()
    return _panel(request, agent, "sms", contact_id, sent=N_("SMS queued; it shows on the timeline."))


def _minutes(value: str) -> int | None:
    if not value.strip():
        return None
    minutes = float(value.replace(",", "."))  # ValueError for words; the caller reports it
    if not 0 <= minutes <= 24 * 60:
        raise ValueError("out of range")
    return round(minutes * 60)


def _due(value: str, agent: Agent) -> datetime | None:
    if not value:
        return None
    naive = datetime.fromisoformat(value)
    return naive.replace(tzinfo=agent.fmt.tz) if naive.tzinfo is None else naive


@router.post("/contacts/{contact_id}/compose/phone")
def log_phone_call(request: Request, contact_id: int, agent: Sender,
                   direction: Annotated[str, Form(max_length=20)] = "out",
                   outcome: Annotated[str, Form(max_length=20)] = "", minutes: Annotated[str, Form(max_length=10)] = "",
                   number: Annotated[str, Form(max_length=50)] = "", notes: Annotated[str, Form(max_length=20_000)] = "",
                   follow_up: Annotated[str, Form(max_length=500)] = "",
                   follow_up_due: Annotated[str, Form(max_length=40)] = "",
                   client_id: Annotated[str, Form(max_length=100)] = "") -> Response:
    values = {"direction": direction, "outcome": outcome, "minutes": minutes, "number": number, "notes": notes,
              "follow_up": follow_up, "follow_up_due": follow_up_due, "client_id": client_id}
    errors: dict[str, str] = {}
    seconds = due = None
    if direction not in ("in", "out"):
        errors["direction"] = N_("Choose whether the call was incoming or outgoing.")
    if outcome not in set(CallOutcome):
        errors["outcome"] = N_("Choose how the call went.")
    try:
        seconds = _minutes(minutes)
    except ValueError:
        errors["duration_seconds"] = CALL_FIELDS["duration_seconds"]
    try:
        due = _due(follow_up_due, agent)
    except ValueError:
        errors["follow_up.due_at"] = CALL_FIELDS["follow_up.due_at"]
    if follow_up_due and not follow_up.strip():
        errors["follow_up.title"] = CALL_FIELDS["follow_up.title"]
    if errors:
        return _panel(request, agent, "phone", contact_id, values=values, errors=errors, status=422)
    with get_hub(request).session() as db:
        try:
            call = ManualCall(contact_id=contact_id, direction=direction, outcome=CallOutcome(outcome),  # type: ignore[arg-type]
                              duration_seconds=seconds, number=number or None, notes=notes.strip() or None,
                              follow_up=FollowUp(title=follow_up.strip(), due_at=due) if follow_up.strip() else None,
                              client_id=client_id or None)
            log_call(db, call=call, actor=agent.principal)
        except ValidationError as exc:
            return _panel(request, agent, "phone", contact_id, values=values, status=422,
                          errors=_pydantic_errors(exc, CALL_FIELDS, N_("Check the call's details and try again.")))
        except ContactNotFound:
            raise PageError(404, N_("There is no such contact.")) from None
        except CallRefused as exc:
            db.rollback()
            key = exc.field if exc.field in CALL_FIELDS else GENERAL
            return _panel(request, agent, "phone", contact_id, values=values, status=exc.status,
                          errors={key: CALL_FIELDS.get(exc.field or "", str(exc))})
        db.commit()
    return _panel(request, agent, "phone", contact_id, sent=N_("Call logged on the timeline."))
