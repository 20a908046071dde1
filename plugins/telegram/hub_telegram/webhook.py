"""The Telegram webhook as a hub.inbound route: the secret-token header, the update read through the
library's types, and in the same transaction what the bot's commands and a shared number change."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from hub.channel import SignatureError
from hub.inbound import Received, Webhook
from hub_telegram import consent
from hub_telegram.updates import START, STOP, parse_update

if TYPE_CHECKING:
    from hub_telegram.channel import TelegramChannel

SECRET_HEADER = "x-telegram-bot-api-secret-token"


def check_secret(expected: str | None, given: str | None) -> None:
    """SignatureError unless `given` is the configured secret (compared in constant time)."""
    if not expected:
        raise SignatureError("no webhook_secret is configured, so no webhook call can be trusted")
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignatureError("missing or wrong X-Telegram-Bot-Api-Secret-Token")


def after_update(session: Session, received: Received) -> None:
    """Commands change consent, a shared number links contacts; only for new events (a replay changes nothing)."""
    hub = session.info["hub"]
    for result in received.events:
        if not result.created:
            continue
        data: dict[str, Any] = result.event.data or {}
        source = f"telegram {data.get('via', 'command')} ({result.event.external_id})"
        command = data.get("command")
        if command == STOP:
            consent.stopped(session, contact_id=result.contact.id, source=source,  # type: ignore[arg-type]
                            wording=result.event.text or "/stop")
        elif command == START:
            consent.started(session, contact_id=result.contact.id, source=source,  # type: ignore[arg-type]
                            wording=result.event.text or "/start")
        if phone := data.get("shared_phone"):
            consent.link_phone(session, contact=result.contact, phone=phone, region=hub.settings.default_region)


def answer(received: Received) -> Response:
    """Telegram only needs a 2xx; anything else makes it redeliver the update."""
    return JSONResponse({"ok": True, "events": [r.event.id for r in received.events]})


def webhook(channel: TelegramChannel) -> Webhook:
    """The route /channels/telegram/webhook that setWebhook points Telegram at."""

    def verify(request: Request, body: bytes) -> Any:
        channel.verify(url=str(request.url), headers=request.headers, body=body)
        return body

    return Webhook(path="/webhook", summary="Telegram Bot API: an update (X-Telegram-Bot-Api-Secret-Token checked)",
                   verify=verify, parse=read, after=after_update, answer=answer,
                   expects="Not a Telegram update")


def read(payload: bytes | dict[str, Any]) -> Any:
    """The update's events, from the webhook's body or from a getUpdates result (already a dict)."""
    return parse_update(_json(payload) if isinstance(payload, bytes) else payload)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the body is not JSON ({exc})") from None
