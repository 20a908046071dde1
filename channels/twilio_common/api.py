"""The Twilio REST client (the real `twilio` SDK) and what its errors mean to the outbox."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from requests import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from hub.channel import PermanentSendError, SendError, TransientSendError
from channels.twilio_common.settings import TwilioSettings

# Twilio error codes (https://www.twilio.com/docs/api/errors) the hub acts on.
OPTED_OUT = 21610  # "Attempt to send to unsubscribed recipient": the number replied STOP
TOO_MANY_REQUESTS = 20429


class _RecordingHttpClient(TwilioHttpClient):
    """Keeps the last response's headers: the SDK's exception drops Retry-After."""

    last_headers: Mapping[str, str] = {}

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.last_headers = {}
        response = super().request(*args, **kwargs)
        self.last_headers = dict(response.headers or {})
        return response


class TwilioApi:
    """One SDK client per thread (the SDK is synchronous; sends run in worker threads)."""

    def __init__(self, settings: TwilioSettings) -> None:
        self.settings = settings
        self._local = threading.local()

    def client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            http = _RecordingHttpClient(timeout=self.settings.timeout_seconds)
            client = Client(self.settings.account_sid, self.settings.token(), http_client=http)
            # The local Twilio-compatible server (tests, demo) stands in for api.twilio.com here.
            client.api.base_url = self.settings.api_base_url
            self._local.client = client
        return client

    def last_headers(self) -> Mapping[str, str]:
        client = getattr(self._local, "client", None)
        return getattr(getattr(client, "http_client", None), "last_headers", {}) or {}


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def send_error(exc: BaseException, headers: Mapping[str, str] | None = None) -> SendError:
    """Classify an SDK or network error: 429 and 5xx are retried (honouring Retry-After), other 4xx are not."""
    if isinstance(exc, TwilioRestException):
        status = int(exc.status or 0)
        reason = f"Twilio {status} error {exc.code}: {exc.msg}" if exc.code else f"Twilio {status}: {exc.msg}"
        retry_after = retry_after_seconds((headers or {}).get("Retry-After") or (headers or {}).get("retry-after"))
        if status == 429 or status >= 500 or exc.code == TOO_MANY_REQUESTS:
            return TransientSendError(reason, retry_after=retry_after)
        return PermanentSendError(reason)
    if isinstance(exc, (RequestException, OSError)):
        return TransientSendError(f"Twilio could not be reached: {type(exc).__name__}: {exc}")
    if isinstance(exc, TwilioException):
        return TransientSendError(f"Twilio client error: {exc}")
    return TransientSendError(f"{type(exc).__name__}: {exc}")
