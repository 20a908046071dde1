"""Standard Webhooks signatures (https://www.standardwebhooks.com): `webhook-id`,
`webhook-timestamp`, `webhook-signature` = space-separated `v1,<base64 HMAC-SHA256>`, one per
secret in force, so during a rotation's overlap a receiver holding either secret verifies."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timezone

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, base64, with the standard's prefix."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secrets_in_force: list[str], *, message_id: str, body: bytes,
                   at: datetime | None = None) -> dict[str, str]:
    """The three headers for `body`. The timestamp is the wall clock's, not the hub's business
    clock: receivers compare it with their own clock to refuse replays."""
    moment = at or datetime.now(timezone.utc)
    signature = " ".join(Webhook(secret).sign(message_id, moment, body) for secret in secrets_in_force)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature}


def mask(secret: str | None) -> str:
    """A secret as it may appear on a page or in a log: its prefix and last four characters."""
    if not secret:
        return ""
    return f"{SECRET_PREFIX}…{secret[-4:]}"
