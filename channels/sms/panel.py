"""The SMS compose panel on the contact page, with a live segment counter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from channels.sms.compose import SmsDraft, SmsRefused, compose_sms
from channels.twilio_common.numbers import phone_numbers
from channels.sms.optout import is_opted_out
from channels.twilio_common.segments import MAX_BODY_CHARS, count_segments
from hub.web.card import display_phone
from hub.web.i18n import N_
from hub.web.pages import Agent, get_hub, render
from hub.web.panels import GENERAL, NOT_CONFIGURED, Sender, contact_or_404, render_panel

ERRORS = {"sms-opted-out": (GENERAL, N_("This contact opted out of SMS (replied STOP); they must text START "
                                        "to receive SMS again.")),
          "sms-too-long": ("text", N_("The message is too long for an SMS.")),
          "invalid-identity": ("to", N_("That is not a valid phone number.")),
          "sms-refused": ("to", N_("Choose one of the contact's phone numbers."))}


def build_router() -> APIRouter:
    router = APIRouter()

    def panel(request: Request, agent: Agent, contact_id: int, *, values: dict[str, Any] | None = None,
              sent: str | None = None, **kwargs: Any) -> Response:
        with get_hub(request).session(read_only=True) as db:
            contact = contact_or_404(db, contact_id)
            options = {"phones": [(p, display_phone(p)) for p in phone_numbers(db, contact_id=contact.id)],  # type: ignore[arg-type]
                       "opted_out": is_opted_out(db, contact_id=contact.id),  # type: ignore[arg-type]
                       "max_chars": MAX_BODY_CHARS,
                       "counter": count_segments("" if sent or values is None else values.get("text") or "")}
        return render_panel(request, agent, "sms", contact_id, options=options, values=values, sent=sent, **kwargs)

    @router.get("/contacts/{contact_id}/compose/sms")
    def form(request: Request, contact_id: int, agent: Sender) -> Response:
        return panel(request, agent, contact_id)

    @router.post("/contacts/{contact_id}/compose/sms/segments")
    def segments(request: Request, contact_id: int, agent: Sender,
                 text: Annotated[str, Form(max_length=20_000)] = "") -> Response:
        return render(request, agent, "compose/sms.html", counter=count_segments(text), max_chars=MAX_BODY_CHARS)

    @router.post("/contacts/{contact_id}/compose/sms")
    def send(request: Request, contact_id: int, agent: Sender, to: Annotated[str, Form(max_length=50)] = "",
             text: Annotated[str, Form(max_length=20_000)] = "",
             client_id: Annotated[str, Form(max_length=100)] = "") -> Response:
        values = {"to": to, "text": text, "client_id": client_id}
        if not text.strip():
            return panel(request, agent, contact_id, values=values, status=422,
                         errors={"text": N_("Write the message first.")})
        with get_hub(request).session() as db:
            try:
                contact_or_404(db, contact_id)
                compose_sms(db, draft=SmsDraft(contact_id=contact_id, text=text, to=to or None,
                                               client_id=client_id or None), actor=agent.principal)
            except SmsRefused as exc:
                db.rollback()
                field, message = ERRORS.get(exc.slug, (GENERAL, NOT_CONFIGURED if exc.slug == "channel-not-configured"
                                                       else str(exc)))
                return panel(request, agent, contact_id, values=values, errors={field: message}, status=exc.status)
            db.commit()
        return panel(request, agent, contact_id, sent=N_("SMS queued; it shows on the timeline."))

    return router
