"""A local Twilio-compatible server: the Messages and Calls endpoints the hub uses, and Twilio's callbacks.

Every request the hub sends is checked against Twilio's OpenAPI document (and for parameters the
document does not name), every answer the server gives is checked too; both kinds of failure are
kept in `violations`. Messages move queued → sent → delivered through signed status callbacks
to the StatusCallback URL, in order, scrambled or repeated as configured, or held until
`flush_callbacks()`. Calls and inbound SMS are simulated against the hub's webhooks. The real
`twilio` SDK talks to it with `client.api.base_url` pointed here.
"""

from __future__ import annotations

import asyncio

import base64
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from channels.twilio_common.keywords import Keyword, keyword
from channels.twilio_common.segments import MAX_BODY_CHARS, count_segments
from channels.twilio_common.signature import parse_form
from standins.twilio_local.callbacks import Callback, Delivered, Signer
from standins.twilio_local.contract import (
    DEFAULT_CONTRACT,
    Contract,
    ContractRequest,
    ContractResponse,
)
from standins.twilio_local.demo_page import demo_page, silence_wav
from standins.twilio_local.runner import ServerThread, bound_socket
from standins.twilio_local.voice import CallResult, CallRun, new_sid

log = logging.getLogger("standins.twilio_local")

DEMO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEMO_AUTH_TOKEN = "local-twilio-demo-token"
API = "/2010-04-01/Accounts/{account}"
CallbackMode = Literal["auto", "manual", "before_response"]
CallbackOrder = Literal["in_order", "reversed", "shuffled"]
# Message outcomes a recipient number can be configured with, as Twilio would report them.
OUTCOMES: dict[str, list[tuple[str, str | None]]] = {
    "delivered": [("queued", None), ("sent", None), ("delivered", None)],
    "undelivered": [("queued", None), ("sent", None), ("undelivered", "30003")],
    "failed": [("queued", None), ("failed", "30008")],
}


@dataclass
class LocalNumber:
    """A phone number on the account and the webhooks configured for it (as in Twilio's console)."""

    number: str
    sms_url: str | None = None
    voice_url: str | None = None
    voice_status_callback: str | None = None


@dataclass
class Injected:
    status: int
    code: int
    message: str
    retry_after: str | None = None


