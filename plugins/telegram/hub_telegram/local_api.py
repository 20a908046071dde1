"""A local Telegram Bot API for tests and the demo: the methods the hub calls, answered with the
library's own types, and every request checked against the library's model of the Bot API.

Requests are bound to the signature of the matching `telegram.Bot` method (sendMessage →
Bot.send_message), so a parameter the real API does not take, or a missing one, is a contract
violation; answers are built from telegram.Message, User, Update and WebhookInfo and serialised with
their `to_dict()`. Violations are answered 400 and kept in `violations` for the tests to assert on.
People are simulated too: `say`, `share_phone`, `press` and `block` make the updates a user's app
would cause, delivered to the webhook the hub set (with its secret token) or queued for getUpdates.
"""

from __future__ import annotations

import inspect
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import telegram
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DEMO_TOKEN = "123456789:" + "LOCALbotTOKENforTHEdemo_" + "x" * 11
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass
class SentMessage:
    """A message the bot sent, as the stand-in stored it (the library's Message)."""

    chat_id: int
    message: telegram.Message
    params: dict[str, Any]


@dataclass
class LocalBotApi:
    token: str = DEMO_TOKEN
    sent: list[SentMessage] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    delivered: list[tuple[int, int]] = field(default_factory=list)  # (update_id, HTTP status) pushed to the webhook

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[dict[str, Any]] = []
        self._update_id = 100_000
        self._message_id = 1_000
        self.bot_user = telegram.User(id=int(self.token.split(":", 1)[0]), is_bot=True, first_name="Hub",
                                      username="hub_local_bot")
        self.app = self._build()
        self._server: uvicorn.Server | None = None
        self.url = ""

    # --- the Bot API ---------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI(title="Local Telegram Bot API", docs_url=None, redoc_url=None, openapi_url=None)

        @app.api_route("/bot{token}/{method}", methods=["GET", "POST"])
        async def call(token: str, method: str, request: Request) -> JSONResponse:
            if token != self.token:
                return _error(401, "Unauthorized")
            params = await _params(request)
            problem = self.check(method, params)
            if problem is not None:
                self.violations.append(problem)
                return _error(400, f"Bad Request: {problem}")
            handler = getattr(self, "_" + _CAMEL.sub("_", method).lower(), None)
            if handler is None:
                return _error(404, "Not Found: method not in the local Bot API")
            return handler(params)

        return app

    def check(self, method: str, params: dict[str, Any]) -> str | None:
        """Why `params` is not a valid call of `method` in the library's model, or None."""
        bound = getattr(telegram.Bot, _CAMEL.sub("_", method).lower(), None)
        if bound is None:
            return f"{method} is not a Bot API method"
        try:
            inspect.signature(bound).bind(None, **params)
        except TypeError as exc:
            return f"{method}: {exc}"
        markup = params.get("reply_markup")
        if markup is not None:
            try:
                telegram.InlineKeyboardMarkup.de_json(markup if isinstance(markup, dict) else json.loads(markup), None)
            except (TypeError, ValueError, KeyError) as exc:
                return f"{method}: reply_markup is not an InlineKeyboardMarkup ({exc})"
        return None

    def _get_me(self, params: dict[str, Any]) -> JSONResponse:
        return _ok(self.bot_user.to_dict())

    def _send_message(self, params: dict[str, Any]) -> JSONResponse:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        text = str(params.get("text") or "")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        markup = json.loads(markup) if isinstance(markup, str) else markup
        with self._lock:
            self._message_id += 1
            message = telegram.Message(
                message_id=self._message_id, date=datetime.now(timezone.utc).replace(microsecond=0),
                chat=telegram.Chat(id=chat_id, type="private"), from_user=self.bot_user, text=text,
                reply_markup=telegram.InlineKeyboardMarkup.de_json(markup, None) if markup else None)
            self.sent.append(SentMessage(chat_id=chat_id, message=message, params=params))
        return _ok(message.to_dict())

    def _answer_callback_query(self, params: dict[str, Any]) -> JSONResponse:
        return _ok(True)

    def _set_webhook(self, params: dict[str, Any]) -> JSONResponse:
        self.webhook_url = params["url"] or None
        self.webhook_secret = params.get("secret_token")
        return _ok(True)

    def _delete_webhook(self, params: dict[str, Any]) -> JSONResponse:
        self.webhook_url = self.webhook_secret = None
        return _ok(True)

    def _get_webhook_info(self, params: dict[str, Any]) -> JSONResponse:
        info = telegram.WebhookInfo(url=self.webhook_url or "", has_custom_certificate=False,
                                    pending_update_count=len(self._queue))
        return _ok(info.to_dict())

    def _get_updates(self, params: dict[str, Any]) -> JSONResponse:
        if self.webhook_url:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        with self._lock:
            # Telegram forgets the updates before `offset`: they were confirmed.
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
            return _ok(self._queue[:limit])

    # --- people --------------------------------------------------------------------------------

    def user(self, user_id: int, first_name: str = "Anna", last_name: str | None = None) -> telegram.User:
        return telegram.User(id=user_id, is_bot=False, first_name=first_name, last_name=last_name, language_code="ru")

    def say(self, user_id: int, text: str, **who: Any) -> dict[str, Any]:
        """The user writes to the bot; the update (as a dict) after it was delivered or queued."""
        return self._message(user_id, who, text=text)

    def share_phone(self, user_id: int, phone: str, **who: Any) -> dict[str, Any]:
        """The user presses "share my phone number": a contact message with their own user id."""
        person = self.user(user_id, **who)
        return self._message(user_id, who, contact=telegram.Contact(phone_number=phone, first_name=person.first_name,
                                                                   user_id=user_id))

    def press(self, user_id: int, data: str, **who: Any) -> dict[str, Any]:
        """The user presses an inline button whose callback data is `data`."""
        with self._lock:
            self._update_id += 1
            update = telegram.Update(update_id=self._update_id, callback_query=telegram.CallbackQuery(
                id=f"cb{self._update_id}", from_user=self.user(user_id, **who), chat_instance=str(user_id), data=data))
        return self.deliver(update.to_dict())

    def block(self, user_id: int) -> None:
        """The user blocks the bot: later sends to them are answered 403."""
        self.blocked.add(user_id)

    def _message(self, user_id: int, who: dict[str, Any], **content: Any) -> dict[str, Any]:
        with self._lock:
            self._update_id += 1
            self._message_id += 1
            update = telegram.Update(update_id=self._update_id, message=telegram.Message(
                message_id=self._message_id, date=datetime.now(timezone.utc).replace(microsecond=0),
                chat=telegram.Chat(id=user_id, type="private"), from_user=self.user(user_id, **who), **content))
        return self.deliver(update.to_dict())

    def deliver(self, update: dict[str, Any]) -> dict[str, Any]:
        """Push `update` to the webhook (with the secret token) or queue it for getUpdates."""
        if not self.webhook_url:
            with self._lock:
                self._queue.append(update)
            return update
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret} if self.webhook_secret else {}
        answer = httpx.post(self.webhook_url, json=update, headers=headers, timeout=30)
        self.delivered.append((update["update_id"], answer.status_code))
        return update

    # --- serving -------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> LocalBotApi:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self._sock = sock
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name="local-telegram")
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the local Bot API did not start")
            time.sleep(0.01)
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self

    @property
    def api_base(self) -> str:
        """What [channels.telegram] api_base is set to, to talk to this server."""
        return f"{self.url}/bot"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._sock.close()


async def _params(request: Request) -> dict[str, Any]:
    """The call's parameters, as the library sends them (a form whose complex values are JSON) or as JSON."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        return dict(json.loads(body or b"{}"))
    params: dict[str, Any] = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("multipart/"):
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    else:
        params.update(parse_qsl(body.decode("utf-8")))
    return params


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(code: int, description: str, **parameters: Any) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)
