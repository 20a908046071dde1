"""The call-logging panel on the contact page: a call made or taken outside Twilio, and a follow-up."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from channels.phone.calls import CallOutcome
from channels.phone.service import CallRefused, FollowUp, ManualCall, log_call
from channels.twilio_common.numbers import phone_numbers
from hub.web.card import display_phone
from hub.web.i18n import N_
from hub.web.pages import Agent, get_hub
from hub.web.panels import GENERAL, Sender, contact_or_404, pydantic_errors, render_panel

FIELDS = {"occurred_at": N_("A logged call cannot be in the future."),
          "number": N_("That is not a valid phone number."),
          "duration_seconds": N_("Give the duration in minutes, at most a day."),
          "follow_up.title": N_("Give the follow-up a title."),
          "follow_up.due_at": N_("The due time is not a valid date and time."),
          "follow_up.assignee_id": N_("Choose an active user to assign the task to.")}


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


def build_router() -> APIRouter:
    router = APIRouter()

    def panel(request: Request, agent: Agent, contact_id: int, **kwargs: Any) -> Response:
        with get_hub(request).session(read_only=True) as db:
            contact = contact_or_404(db, contact_id)
            options = {"phones": [(p, display_phone(p)) for p in phone_numbers(db, contact_id=contact.id)]}  # type: ignore[arg-type]
        return render_panel(request, agent, "phone", contact_id, options=options, **kwargs)

    @router.get("/contacts/{contact_id}/compose/phone")
    def form(request: Request, contact_id: int, agent: Sender) -> Response:
        return panel(request, agent, contact_id)

    @router.post("/contacts/{contact_id}/compose/phone")
    def log(request: Request, contact_id: int, agent: Sender,
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
            errors["duration_seconds"] = FIELDS["duration_seconds"]
        try:
            due = _due(follow_up_due, agent)
        except ValueError:
            errors["follow_up.due_at"] = FIELDS["follow_up.due_at"]
        if follow_up_due and not follow_up.strip():
            errors["follow_up.title"] = FIELDS["follow_up.title"]
        if errors:
            return panel(request, agent, contact_id, values=values, errors=errors, status=422)
        with get_hub(request).session() as db:
            try:
                contact_or_404(db, contact_id)
                call = ManualCall(contact_id=contact_id, direction=direction, outcome=CallOutcome(outcome),  # type: ignore[arg-type]
                                  duration_seconds=seconds, number=number or None, notes=notes.strip() or None,
                                  follow_up=FollowUp(title=follow_up.strip(), due_at=due) if follow_up.strip() else None,
                                  client_id=client_id or None)
                log_call(db, call=call, actor=agent.principal)
            except ValidationError as exc:
                db.rollback()
                return panel(request, agent, contact_id, values=values, status=422,
                             errors=pydantic_errors(exc, FIELDS, N_("Check the call's details and try again.")))
            except CallRefused as exc:
                db.rollback()
                key = exc.field if exc.field in FIELDS else GENERAL
                return panel(request, agent, contact_id, values=values, status=exc.status,
                             errors={key: FIELDS.get(exc.field or "", str(exc))})
            db.commit()
        return panel(request, agent, contact_id, sent=N_("Call logged on the timeline."))

    return router
