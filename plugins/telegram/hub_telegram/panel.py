"""The Telegram compose panel on the contact page: an agent replies in the contact's chat with the bot."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from hub.web.i18n import N_
from hub.web.pages import Agent, get_hub
from hub.web.panels import GENERAL, NOT_CONFIGURED, Sender, contact_or_404, render_panel
from hub_telegram.compose import MAX_TEXT, TelegramDraft, TelegramRefused, compose_telegram, telegram_ids
from hub_telegram.consent import is_blocked

ERRORS = {"telegram-blocked": (GENERAL, N_("This contact blocked the bot; they must send /start to receive "
                                           "Telegram messages again.")),
          "telegram-no-chat": (GENERAL, N_("This contact has not written to the bot yet, so the bot cannot "
                                           "write to them.")),
          "telegram-too-long": ("text", N_("The message is too long for Telegram (4,096 characters at most).")),
          "telegram-refused": ("text", N_("Telegram cannot carry this message."))}


def build_router() -> APIRouter:
    router = APIRouter()

    def panel(request: Request, agent: Agent, contact_id: int, *, values: dict[str, Any] | None = None,
              sent: str | None = None, **kwargs: Any) -> Response:
        with get_hub(request).session(read_only=True) as db:
            contact = contact_or_404(db, contact_id)
            options = {"chats": telegram_ids(db, contact_id=contact.id),  # type: ignore[arg-type]
                       "blocked": is_blocked(db, contact_id=contact.id),  # type: ignore[arg-type]
                       "max_chars": MAX_TEXT}
        return render_panel(request, agent, "telegram", contact_id, options=options, values=values, sent=sent, **kwargs)

    @router.get("/contacts/{contact_id}/compose/telegram")
    def form(request: Request, contact_id: int, agent: Sender) -> Response:
        return panel(request, agent, contact_id)

    @router.post("/contacts/{contact_id}/compose/telegram")
    def send(request: Request, contact_id: int, agent: Sender, text: Annotated[str, Form(max_length=20_000)] = "",
             client_id: Annotated[str, Form(max_length=100)] = "") -> Response:
        values = {"text": text, "client_id": client_id}
        if not text.strip():
            return panel(request, agent, contact_id, values=values, status=422,
                         errors={"text": N_("Write the message first.")})
        with get_hub(request).session() as db:
            try:
                contact_or_404(db, contact_id)
                compose_telegram(db, draft=TelegramDraft(contact_id=contact_id, text=text, client_id=client_id or None),
                                 actor=agent.principal)
            except TelegramRefused as exc:
                db.rollback()
                field, message = ERRORS.get(exc.slug, (GENERAL, NOT_CONFIGURED if exc.slug == "channel-not-configured"
                                                       else str(exc)))
                return panel(request, agent, contact_id, values=values, errors={field: message}, status=exc.status)
            db.commit()
        return panel(request, agent, contact_id, sent=N_("Telegram message queued; it shows on the timeline."))

    return router
