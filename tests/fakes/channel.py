"""A fake adapter registered through the registry (never mock.patch): it records what it sends,
fails on demand, and accepts HMAC-signed JSON webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi import APIRouter, Request

from hub.channel import (
    Capability,
    Channel,
    ChannelLimits,
    ChannelSettings,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    SignatureError,
    TransientSendError,
)
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import Direction, IdentityKind


class FakeSettings(ChannelSettings):
    secret: str = "fake-secret"


class FakeChannel(Channel):
    name = "fake"
    label = "Fake"
    capabilities = frozenset({Capability.SEND, Capability.RECEIVE, Capability.STATUS})
    limits = ChannelLimits(max_body_chars=1000, delivery_receipts=True)
    Settings = FakeSettings

    # Class-level so tests can reach them without holding the instance.
    sent: ClassVar[list[OutboundMessage]] = []
    # address -> list of exceptions to raise on successive attempts
    failures: ClassVar[dict[str, list[Exception]]] = {}

    @classmethod
    def reset(cls) -> None:
        cls.sent.clear()
        cls.failures.clear()

    def sign(self, body: bytes) -> str:
        return hmac.new(self.settings.secret.encode(), body, hashlib.sha256).hexdigest()  # type: ignore[attr-defined]

    def verify(self, *, url: str, headers: Mapping[str, str], body: bytes, form: Mapping[str, Any] | None = None) -> None:
        given = headers.get("x-fake-signature", "")
        if not hmac.compare_digest(given, self.sign(body)):
            raise SignatureError("bad X-Fake-Signature")

    @staticmethod
    def parse(payload: Any) -> Sequence[InboundEvent]:
        if not isinstance(payload, dict) or "id" not in payload or "from" not in payload:
            raise ValueError("a fake payload needs 'id' and 'from'")
        kind = payload.get("type", "message")
        return [
            InboundEvent(
                channel="fake",
                kind=kind,
                direction=Direction.IN,
                external_id=str(payload["id"]),
                identities=[IdentityRef(kind=IdentityKind.PHONE, value=payload["from"])],
                display_name=payload.get("name"),
                text=payload.get("text"),
                thread_key=f"fake:{payload['from']}",
            )
        ]

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/inbound")
        async def inbound(request: Request) -> dict[str, Any]:
            from fastapi import HTTPException

            body = await request.body()
            try:
                self.verify(url=str(request.url), headers=request.headers, body=body)
            except SignatureError as exc:
                raise HTTPException(403, str(exc)) from None
            try:
                events = self.parse(json.loads(body))
            except ValueError as exc:
                raise HTTPException(400, str(exc)) from None
            results = [ingest(self.hub, event) for event in events]
            return {"events": [r.event.id for r in results], "created": [r.created for r in results]}

        return router

    async def send(self, message: OutboundMessage) -> SendResult:
        queue = self.failures.get(message.address)
        if queue:
            raise queue.pop(0)
        self.sent.append(message)
        return SendResult(provider_id=f"fake-{message.delivery_id}-{message.attempt}")


__all__ = ["FakeChannel", "PermanentSendError", "TransientSendError"]
