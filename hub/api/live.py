"""REST route: live updates to agents' screens as Server-Sent Events (GET /api/v1/live)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from hub import live
from hub.api.deps import HubDep, SessionDep, require
from hub.api.problems import Problem
from hub.auth import Principal
from hub.ingest import get_contact

router = APIRouter(tags=["live"])

# Proxies and load balancers drop connections that stay silent for about a minute.
KEEPALIVE_SECONDS = 15.0
MAX_CONTACTS = 100


def _frame(message: dict[str, Any]) -> str:
    kind = str(message.get("type", "message")).replace("\n", " ").replace("\r", " ")
    return f"event: {kind}\ndata: {json.dumps(message, separators=(',', ':'), default=str)}\n\n"


async def _stream(broker: live.MemoryBroker, topics: set[str]) -> AsyncIterator[str]:
    messages = broker.subscribe(topics)
    # The subscription registers when the iterator first runs: start it and let it reach its
    # first wait before telling the client the stream is live.
    pending = asyncio.ensure_future(anext(messages))
    try:
        await asyncio.sleep(0)
        yield "retry: 3000\n: connected\n\n"
        while True:
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield ": keep-alive\n\n"
                continue
            message = pending.result()
            pending = asyncio.ensure_future(anext(messages))
            yield _frame(message)
    finally:
        # The client went away (the server cancels this generator) or the stream broke: cancelling
        # the pending read ends the subscription, which unregisters itself from the broker.
        pending.cancel()


@router.get(
    "/live",
    response_class=StreamingResponse,
    summary="Server-Sent Events: new timeline events of some contacts, and agent-wide notices",
    description=(
        "Each message is an SSE event whose name is the message type (`event.created`) and whose data is "
        "a JSON object with its `topic`. A comment line `: keep-alive` comes every 15 s when nothing "
        "else does. Pass contact_id (repeatable) and/or agents=true."
    ),
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless event stream"}},
)
def get_live(
    hub: HubDep,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("timeline:read"))],
    contact_id: Annotated[list[int], Query(max_length=MAX_CONTACTS)] = [],  # noqa: B006 - FastAPI copies it
    agents: bool = False,
) -> StreamingResponse:
    topics = {live.contact_topic(get_contact(session, cid).id) for cid in contact_id}  # type: ignore[arg-type]
    if agents:
        topics.add(live.AGENTS_TOPIC)
    if not topics:
        raise Problem(422, "Say what to follow: contact_id=… (repeatable) and/or agents=true.", slug="validation",
                      errors=[{"field": "contact_id", "in": "query", "message": "give contact_id or agents=true",
                               "type": "missing"}])
    # The stream may stay open for hours: give the connection back to the pool now.
    session.close()
    return StreamingResponse(
        _stream(hub.broker, topics),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
