"""The [channels.sms] section: the Twilio account and who messages are sent from."""

from __future__ import annotations

from pydantic import Field, model_validator

from channels.twilio_common.settings import TwilioSettings


class SmsSettings(TwilioSettings):
    """Send from a number (E.164) or through a Messaging Service (MG…); the service wins if both are set."""

    from_number: str | None = Field(None, pattern=r"^\+[1-9]\d{6,14}$", description="Your Twilio number, E.164")
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")

    @model_validator(mode="after")
    def _a_sender(self) -> SmsSettings:
        if self.has_credentials and not (self.from_number or self.messaging_service_sid):
            raise ValueError("set from_number (E.164) or messaging_service_sid (MG…) to send SMS")
        return self

    @property
    def sender(self) -> str:
        """Our side of a conversation: the Messaging Service when there is one, else the number."""
        return self.messaging_service_sid or self.from_number or ""
