"""The inbound path the hub owns: verify → parse → one transaction through `hub.ingest` → answer.

A receiving adapter declares a `Webhook` (its `verify`, its `parse`, and where needed a hook that
runs in the same transaction after the events are written, such as SMS keywords or bounces) and
`mount`s it on its router; the route itself is the hub's, in the spirit of Zulip's `webhook_view`.
So every webhook checks its signature before anything is read further (403, nothing written),
answers a payload it cannot read with a clear 400 (422 when it reads but is not a valid object of
the provider's), writes its events and status updates in one transaction on one thread-pool hop,
and answers the provider in the shape the provider wants. Routes that hold a conversation with
the provider (TwiML voice menus) stay hand-written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from hub.channel import SignatureError, StatusUpdate
from hub.api.problems import Problem
from hub.ingest import InboundEvent, IngestResult, post_event
from hub.outbox import apply_status
from hub.threads import run_db_call

log = logging.getLogger("hub.inbound")


class Unprocessable(ValueError):
    """A payload that decodes but is not a valid object of the provider's: answered 422."""


class Receiver(Protocol):
    """What `mount` needs of an adapter: its name (the `channel` of what it writes) and its runtime."""

    name: str
    hub: Any


@dataclass
class Received:
    """What one webhook wrote, handed to the after-hook (inside the transaction) and to `answer`."""

    payload: Any
    events: list[IngestResult] = field(default_factory=list)
    statuses: list[tuple[StatusUpdate, bool]] = field(default_factory=list)
    # What the after-hook returned (a reply to send back, say); None without a hook.
    extra: Any = None

    @property
    def created(self) -> bool:
        """Whether anything new reached the timeline (False for a replay or a status callback)."""
        return any(r.created for r in self.events)


def answer_json(received: Received) -> Response:
    """The default answer: the events written (201 when one is new, 200 for a replay)."""
    body = {"events": [{"event_id": r.event.id, "contact_id": r.contact.id, "created": r.created}
                       for r in received.events],
            "statuses": [{"provider_id": u.provider_id, "changed": changed} for u, changed in received.statuses]}
    return JSONResponse(body, status_code=201 if received.created else 200)


@dataclass(frozen=True)
class Webhook:
    """One inbound route of a receiving adapter, declared; `mount` turns it into the route."""

    path: str
    summary: str
    # Checks the request and returns its payload decoded (a form, a JSON object); raises
    # SignatureError (403) when the request is not the provider's. Runs on the event loop: no I/O.
    verify: Callable[[Request, bytes], Any]
    # Pure: the payload's events and status updates. ValueError → 400, Unprocessable → 422.
    parse: Callable[[Any], Sequence[InboundEvent | StatusUpdate]]
    # Runs in the transaction after the events are written (consent keywords, bounces).
    after: Callable[[Session, Received], Any] | None = None
    # The provider's answer (TwiML, JSON…), built on the event loop from what was written.
    answer: Callable[[Received], Response] = answer_json
    # Prefix of the 400/422 detail, naming what the route expects ("Not a Twilio status callback").
    expects: str = "Not a payload this webhook reads"
    response_class: type[Response] = Response


def receive(channel: Receiver, webhook: Webhook, payload: Any) -> Received:
    """Parse `payload` and write what it says in one transaction (the thread-pool side of a webhook)."""
    items = webhook.parse(payload)
    received = Received(payload=payload)
    with channel.hub.session() as session, session.begin():
        for item in items:
            if isinstance(item, StatusUpdate):
                received.statuses.append((item, apply_status(session, channel=channel.name, update=item)))
            else:
                received.events.append(post_event(session, event=item))
        if webhook.after is not None:
            received.extra = webhook.after(session, received)
    return received


def mount(router: APIRouter, channel: Receiver, webhook: Webhook) -> None:
    """Add `webhook` to `router` (mounted at /channels/<name>/) as a POST route the hub runs."""

    async def route(request: Request) -> Response:
        body = await request.body()
        try:
            payload = webhook.verify(request, body)
        except SignatureError as exc:
            log.warning("refused a %s webhook to %s: %s", channel.name, request.url.path, exc)
            raise Problem(403, f"Refused: {exc}", slug="bad-signature") from None
        try:
            # One hop for parse, the transaction and the after-hook: a slow commit never stalls the loop,
            # and a burst waits on the loop rather than opening connections beyond the pool (hub.threads).
            received = await run_db_call(receive, channel, webhook, payload)
        except Unprocessable as exc:
            raise Problem(422, f"{webhook.expects}: {exc}") from None
        except ValueError as exc:
            raise Problem(400, f"{webhook.expects}: {exc}") from None
        for result in received.events:
            log.info("%s %s on contact %s (%s)", channel.name, result.event.external_id, result.contact.id,
                     "new" if result.created else "replayed")
        return webhook.answer(received)

    router.add_api_route(webhook.path, route, methods=["POST"], summary=webhook.summary,
                         response_class=webhook.response_class)

