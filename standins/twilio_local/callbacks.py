"""Requests the local server makes the way Twilio does: form posts signed with X-Twilio-Signature."""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from channels.twilio_common.signature import sign

log = logging.getLogger("standins.twilio_local")

# Twilio gives up on a webhook after 15 seconds (error 11205); the hub must answer sooner.
WEBHOOK_TIMEOUT = 15.0


@dataclass
class Delivered:
    """One request the server made, and what the hub answered."""

    url: str
    params: dict[str, Any]
    status_code: int | None
    body: str = ""
    error: str | None = None


@dataclass
class Callback:
    """A status callback waiting to be sent (in manual mode, until flushed)."""

    url: str
    params: dict[str, Any]
    sid: str = ""
    order: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Signer:
    """Posts signed form requests and keeps a log of them."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.log: list[Delivered] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=WEBHOOK_TIMEOUT, headers={"User-Agent": "TwilioProxy/1.1"})

    def post(self, url: str, params: dict[str, Any]) -> Delivered:
        """POST `params` to `url` signed with the account's auth token; never raises for HTTP trouble."""
        headers = {
            "X-Twilio-Signature": sign(token=self.token, url=url, params=params),
            "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
        }
        try:
            response = self._client.post(url, data=params, headers=headers)
            result = Delivered(url, dict(params), response.status_code, response.text)
        except httpx.HTTPError as exc:
            log.warning("request to %s failed: %s", url, exc)
            result = Delivered(url, dict(params), None, error=f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.log.append(result)
        return result

    def close(self) -> None:
        self._client.close()
