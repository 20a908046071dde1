"""What channels use to serve their compose panel on the contact page (email, SMS, log call, …).

A channel's `web_router()` holds its panel's routes (`/contacts/{id}/compose/<channel>`); they take
the panel's form, call the channel's own service, and answer with the panel re-rendered through
`render_panel`: fresh and confirmed after a success (which also refreshes the timeline), or with
each error beside its field. The form itself is the template ui/compose/<channel>.html."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from hub.ingest import ContactNotFound, get_contact
from hub.models import Contact
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, render, require

Sender = Annotated[Agent, Depends(require("timeline:write"))]
GENERAL = "_form"  # the key of an error that belongs to no single field
NOT_CONFIGURED = N_("This channel is not configured yet; an admin can set it up.")
NO_CONTACT = N_("There is no such contact.")


def contact_or_404(db: Session, contact_id: int) -> Contact:
    try:
        return get_contact(db, contact_id)
    except ContactNotFound:
        raise PageError(404, NO_CONTACT) from None


def new_form() -> dict[str, Any]:
    """A blank form with a fresh client id (a retried submit of it is sent once)."""
    return {"client_id": uuid.uuid4().hex}


def render_panel(request: Request, agent: Agent, channel: str, contact_id: int, *, options: dict[str, Any],
                 values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                 sent: str | None = None, status: int = 200) -> Response:
    """The panel's form: blank after `sent`, else the agent's values and the errors beside their fields."""
    hub = get_hub(request)
    configured = bool(hub.channels.get(channel) and hub.channels[channel].configured)
    panel = {"contact_id": contact_id, "form": new_form() if sent or values is None else values,
             "errors": errors or {}, "sent": sent, "configured": configured, **options}
    response = render(request, agent, f"compose/{channel}.html", status=status, panel=panel,
                      card={"id": contact_id}, **{k: v for k, v in options.items() if k == "max_chars"})
    if sent:
        response.headers["HX-Trigger"] = f"{channel}-sent, timeline-refresh"
    return response


def pydantic_errors(exc: ValidationError, messages: dict[str, str], fallback: str) -> dict[str, str]:
    """Each validation error under its field's message, or under GENERAL with the fallback."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        key = where if where in messages else GENERAL
        errors.setdefault(key, messages.get(where, fallback))
    return errors
