"""The hub served on a real port with the Telegram channel pointed at the package's local Bot API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from standins.twilio_local.runner import ServerThread, bound_socket
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from hub_telegram.local_api import LocalBotApi
from tests.conftest import test_registry

TOKEN = "7000001:" + "TESTtokenOFtheLOCALbot_" + "y" * 12
SECRET = "test-webhook-secret-0123456789"


@dataclass
class World:
    hub: Hub
    api: LocalBotApi
    url: str
    http: httpx.Client

    @property
    def webhook(self) -> str:
        return f"{self.url}/channels/telegram/webhook"

    def post(self, body: bytes | dict[str, Any], *, secret: str | None = SECRET) -> httpx.Response:
        """POST an update to the webhook as Telegram would (`secret` None sends no header)."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        if isinstance(body, dict):
            return self.http.post(self.webhook, json=body, headers=headers)
        return self.http.post(self.webhook, content=body, headers={**headers, "Content-Type": "application/json"})


@contextmanager
def make_world(base: Hub, **section: Any) -> Iterator[World]:
    """The local Bot API and a hub app on real ports; the webhook set unless mode is polling."""
    from hub.app import create_app

    api = LocalBotApi(token=TOKEN).start()
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    telegram = {"bot_token": TOKEN, "webhook_secret": SECRET, "api_base": api.api_base, **section}
    settings = base.settings.model_copy(update={"public_base_url": url, "channels": {"telegram": telegram}})
    hub = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=base.db)
    served = ServerThread(create_app(hub, check_schema=False, start_worker=False), sock).start()
    if telegram.get("mode", "webhook") == "webhook":
        api.webhook_url, api.webhook_secret = f"{url}/channels/telegram/webhook", SECRET
    http = httpx.Client(timeout=30)
    try:
        yield World(hub=hub, api=api, url=url, http=http)
    finally:
        http.close()
        api.stop()
        served.stop()
