"""Jobs: long polling for installations without a public address, and keeping the webhook set.

`telegram.poll` asks getUpdates for what came since the stored offset and runs each update through
the same hub.inbound pipeline as the webhook (parse, one transaction, the after-hook), then stores
the next offset; a replayed update is recorded once, so a crash between the two loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from telegram.error import TelegramError

from hub import clock
from hub.inbound import receive
from hub_telegram.models import TelegramPollState
from hub_telegram.webhook import webhook

if TYPE_CHECKING:
    from hub.runtime import Hub
    from hub_telegram.channel import TelegramChannel

log = logging.getLogger("hub_telegram")
BATCH = 100


def _channel(hub: Hub) -> TelegramChannel:
    return hub.channels["telegram"]  # type: ignore[return-value]


def bot_id(channel: TelegramChannel) -> int:
    assert channel.settings.bot_token is not None
    return int(channel.settings.bot_token.get_secret_value().split(":", 1)[0])


def poll(hub: Hub) -> int:
    """One round of getUpdates (no waiting: the scheduler calls again); how many updates it took."""
    channel = _channel(hub)
    with hub.session(read_only=True) as session:
        state = session.get(TelegramPollState, bot_id(channel))
        offset = state.next_offset if state is not None else 0
    try:
        updates = asyncio.run(_get_updates(channel, offset))
    except TelegramError as exc:
        log.warning("telegram getUpdates failed: %s", type(exc).__name__)
        return 0
    route = webhook(channel)
    for update in updates:
        try:
            receive(channel, route, update)
        except ValueError as exc:  # confirmed all the same: Telegram would hand it back for ever
            log.warning("telegram update %s refused: %s", update.get("update_id"), exc)
        _store(hub, channel, update["update_id"] + 1)
    return len(updates)


async def _get_updates(channel: TelegramChannel, offset: int) -> list[dict[str, Any]]:
    async with channel.bot() as bot:
        found = await bot.get_updates(offset=offset or None, limit=BATCH, timeout=0,
                                      allowed_updates=["message", "callback_query"])
    return [u.to_dict() for u in found]


def _store(hub: Hub, channel: TelegramChannel, next_offset: int) -> None:
    with hub.session() as session, session.begin():
        # One poller at a time: the job is `once`, so the scheduler's cluster lock serialises rounds.
        key = bot_id(channel)
        state = session.get(TelegramPollState, key, with_for_update=True)
        if state is None:
            session.add(TelegramPollState(bot_id=key, next_offset=next_offset, updated_at=clock.now()))
        else:
            state.next_offset = max(state.next_offset, next_offset)
            state.updated_at = clock.now()


def set_webhook(hub: Hub) -> None:
    """Point Telegram at this hub's webhook, with the secret (idempotent: an hourly tick repairs a change)."""
    channel = _channel(hub)
    secret = channel.settings.webhook_secret
    assert secret is not None

    async def call() -> None:
        async with channel.bot() as bot:
            await bot.set_webhook(url=f"{hub.settings.public_base_url}/channels/telegram/webhook",
                                  secret_token=secret.get_secret_value(),
                                  allowed_updates=["message", "callback_query"])

    asyncio.run(call())