@dataclass
class Seen:
    """A request the hub made, with its parameters."""

    method: str
    path: str
    params: dict[str, Any]
    status_code: int = 0
    problems: list[str] = field(default_factory=list)


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class LocalTwilio:
    """The server's state and behaviour; `start()` serves it on a port in a background thread."""

    def __init__(
        self,
        *,
        account_sid: str = DEMO_ACCOUNT_SID,
        auth_token: str = DEMO_AUTH_TOKEN,
        contract_path: Path | None = DEFAULT_CONTRACT,
        callback_mode: CallbackMode = "auto",
        callback_order: CallbackOrder = "in_order",
        duplicate_callbacks: bool = False,
        callback_delay: float = 0.3,
        seed: int | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.contract: Contract | None = None
        if contract_path is not None and contract_path.exists():
            try:
                self.contract = Contract(contract_path)
            except ImportError:
                log.warning("openapi-core is not installed: requests are not checked against the contract")
        elif contract_path is not None:
            log.warning("no OpenAPI document at %s: requests are not checked against the contract", contract_path)
        self.callback_mode: CallbackMode = callback_mode
        self.callback_order: CallbackOrder = callback_order
        self.duplicate_callbacks = duplicate_callbacks
        self.callback_delay = callback_delay
        self.random = random.Random(seed)
        self.signer = Signer(auth_token)
        self.numbers: dict[str, LocalNumber] = {}
        self.services: dict[str, list[str]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.call_results: dict[str, CallResult] = {}
        self.opted_out: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.answering: dict[str, str] = {}
        self.voicemail_seconds = 7
        self.talk_seconds = 42
        self.injected: list[Injected] = []
        # Seconds to hold the next API calls before answering (a provider that stops answering in time).
        self.stalls: list[float] = []
        self.pending: list[Callback] = []
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._server: ServerThread | None = None
        self.app = self._build_app()

    # --- set-up ------------------------------------------------------------------------------

    def add_number(self, number: str, *, sms_url: str | None = None, voice_url: str | None = None,
                   voice_status_callback: str | None = None, service_sid: str | None = None) -> LocalNumber:
        entry = LocalNumber(number, sms_url, voice_url, voice_status_callback)
        self.numbers[number] = entry
        if service_sid:
            self.services.setdefault(service_sid, []).append(number)
        return entry

    def fail_next(self, status: int, *, code: int | None = None, message: str = "injected failure",
                  retry_after: str | None = None) -> None:
        """Answer the next API call with this error (429 and 5xx are what Twilio returns under load)."""
        self.injected.append(Injected(status, code or (20429 if status == 429 else 20500), message, retry_after))

    def stall_next(self, seconds: float, *, times: int = 1) -> None:
        """Hold the next `times` API calls for `seconds` before answering (the call still takes effect,
        as at Twilio when the answer is lost on the way back)."""
        self.stalls.extend([seconds] * times)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local Twilio server is not running; call start()")
        return self._server.url

    def start(self, host: str = "127.0.0.1", port: int = 0) -> LocalTwilio:
        self._server = ServerThread(self.app, bound_socket(host, port)).start()
        return self

    def stop(self) -> None:
        for thread in list(self._threads):
            thread.join(timeout=20)
        if self._server is not None:
            self._server.stop()
        self.signer.close()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for background callbacks and calls (auto mode) to finish."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def rfc2822(when: datetime | None = None) -> str:
        return format_datetime(when or datetime.now(timezone.utc))

    def recording_url(self, sid: str) -> str:
        return f"{self.url}{API.format(account=self.account_sid)}/Recordings/{sid}"

    def _background(self, func: Callable[[], Any]) -> None:
        thread = threading.Thread(target=func, daemon=True, name="local-twilio-job")
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _violation(self, text: str) -> None:
        log.error("contract violation: %s", text)
        with self._lock:
            self.violations.append(text)

    # --- the API -----------------------------------------------------------------------------

    async def _checked(self, request: Request, account: str) -> tuple[dict[str, Any], ContractRequest]:
        """Authenticate and validate an API request against the document; its parameters."""
        body = await request.body()
        form = parse_form(body)
        params = form.as_dict()
        contract_request = ContractRequest(request.method, request.url.path, dict(request.headers), body,
                                           query=request.url.query)
        seen = Seen(request.method, request.url.path, params)
        with self._lock:
            self.seen.append(seen)
        user, _, password = _basic(request.headers.get("authorization"))
        if user != self.account_sid or password != self.auth_token or account != self.account_sid:
            seen.status_code = 401
            raise TwilioError(401, 20003, "Authenticate")
        if self.contract is not None:
            problem = self.contract.request_problem(contract_request)
            unknown = self._unknown_parameters(request, params)
            for text in filter(None, [problem, unknown]):
                seen.problems.append(text)
                self._violation(f"{request.method} {request.url.path}: {text}")
            if seen.problems:
                seen.status_code = 400
                raise TwilioError(400, 21604 if "'To' is a required" in seen.problems[0] else 20001,
                                  f"Invalid request: {seen.problems[0]}")
        if self.stalls:
            await asyncio.sleep(self.stalls.pop(0))
        if self.injected:
            failure = self.injected.pop(0)
            seen.status_code = failure.status
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            raise TwilioError(failure.status, failure.code, failure.message, headers)
        return params, contract_request

    def _unknown_parameters(self, request: Request, params: dict[str, Any]) -> str | None:
        """Parameters the operation does not define (the document allows them; Twilio ignores them)."""
        assert self.contract is not None
        spec = self.contract.api.spec / "paths"
        template = "/2010-04-01/Accounts/{AccountSid}/" + request.url.path.rsplit("/", 1)[-1]
        if template not in spec:
            return None
        operation = spec / template / request.method.lower()
        schema = operation / "requestBody" / "content" / "application/x-www-form-urlencoded" / "schema"
        with schema.open() as raw:
            known = set(raw.get("properties", {}))
        unknown = sorted(set(params) - known)
        return f"parameters the document does not define: {', '.join(unknown)}" if unknown else None

    def _answer(self, contract_request: ContractRequest, status: int, resource: dict[str, Any]) -> JSONResponse:
        data = json.dumps(resource).encode()
        if self.contract is not None:
            problem = self.contract.response_problem(
                contract_request, ContractResponse(status, data, {"Content-Type": "application/json"}))
            if problem:
                self._violation(f"the local server's own answer: {problem}")
        return JSONResponse(resource, status_code=status)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Local Twilio", docs_url=None, redoc_url=None, openapi_url=None)

        @app.exception_handler(TwilioError)
        async def _twilio_error(request: Request, exc: TwilioError) -> JSONResponse:
            body = {"code": exc.code, "message": exc.message,
                    "more_info": f"https://www.twilio.com/docs/errors/{exc.code}", "status": exc.status}
            return JSONResponse(body, status_code=exc.status, headers=exc.headers)

        @app.post(API.format(account="{account}") + "/Messages.json")
        async def create_message(account: str, request: Request) -> Response:
            params, contract_request = await self._checked(request, account)
            resource, callbacks = self._create_message(params)
            if self.callback_mode == "before_response":
                # The callbacks land before the sender has even seen the SID, let alone committed it.
                for callback in self._ordered(callbacks):
                    self.signer.post(callback.url, callback.params)
            elif self.callback_mode == "manual":
                with self._lock:
                    self.pending.extend(callbacks)
            elif callbacks:
                self._background(lambda: self._send_later(callbacks))
            return self._answer(contract_request, 201, resource)

        @app.get(API.format(account="{account}") + "/Messages/{sid}.json")
        async def fetch_message(account: str, sid: str, request: Request) -> Response:
            _, contract_request = await self._checked(request, account)
            if sid not in self.messages:
                raise TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
            return self._answer(contract_request, 200, self.messages[sid])

        @app.post(API.format(account="{account}") + "/Calls.json")
        async def create_call(account: str, request: Request) -> Response:
            params, contract_request = await self._checked(request, account)
            resource = self._create_call(params)
            return self._answer(contract_request, 201, resource)

        @app.get(API.format(account="{account}") + "/Calls/{sid}.json")
        async def fetch_call(account: str, sid: str, request: Request) -> Response:
            _, contract_request = await self._checked(request, account)
            if sid not in self.calls:
                raise TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
            return self._answer(contract_request, 200, self.calls[sid])

        @app.get(API.format(account="{account}") + "/Recordings/{sid}")
        async def recording(account: str, sid: str) -> Response:
            return Response(silence_wav(), media_type="audio/wav")

        # --- the demo's controls (not Twilio's API) ---

        @app.get("/", response_class=Response)
        async def page() -> Response:
            return Response(demo_page(self), media_type="text/html")

        @app.post("/_local/sms")
        async def local_sms(request: Request) -> dict[str, Any]:
            form = parse_form(await request.body()).as_dict()
            delivered = await _in_thread(self.inbound_sms, str(form.get("from", "")), str(form.get("to", "")),
                                         str(form.get("body", "")))
            return {"status_code": delivered.status_code, "error": delivered.error}

        @app.post("/_local/calls")
        async def local_call(request: Request) -> dict[str, Any]:
            form = parse_form(await request.body()).as_dict()
            sid = new_sid("CA")
            self._background(lambda: self.inbound_call(str(form.get("from", "")), str(form.get("to", "")), sid=sid,
                                                       voicemail_seconds=int(str(form.get("voicemail_seconds") or 7))))
            return {"call_sid": sid}

        @app.get("/_local/state")
        async def state() -> dict[str, Any]:
            return {"messages": list(self.messages.values()), "calls": list(self.calls.values()),
                    "opted_out": sorted(self.opted_out), "violations": self.violations,
                    "callbacks": [d.__dict__ for d in self.signer.log[-50:]]}

        return app

    # --- messages ----------------------------------------------------------------------------

    def _create_message(self, params: dict[str, Any]) -> tuple[dict[str, Any], list[Callback]]:
        to = str(params.get("To", ""))
        sender = params.get("From")
        service = params.get("MessagingServiceSid")
        body = str(params.get("Body", ""))
        media = params.get("MediaUrl") or []
        media = media if isinstance(media, list) else [media]
        if not to.startswith("+") or not to[1:].isdigit():
            raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if service:
            if service not in self.services:
                raise TwilioError(400, 21703, "The Messaging Service does not exist")
            sender = sender or self.services[service][0]
        elif not sender:
            raise TwilioError(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
        elif sender not in self.numbers:
            raise TwilioError(400, 21606, f"The From phone number {sender} is not a valid message-capable "
                                          "Twilio phone number for this account")
        if not body and not media:
            raise TwilioError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARS:
            raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit")
        if to in self.opted_out:
            raise TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = new_sid("MM" if media else "SM")
        now = self.rfc2822()
        path = API.format(account=self.account_sid) + f"/Messages/{sid}"
        resource = {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body,
            "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": None if service and not params.get("From") else sender,
            "messaging_service_sid": service, "num_media": str(len(media)),
            "num_segments": str(count_segments(body).segments), "price": None, "price_unit": "USD", "sid": sid,
            "status": "accepted" if service and not params.get("From") else "queued",
            "subresource_uris": {"media": f"{path}/Media.json"}, "to": to, "uri": f"{path}.json",
        }
        with self._lock:
            self.messages[sid] = resource
        callback_url = params.get("StatusCallback")
        if not callback_url:
            return resource, []
        callbacks = []
        for order, (status, error) in enumerate(OUTCOMES[self.outcomes.get(to, "delivered")]):
            callback = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "MessageSid": sid,
                        "SmsSid": sid, "MessageStatus": status, "SmsStatus": status, "From": sender, "To": to}
            if service:
                callback["MessagingServiceSid"] = service
            if error:
                callback["ErrorCode"] = error
            callbacks.append(Callback(str(callback_url), callback, sid=sid, order=order))
        return resource, callbacks

    def _ordered(self, callbacks: list[Callback]) -> list[Callback]:
        ordered = list(callbacks)
        if self.callback_order == "reversed":
            ordered.reverse()
        elif self.callback_order == "shuffled":
            self.random.shuffle(ordered)
        if self.duplicate_callbacks:
            ordered = ordered + [c for c in ordered if self.random.random() < 0.5] + ordered[:1]
        return ordered

    def _send_later(self, callbacks: list[Callback]) -> None:
        for callback in self._ordered(callbacks):
            time.sleep(self.callback_delay)
            self.signer.post(callback.url, callback.params)
            status = callback.params["MessageStatus"]
            with self._lock:
                if callback.sid in self.messages and status in ("sent", "delivered", "undelivered", "failed"):
                    self.messages[callback.sid]["status"] = status

    def flush_callbacks(self, *, order: CallbackOrder | None = None, duplicate: bool | None = None) -> list[Delivered]:
        """Send the held callbacks (manual mode), in the given order, repeated if asked; what the hub answered."""
        with self._lock:
            held, self.pending = self.pending, []
        saved = (self.callback_order, self.duplicate_callbacks)
        self.callback_order = order or self.callback_order
        self.duplicate_callbacks = self.duplicate_callbacks if duplicate is None else duplicate
        try:
            return [self.signer.post(c.url, c.params) for c in self._ordered(held)]
        finally:
            self.callback_order, self.duplicate_callbacks = saved

    def inbound_sms(self, sender: str, to: str, body: str, *, media: list[tuple[str, str]] = (),  # type: ignore[assignment]
                    sid: str | None = None) -> Delivered:
        """A customer texts one of the account's numbers: Twilio's blocklist first, then the webhook."""
        number = self.numbers.get(to)
        if number is None or not number.sms_url:
            raise LookupError(f"{to} is not a number on this account with an SMS webhook")
        word = keyword(body)
        if word == Keyword.OPT_OUT:
            self.opted_out.add(sender)
        elif word == Keyword.OPT_IN:
            self.opted_out.discard(sender)
        sid = sid or new_sid("MM" if media else "SM")
        params: dict[str, Any] = {
            "ToCountry": "US", "ToState": "", "SmsMessageSid": sid, "NumMedia": str(len(media)), "ToCity": "",
            "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
            "Body": body, "FromCountry": "", "To": to, "ToZip": "",
            "NumSegments": str(max(1, count_segments(body).segments)), "MessageSid": sid,
            "AccountSid": self.account_sid, "From": sender, "ApiVersion": "2010-04-01",
        }
        for i, (url, content_type) in enumerate(media):
            params[f"MediaUrl{i}"], params[f"MediaContentType{i}"] = url, content_type
        return self.signer.post(number.sms_url, params)

    # --- calls -------------------------------------------------------------------------------

    def _create_call(self, params: dict[str, Any]) -> dict[str, Any]:
        to, sender = str(params.get("To", "")), str(params.get("From", ""))
        if not (params.get("Url") or params.get("Twiml") or params.get("ApplicationSid")):
            raise TwilioError(400, 21205, "Url, Twiml or ApplicationSid is required")
        if sender not in self.numbers:
            raise TwilioError(400, 21210, f"Caller phone number is not verified for this account: {sender}")
        sid = new_sid("CA")
        now = self.rfc2822()
        path = API.format(account=self.account_sid) + f"/Calls/{sid}"
        resource = {
            "sid": sid, "date_created": now, "date_updated": now, "parent_call_sid": None,
            "account_sid": self.account_sid, "to": to, "to_formatted": to, "from": sender, "from_formatted": sender,
            "phone_number_sid": None, "status": "queued", "start_time": None, "end_time": None, "duration": None,
            "price": None, "price_unit": "USD", "direction": "outbound-api", "answered_by": None,
            "api_version": "2010-04-01", "forwarded_from": None, "group_sid": None, "caller_name": None,
            "queue_time": "0", "trunk_sid": None, "uri": f"{path}.json",
            "subresource_uris": {"recordings": f"{path}/Recordings.json"},
        }
        with self._lock:
            self.calls[sid] = resource
        events = params.get("StatusCallbackEvent") or ["completed"]
        run = CallRun(
            self, sid=sid, url=params.get("Url"), twiml=params.get("Twiml"),
            params={"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": sid, "CallStatus": "queued",
                    "Direction": "outbound-api", "From": sender, "To": to, "Caller": sender, "Called": to},
            status_callback=params.get("StatusCallback"),
            status_events=tuple(events if isinstance(events, list) else [events]),
        )
        job = lambda: self._finish_call(sid, run.run(callee=to))  # noqa: E731
        if self.callback_mode == "manual":
            with self._lock:
                self.pending.append(Callback("", {}, sid=sid, extra={"job": job}))
        else:
            self._background(job)
        return resource

    def _finish_call(self, sid: str, result: CallResult) -> CallResult:
        with self._lock:
            self.call_results[sid] = result
            if sid in self.calls:
                self.calls[sid].update(status=result.status, duration=str(result.duration),
                                       end_time=self.rfc2822())
        return result

    def run_pending_calls(self) -> list[CallResult]:
        """Run the outbound calls held in manual mode."""
        with self._lock:
            jobs = [c for c in self.pending if "job" in c.extra]
            self.pending = [c for c in self.pending if "job" not in c.extra]
        return [c.extra["job"]() for c in jobs]

    def inbound_call(self, sender: str, to: str, *, sid: str | None = None, answering: dict[str, str] | None = None,
                     voicemail_seconds: int | None = None, talk_seconds: int | None = None) -> CallResult:
        """A customer calls one of the account's numbers; runs the whole call and returns what happened."""
        number = self.numbers.get(to)
        if number is None or not number.voice_url:
            raise LookupError(f"{to} is not a number on this account with a voice webhook")
        sid = sid or new_sid("CA")
        params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": sid, "CallStatus": "ringing",
                  "Direction": "inbound", "From": sender, "To": to, "Caller": sender, "Called": to,
                  "CallerCountry": "", "CalledCountry": ""}
        with self._lock:
            self.calls[sid] = {"sid": sid, "from": sender, "to": to, "status": "ringing", "direction": "inbound"}
        run = CallRun(self, sid=sid, params=params, url=number.voice_url,
                      status_callback=number.voice_status_callback, answering=answering,
                      voicemail_seconds=voicemail_seconds, talk_seconds=talk_seconds)
        return self._finish_call(sid, run.run())


def _basic(header: str | None) -> tuple[str, str, str]:
    if not header or not header.lower().startswith("basic "):
        return "", "", ""
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return "", "", ""
    return decoded.partition(":")


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(func, *args)
