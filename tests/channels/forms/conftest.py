"""Forms tests: a form factory, fresh render stamps, and counts of what a submission writes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hub.auth import SYSTEM
from hub.models import ConsentRecord, Contact, Identity, Task, TimelineEvent
from hub.runtime import Hub

from channels.forms import spam
from channels.forms.definitions import FormDefinition
from channels.forms.models import Form, FormSubmission
from channels.forms.service import create_form

WORDING = "I agree to receive news and offers by email. I can unsubscribe at any time."
SHOP = "https://shop.example"

FIELDS: list[dict[str, Any]] = [
    {"name": "name", "type": "text", "label": "Name", "required": True, "maps_to": "display_name"},
    {"name": "email", "type": "email", "label": "Email"},
    {"name": "phone", "type": "phone", "label": "Phone"},
    {"name": "topic", "type": "choice", "label": "Topic", "maps_to": "attribute:topic",
     "options": [{"value": "order", "label": "Order"}, {"value": "other", "label": "Other"}]},
    {"name": "vip", "type": "checkbox", "label": "I am a business customer", "maps_to": "tag:business"},
    {"name": "message", "type": "text", "label": "Message", "multiline": True, "max_length": 500},
    {"name": "news", "type": "consent", "label": "News", "wording": WORDING, "consent_channel": "email"},
]


def make_form(hub: Hub, **overrides: Any) -> Form:
    values: dict[str, Any] = {"name": "Contact us", "fields": FIELDS, "allowed_origins": [SHOP],
                              "tags": ["website"], "thank_you": "Thanks!"}
    values.update(overrides)
    with hub.session() as session, session.begin():
        form = create_form(session, actor=SYSTEM, definition=FormDefinition.model_validate(values))
        session.expunge(form)
    return form


def stamp(hub: Hub, form: Form, clock: Any, *, wait: float = 10) -> str:
    """A render stamp as the page would carry it, `wait` seconds old (a person filling the form)."""
    token = spam.render_token(hub.settings, form.key)
    clock.advance(seconds=wait)
    return token


def counts(hub: Hub) -> dict[str, int]:
    with hub.session(read_only=True) as session:
        return {model.__name__: session.scalar(select(func.count()).select_from(model))
                for model in (Contact, Identity, TimelineEvent, FormSubmission, ConsentRecord, Task)}


@pytest.fixture
def form(hub: Hub) -> Form:
    return make_form(hub)
