"""A local Twilio-compatible server for tests and the demo (`python -m standins.twilio_local`)."""

from standins.twilio_local.server import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    LocalNumber,
    LocalTwilio,
)

__all__ = ["DEMO_ACCOUNT_SID", "DEMO_AUTH_TOKEN", "LocalNumber", "LocalTwilio"]
