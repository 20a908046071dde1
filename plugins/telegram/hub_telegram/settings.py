"""[channels.telegram]: the bot's token, how updates arrive (webhook or long polling), the API's address."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from hub.channel import ChannelSettings


class TelegramSettings(ChannelSettings):
    """HUB_CHANNELS__TELEGRAM__BOT_TOKEN and friends, or the same keys in config/hub.toml."""

    # Unset is allowed: an installed but unconfigured adapter must not stop the hub (configured is False).
    bot_token: SecretStr | None = None
    # Telegram echoes it in X-Telegram-Bot-Api-Secret-Token on every webhook call.
    webhook_secret: SecretStr | None = None
    # "webhook" needs a public https address (public_base_url); "polling" asks Telegram for updates
    # every few seconds, for installations no one can reach from outside.
    mode: Literal["webhook", "polling"] = "webhook"
    poll_seconds: float = Field(default=3, ge=1, le=300)
    # The Bot API's address up to the token (the local stand-in's in the demo and the tests).
    api_base: str = Field(default="https://api.telegram.org/bot", pattern=r"^https?://")
    timeout: float = Field(default=10, gt=0, le=120)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", value.get_secret_value()):
            raise ValueError("expected a token like 123456:ABC-DEF1234ghIkl… as @BotFather gives it")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()):
            raise ValueError("use 16 to 256 letters, digits, _ or - (Telegram accepts no other characters)")
        return value

    @model_validator(mode="after")
    def _secret_for_webhooks(self) -> TelegramSettings:
        if self.bot_token is not None and self.mode == "webhook" and self.webhook_secret is None:
            raise ValueError("webhook_secret is required with mode = \"webhook\" (or use mode = \"polling\")")
        return self
