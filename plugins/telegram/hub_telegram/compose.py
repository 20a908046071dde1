"""An agent's Telegram message from the contact page or the API: checked, then queued in the outbox."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.deps import SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.ingest import get_contact
from hub.models import Delivery, Identity, IdentityKind, Purpose
from hub.outbox import enqueue
from hub_telegram.consent import is_blocked

MAX_TEXT = 4096


class TelegramDraft(BaseModel):
    """The body of POST /channels/telegram/messages."""

    model_config = ConfigDict(extra="forbid")

    contact_id: int
    text: str = Field(min_length=1, max_length=20_000)
    client_id: str | None = Field(default=None, max_length=100, description="Your id for this message; a retry sends it once")


class TelegramRefused(ValueError):
    """Why a message cannot be queued; `status` and `slug` become the problem answer."""

    def __init__(self, message: str, *, status: int = 422, slug: str = "telegram-refused") -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug


def telegram_ids(session: Session, *, contact_id: int) -> list[str]:
    """The contact's Telegram user ids, the primary one first."""
    return list(session.scalars(select(Identity.value).where(
        Identity.contact_id == contact_id, Identity.kind == IdentityKind.TELEGRAM.value)
        .order_by(Identity.is_primary.desc(), Identity.id)))


def compose_telegram(session: Session, *, draft: TelegramDraft, actor: Principal) -> Delivery:
    """Queue an agent's reply (transactional) to the contact's Telegram; TelegramRefused says why not."""
    hub = session.info["hub"]
    channel = hub.channels.get("telegram")
    if channel is None or not channel.configured:
        raise TelegramRefused("Telegram is not configured: set bot_token under [channels.telegram]", status=409,
                              slug="channel-not-configured")
    contact = get_contact(session, draft.contact_id)
    ids = telegram_ids(session, contact_id=contact.id)  # type: ignore[arg-type]
    if not ids:
        raise TelegramRefused("this contact has not written to the bot, so the bot cannot write to them",
                              slug="telegram-no-chat")
    if is_blocked(session, contact_id=contact.id):  # type: ignore[arg-type]
        raise TelegramRefused("this contact blocked the bot; they must send /start to receive messages again",
                              status=409, slug="telegram-blocked")
    if len(draft.text) > MAX_TEXT:
        raise TelegramRefused(f"a Telegram message is at most {MAX_TEXT} characters; this one has {len(draft.text)}",
                              slug="telegram-too-long")
    key = f"telegram:agent:{actor.actor}:{draft.client_id}" if draft.client_id else f"telegram:agent:{uuid.uuid4().hex}"
    try:
        return enqueue(session, channel="telegram", address=ids[0],
                       content={"text": draft.text, "thread_key": f"telegram:{ids[0]}"}, idempotency_key=key,
                       contact_id=contact.id, purpose=Purpose.TRANSACTIONAL, actor_user_id=actor.user_id)
    except ValueError as exc:
        raise TelegramRefused(str(exc)) from None


def api_routes(router: APIRouter) -> None:
    """POST /channels/telegram/messages: what the compose panel does, for API clients."""

    @router.post("/messages", status_code=202, summary="Queue a Telegram message from an agent to a contact")
    def send_message(draft: TelegramDraft, session: SessionDep,
                     principal: Annotated[Principal, Depends(require("timeline:write"))]) -> dict[str, Any]:
        try:
            delivery = compose_telegram(session, draft=draft, actor=principal)
        except TelegramRefused as exc:
            raise Problem(exc.status, str(exc), slug=exc.slug) from None
        session.commit()
        return {"delivery_id": delivery.id, "event_id": delivery.event_id, "status": delivery.status,
                "to": delivery.address}
