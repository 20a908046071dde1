"""What the SMS and phone adapters share: Twilio settings, the SDK client, signed webhooks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from hub.channel import Channel, SignatureError
from channels.twilio_common.api import TwilioApi
from channels.twilio_common.settings import TwilioSettings
from channels.twilio_common.signature import (
    SIGNATURE_HEADER,
    FormParams,
    check_signature,
    header,
    parse_form,
    request_url,
)
from hub.api.problems import Problem

log = logging.getLogger("channels.twilio")

TWIML_MEDIA_TYPE = "application/xml"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class TwilioChannel(Channel):
    """Base of the Twilio adapters: credentials, the API client and webhook verification."""

    settings: TwilioSettings

    def __init__(self, settings: TwilioSettings, hub: Any) -> None:  # type: ignore[override]
        super().__init__(settings, hub)
        self.api = TwilioApi(settings)

    @property
    def configured(self) -> bool:
        return bool(self.settings.enabled and self.settings.has_credentials)

    def missing_settings(self) -> list[str]:
        missing = super().missing_settings()
        if not self.settings.account_sid:
            missing.append("account_sid")
        if not self.settings.token():
            missing.append("auth_token")
        return missing

    def public_url(self, path: str) -> str:
        """The address Twilio calls for one of this adapter's routes (`path` starts with /)."""
        return f"{self.hub.settings.public_base_url}/channels/{self.name}{path}"

    def verify(self, *, url: str, headers: Mapping[str, str], body: bytes,
               form: Mapping[str, Any] | None = None) -> None:
        params = form if form is not None else parse_form(body)
        check_signature(token=self.settings.token(), url=url, params=params,
                        signature=header(headers, SIGNATURE_HEADER))

    def verified_form(self, request: Request, body: bytes) -> FormParams:
        """The webhook's form parameters; SignatureError when Twilio did not sign them for this URL
        (a body that is not a form cannot have been signed either). The `verify` of hub.inbound."""
        url = request_url(request, public_base_url=self.hub.settings.public_base_url,
                          trusted_proxies=self.settings.trusted_proxies)
        try:
            params = parse_form(body)
            self.verify(url=url, headers=request.headers, body=body, form=params)
        except (SignatureError, ValueError) as exc:
            raise SignatureError(f"Twilio signature check failed: {exc}") from None
        return params

    async def signed_params(self, request: Request) -> FormParams:
        """The webhook's form parameters, or 403 (nothing read further, nothing written) if unsigned."""
        try:
            return self.verified_form(request, await request.body())
        except SignatureError as exc:
            log.warning("refused a %s webhook to %s: %s", self.name, request.url.path, exc)
            raise Problem(403, str(exc), slug="bad-signature") from None

    @staticmethod
    def twiml(xml: str = EMPTY_TWIML) -> Response:
        return Response(content=str(xml), media_type=TWIML_MEDIA_TYPE)

    @staticmethod
    async def in_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
        """Database work off the event loop, so one slow commit never stalls other webhooks."""
        return await run_in_threadpool(func, *args, **kwargs)


__all__ = ["EMPTY_TWIML", "FormParams", "TwilioApi", "TwilioChannel", "TwilioSettings"]
