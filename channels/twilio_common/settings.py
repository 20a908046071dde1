"""Settings shared by the Twilio adapters (SMS and phone): the account, the API address, the proxies."""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator

from hub.channel import ChannelSettings

TWILIO_API = "https://api.twilio.com"


class TwilioSettings(ChannelSettings):
    """The account and where its API lives; webhook URLs come from the hub's public_base_url."""

    account_sid: str = Field("", pattern=r"^(AC[0-9a-fA-F]{32})?$", description="AC… from the Twilio console")
    auth_token: SecretStr | None = Field(None, description="Signs the API calls and every webhook")
    # Tests and the demo point this at the local Twilio-compatible server (standins.twilio_local).
    api_base_url: str = TWILIO_API
    # Reverse proxies whose X-Forwarded-Proto/Host are believed when rebuilding the signed URL.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    timeout_seconds: float = Field(15.0, gt=0, le=120)

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def has_credentials(self) -> bool:
        return bool(self.account_sid and self.auth_token and self.auth_token.get_secret_value())

    def token(self) -> str:
        return self.auth_token.get_secret_value() if self.auth_token is not None else ""
