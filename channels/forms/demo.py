"""Demo data: one example "Contact us" form (idempotent: a second run finds it and adds nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from hub.auth import SYSTEM

from channels.forms.definitions import FormDefinition
from channels.forms.models import Form
from channels.forms.public import form_url
from channels.forms.service import create_form

if TYPE_CHECKING:
    from hub.runtime import Hub

DEMO_NAME = "Contact us"


def demo(hub: Hub, *, seed: int) -> str:
    """Create the example form unless it exists; one line for the demo loader's summary."""
    with hub.session() as session, session.begin():
        found = session.scalars(select(Form).where(Form.name == DEMO_NAME)).first()
        if found is None:
            found = create_form(session, actor=SYSTEM, definition=FormDefinition.model_validate({
                "name": DEMO_NAME,
                "title": "Свяжитесь с нами",
                "locale": "ru",  # written in Russian: the page speaks Russian to every visitor
                "description": "Оставьте сообщение — мы ответим в течение рабочего дня.",
                "fields": [
                    {"name": "name", "type": "text", "label": "Имя", "required": True, "maps_to": "display_name"},
                    {"name": "email", "type": "email", "label": "Эл. почта", "required": True},
                    {"name": "phone", "type": "phone", "label": "Телефон"},
                    {"name": "topic", "type": "choice", "label": "Тема", "maps_to": "attribute:topic",
                     "options": [{"value": "order", "label": "Заказ"}, {"value": "delivery", "label": "Доставка"},
                                 {"value": "other", "label": "Другое"}]},
                    {"name": "message", "type": "text", "label": "Сообщение", "multiline": True, "max_length": 4000},
                    {"name": "newsletter", "type": "consent", "consent_channel": "email",
                     "label": "Рассылка",
                     "wording": "Я согласен(на) получать новости и предложения магазина по эл. почте. "
                                "Отписаться можно в любой момент."},
                ],
                "thank_you": "Спасибо! Мы получили ваше сообщение и скоро ответим.",
                "tags": ["website"],
            }))
            created = True
        else:
            created = False
        url = form_url(hub.settings.public_base_url, found.key)
    return f"{'created' if created else 'kept'} the “{DEMO_NAME}” form at {url}"
