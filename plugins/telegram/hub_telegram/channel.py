"""The Telegram channel: the webhook (or long polling) in, the Bot API out through python-telegram-bot."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import telegram
from fastapi import APIRouter
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from hub.channel import (
    Capability,
    Channel,
    ChannelLimits,
    ContentPart,
    MarketingContext,
    OutboundMessage,
    PeriodicJob,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from hub.inbound import mount
from hub.ingest import InboundEvent
from hub.models import IdentityKind
from hub.translatable import N_
from hub_telegram.settings import TelegramSettings
from hub_telegram.updates import STOP_BUTTON, parse_update
from hub_telegram.webhook import SECRET_HEADER, check_secret, webhook

log = logging.getLogger("hub_telegram")
MAX_TEXT = 4096  # sendMessage refuses longer texts

# What every marketing message on Telegram carries, in the contact's language.
OPT_OUT_WORDING = {"en": "Send /stop to unsubscribe.", "ru": "Чтобы отписаться, отправьте /stop."}
STOP_LABEL = {"en": "Unsubscribe", "ru": "Отписаться"}


class TelegramChannel(Channel):
    name = "telegram"
    label = "Telegram"
    capabilities = frozenset({Capability.SEND, Capability.RECEIVE, Capability.POLL})
    limits = ChannelLimits(max_body_chars=MAX_TEXT)
    parts = (ContentPart("text", N_("Text"), max_chars=MAX_TEXT, missing=N_("a Telegram message needs its text")),)
    Settings = TelegramSettings
    concurrency = 8  # the Bot API allows ~30 messages a second per bot
    setup_example = {"bot_token": "123456789:AAE-your-token-from-BotFather", "webhook_secret": "a-long-random-secret-16+"}
    # hub.channel_hooks: a delivery's address is the contact's Telegram user id; a compose panel.
    identity_kind = IdentityKind.TELEGRAM.value
    compose_label = "Telegram"
    compose_icon = "chat"

    settings: TelegramSettings

    @property
    def configured(self) -> bool:
        return self.settings.enabled and self.settings.bot_token is not None

    def missing_settings(self) -> list[str]:
        missing = super().missing_settings()
        if self.settings.bot_token is None:
            missing.append("bot_token")
        if self.settings.mode == "webhook" and self.settings.webhook_secret is None:
            missing.append("webhook_secret")
        return missing

    def test_message(self, address: str) -> OutboundMessage:
        if not address.strip().isdigit():
            raise ValueError("a Telegram address is the user's numeric id (the contact's Telegram identity)")
        return self._test_message(address.strip(), {"text": "A test from the hub: Telegram works."})

    # --- inbound -------------------------------------------------------------------------------

    def verify(self, *, url: str, headers: Mapping[str, str], body: bytes, form: Mapping[str, Any] | None = None) -> None:
        secret = self.settings.webhook_secret
        check_secret(secret.get_secret_value() if secret else None, headers.get(SECRET_HEADER))

    @staticmethod
    def parse(payload: Any) -> Sequence[InboundEvent]:
        return parse_update(payload)

    def router(self) -> APIRouter:
        from hub_telegram.compose import api_routes

        router = APIRouter()
        mount(router, self, webhook(self))
        api_routes(router)
        return router

    def web_router(self) -> APIRouter:
        from hub_telegram.panel import build_router

        return build_router()

    # --- outbound ------------------------------------------------------------------------------

    def validate_content(self, content: Mapping[str, Any]) -> None:
        super().validate_content(content)
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a Telegram message needs a text")
        for button in content.get("buttons") or []:
            if not (isinstance(button, Mapping) and button.get("text") and button.get("callback_data")):
                raise ValueError("a button needs a text and callback_data")

    def decorate_marketing(self, content: dict[str, Any], context: MarketingContext) -> dict[str, Any]:
        """The /stop wording under the text and a stop button (a chat has no unsubscribe link to open)."""
        language = context.locale if context.locale in OPT_OUT_WORDING else "en"
        wording = OPT_OUT_WORDING[language]
        text = (content.get("text") or "").rstrip()
        if wording not in text:
            content["text"] = f"{text}\n\n{wording}" if text else wording
        buttons = [b for b in content.get("buttons") or [] if b.get("callback_data") != STOP_BUTTON]
        content["buttons"] = [*buttons, {"text": STOP_LABEL[language], "callback_data": STOP_BUTTON}]
        return content

    def bot(self) -> telegram.Bot:
        """The library's client for this bot (the token goes in the URL: never log its errors' URLs)."""
        if self.settings.bot_token is None:
            raise PermanentSendError("channels.telegram.bot_token is not set")
        timeout = self.settings.timeout
        request = HTTPXRequest(connection_pool_size=self.concurrency, connect_timeout=timeout, read_timeout=timeout,
                               write_timeout=timeout, pool_timeout=timeout)
        return telegram.Bot(self.settings.bot_token.get_secret_value(), base_url=self.settings.api_base,
                            request=request, get_updates_request=HTTPXRequest(read_timeout=timeout + 5))

    async def send(self, message: OutboundMessage) -> SendResult:
        [result] = await self.send_many([message])
        if isinstance(result, BaseException):
            raise result
        return result

    async def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | BaseException]:
        try:
            bot = self.bot()
        except PermanentSendError as exc:
            return [exc for _ in messages]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(message: OutboundMessage) -> SendResult:
            async with gate:
                return await self._send(bot, message)

        try:
            async with bot:  # one connection pool for the batch (and getMe once: a wrong token fails here)
                return list(await asyncio.gather(*(one(m) for m in messages), return_exceptions=True))
        except InvalidToken:
            return [PermanentSendError("Telegram refused the bot token (set bot_token again)") for _ in messages]
        except (TimedOut, NetworkError) as exc:
            return [TransientSendError(f"Telegram unreachable ({type(exc).__name__})") for _ in messages]

    async def _send(self, bot: telegram.Bot, message: OutboundMessage) -> SendResult:
        content = message.content
        buttons = [[telegram.InlineKeyboardButton(b["text"], callback_data=b["callback_data"])]
                   for b in content.get("buttons") or []]
        try:
            sent = await bot.send_message(chat_id=int(message.address), text=str(content.get("text") or ""),
                                          reply_markup=telegram.InlineKeyboardMarkup(buttons) if buttons else None)
        except Forbidden as exc:
            # "bot was blocked by the user": like SMS error 21610, consent is withdrawn before reporting.
            await asyncio.to_thread(self._record_block, message, exc.message)
            raise PermanentSendError(f"Telegram refused: {exc.message}") from None
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            raise TransientSendError("Telegram rate limit", retry_after=seconds) from None
        except BadRequest as exc:  # chat not found, empty or too long text: retrying cannot help
            raise PermanentSendError(f"Telegram refused: {exc.message}") from None
        except (TimedOut, NetworkError) as exc:  # only the type: messages can carry the URL, and it the token
            raise TransientSendError(f"Telegram unreachable ({type(exc).__name__})") from None
        except TelegramError as exc:
            raise PermanentSendError(f"Telegram refused: {exc.message}") from None
        return SendResult(provider_id=f"{sent.chat.id}:{sent.message_id}")

    def _record_block(self, message: OutboundMessage, reason: str) -> None:
        from hub_telegram.consent import blocked

        try:
            with self.hub.session() as session, session.begin():
                blocked(session, user_id=message.address, contact_id=message.contact_id,
                        source=f"telegram: {reason[:80]} (delivery {message.delivery_id})")
        except Exception:  # the send's own outcome must still be recorded
            log.exception("could not record that %s blocked the bot", message.address)

    # --- periodic ------------------------------------------------------------------------------

    def jobs(self) -> list[PeriodicJob]:
        from hub_telegram.polling import poll, set_webhook

        if not self.configured:
            return []
        if self.settings.mode == "polling":
            return [PeriodicJob(id="telegram.poll", func=poll, seconds=self.settings.poll_seconds)]
        return [PeriodicJob(id="telegram.set_webhook", func=set_webhook, seconds=3600)]
