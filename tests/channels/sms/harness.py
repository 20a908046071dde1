"""A hub served by uvicorn on a real port, configured for SMS and phone against the local Twilio server.

Shared by the SMS and phone tests: Twilio's callbacks are real HTTP requests, signed over the
exact URLs the hub is reachable at (its public_base_url)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from channels.twilio_common.signature import sign
from standins.twilio_local import LocalTwilio
from standins.twilio_local.runner import ServerThread, bound_socket
from hub.live import MemoryBroker
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.conftest import test_registry

ACCOUNT_SID = "AC" + "1234567890abcdef" * 2
AUTH_TOKEN = "test-auth-token-5f1d0c"
HUB_NUMBER = "+15005550006"


class RecordingBroker(MemoryBroker):
    """Delivers like the memory broker and remembers every message, for assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        self.published.append((topic, dict(message)))
        super().publish(topic, message)

    def of_type(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(t, m) for t, m in self.published if m.get("type") == kind]


@dataclass
class World:
    hub: Hub
    server: LocalTwilio
    url: str
    broker: RecordingBroker
    http: httpx.Client

    def post(self, path: str, params: dict[str, Any], *, signature: str | None = "auto",
             signed_url: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """POST a form to the hub as Twilio would; `signature` None sends none, a string sends that one."""
        url = self.url + path
        sent = dict(headers or {})
        if signature == "auto":
            sent["X-Twilio-Signature"] = sign(token=AUTH_TOKEN, url=signed_url or url, params=params)
        elif signature is not None:
            sent["X-Twilio-Signature"] = signature
        return self.http.post(url, data=params, headers=sent)


def channel_settings(server_url: str, **overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    common = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": server_url}
    return {
        "sms": {**common, "from_number": HUB_NUMBER, **overrides.get("sms", {})},
        "phone": {**common, "caller_id": HUB_NUMBER, **overrides.get("phone", {})},
    }


@contextmanager
def make_world(base: Hub, *, callback_mode: str = "manual", sms: dict[str, Any] | None = None,
               phone: dict[str, Any] | None = None, **server_options: Any) -> Iterator[World]:
    """The local Twilio server and a hub app on real ports, wired to each other."""
    from hub.app import create_app

    server = LocalTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callback_mode=callback_mode,  # type: ignore[arg-type]
                         seed=7, **server_options).start()
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = base.settings.model_copy(update={
        "public_base_url": url,
        "channels": channel_settings(server.url, sms=sms or {}, phone=phone or {}),
    })
    broker = RecordingBroker()
    hub = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=base.db, broker=broker)
    served = ServerThread(create_app(hub, check_schema=False, start_worker=False), sock).start()
    server.add_number(HUB_NUMBER, sms_url=f"{url}/channels/sms/inbound", voice_url=f"{url}/channels/phone/voice",
                      voice_status_callback=f"{url}/channels/phone/status")
    http = httpx.Client(timeout=30)
    try:
        yield World(hub=hub, server=server, url=url, broker=broker, http=http)
    finally:
        http.close()
        server.stop()
        served.stop()
