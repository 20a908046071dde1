"""The local Twilio server as a stand-in of `hub serve --demo`: SMS and calls go to it, not Twilio."""

from __future__ import annotations

from typing import TYPE_CHECKING

from standins.twilio_local.server import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, LocalTwilio

if TYPE_CHECKING:
    from hub.demo_standins import StandIn
    from hub.settings import Settings

DEMO_NUMBER = "+15005550006"
DEFAULT_PORT = 8099


def twilio_environment(server_url: str, *, number: str = DEMO_NUMBER) -> dict[str, str]:
    """The HUB_* settings that point the SMS and phone channels at a local server."""
    env = {}
    for channel in ("SMS", "PHONE"):
        prefix = f"HUB_CHANNELS__{channel}__"
        env.update({prefix + "ACCOUNT_SID": DEMO_ACCOUNT_SID, prefix + "AUTH_TOKEN": DEMO_AUTH_TOKEN,
                    prefix + "API_BASE_URL": server_url})
    env["HUB_CHANNELS__SMS__FROM_NUMBER"] = number
    env["HUB_CHANNELS__PHONE__CALLER_ID"] = number
    return env


def stand_in(settings: Settings, *, hub_url: str) -> StandIn:
    """The `hub.stand_ins` entry point: a local Twilio on a free port, its number wired to the hub."""
    from hub.demo_standins import StandIn

    # No contract checks in the demo: openapi-core is a test dependency.
    server = LocalTwilio(account_sid=DEMO_ACCOUNT_SID, auth_token=DEMO_AUTH_TOKEN, contract_path=None)
    hub_url = hub_url.rstrip("/")
    server.add_number(DEMO_NUMBER, sms_url=f"{hub_url}/channels/sms/inbound", voice_url=f"{hub_url}/channels/phone/voice",
                      voice_status_callback=f"{hub_url}/channels/phone/status")
    try:
        # The port `python -m standins.twilio_local sms|call` talk to by default, when it is free.
        server.start("127.0.0.1", DEFAULT_PORT)
    except OSError:
        server.start("127.0.0.1", 0)
    env = {**twilio_environment(server.url), "HUB_DEMO__TWILIO_URL": server.url}
    return StandIn(name="twilio", label="Local Twilio", url=server.url + "/", env=env, stop=server.stop,
                   note=f"text or call the hub as a customer at {server.url}/; SMS the hub sends are listed there "
                        "and under Admin → Test mailbox")
