"""The local Bot API as a stand-in of `hub serve --demo`: the bot's messages go to it, not Telegram."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from hub_telegram.local_api import DEMO_TOKEN, LocalBotApi

if TYPE_CHECKING:
    from hub.demo_standins import StandIn
    from hub.settings import Settings


def stand_in(settings: Settings, *, hub_url: str) -> StandIn:
    """The `hub.stand_ins` entry point: a local Bot API on a free port, its webhook set to the hub's."""
    from hub.demo_standins import StandIn

    server = LocalBotApi(token=DEMO_TOKEN).start("127.0.0.1", 0)
    secret = secrets.token_urlsafe(24)
    # The webhook is set here rather than by the telegram.set_webhook job, so the first update a
    # demo user sends is delivered even before the scheduler's first tick.
    server.webhook_url, server.webhook_secret = f"{hub_url.rstrip('/')}/channels/telegram/webhook", secret
    prefix = "HUB_CHANNELS__TELEGRAM__"
    env = {prefix + "BOT_TOKEN": DEMO_TOKEN, prefix + "WEBHOOK_SECRET": secret, prefix + "API_BASE": server.api_base}
    return StandIn(name="telegram", label="Local Telegram Bot API", url=server.url + "/", env=env, stop=server.stop,
                   note="the bot's messages stop at this local Bot API instead of Telegram")
