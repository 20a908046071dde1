"""Bot API updates as timeline events: pure functions over the payload, read through the library's types.

Every update is read with python-telegram-bot's `Update.de_json`, so a payload that is not an Update
(a missing update_id, a message without a chat) is refused before anything is written. Only private
chats become events: the reply address of a contact is their user id, which is their private chat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from telegram import Update

from hub.identities import InvalidIdentity, normalize_phone
from hub.inbound import Unprocessable
from hub.ingest import IdentityRef, InboundEvent
from hub.models import Direction, IdentityKind

CHANNEL = "telegram"
# The commands the bot understands; anything else is a message for the agents.
STOP, START = "stop", "start"
COMMANDS = {"/stop": STOP, "/start": START, "/unsubscribe": STOP}
# The callback data of the "stop" button under every marketing message.
STOP_BUTTON = "hub:stop"


def read_update(payload: Any) -> Update:
    """The payload as the library's Update; Unprocessable (422) when it is not one."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"a Telegram update is a JSON object, not {type(payload).__name__}")
    try:
        update = Update.de_json(dict(payload), None)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise Unprocessable(f"not a Telegram Update ({type(exc).__name__}: {exc})") from None
    if update is None:
        raise Unprocessable("not a Telegram Update")
    return update


def command_of(text: str | None) -> str | None:
    """STOP or START for the bot's commands (`/stop`, `/stop@MyBot`), else None."""
    word = (text or "").strip().split(maxsplit=1)[0].split("@", 1)[0].lower() if (text or "").strip() else ""
    return COMMANDS.get(word)


def parse_update(payload: Any) -> Sequence[InboundEvent]:
    """One update's events: a private message, a shared phone number, a press of the stop button."""
    update = read_update(payload)
    if update.callback_query is not None:
        return _button(update)
    message = update.message
    if message is None or message.from_user is None or message.chat.type != "private" or message.from_user.is_bot:
        return []  # edits, channel posts, group chats: acknowledged, not recorded
    user = message.from_user
    identities = [IdentityRef(kind=IdentityKind.TELEGRAM, value=str(user.id))]
    data: dict[str, Any] = {"chat_id": message.chat.id, "update_id": update.update_id,
                            "username": user.username, "language_code": user.language_code}
    text = message.text or message.caption
    shared = message.contact
    if shared is not None and shared.user_id == user.id and shared.phone_number:
        # Their own number (Telegram's "share my phone" button sets user_id): it may name a known contact.
        phone = shared.phone_number if shared.phone_number.startswith("+") else "+" + shared.phone_number
        data["shared_phone"] = phone
        try:  # Telegram sends the number with its country code, so no region is needed to read it
            identities.append(IdentityRef(kind=IdentityKind.PHONE, value=normalize_phone(phone, "ZZ")))
        except InvalidIdentity:
            pass  # kept in data: a number no one can dial links nothing
    elif (command := command_of(message.text)) is not None:
        data["command"] = command
    return [InboundEvent(
        channel=CHANNEL, kind="message", direction=Direction.IN,
        external_id=f"{message.chat.id}:{message.message_id}",  # stable when Telegram redelivers
        occurred_at=message.date, identities=identities, display_name=user.full_name or None,
        text=text, thread_key=f"telegram:{message.chat.id}", data=data,
    )]


def _button(update: Update) -> Sequence[InboundEvent]:
    query = update.callback_query
    assert query is not None
    if query.data != STOP_BUTTON or query.from_user.is_bot:
        return []
    user = query.from_user
    # A button press has no date of its own: the message it is under gives the time it was sent,
    # so the event has none (the hub's clock stamps it) and parse stays pure.
    return [InboundEvent(
        channel=CHANNEL, kind="command", direction=Direction.IN, external_id=f"callback:{query.id}",
        identities=[IdentityRef(kind=IdentityKind.TELEGRAM, value=str(user.id))],
        display_name=user.full_name or None, text="/stop",
        data={"command": STOP, "via": "button", "update_id": update.update_id, "chat_id": user.id},
    )]
