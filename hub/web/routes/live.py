"""Live updates on open pages (server-sent events) and the incoming-call screen pop.

Every signed-in page opens one stream: it always carries incoming calls (the agents' topic), and on
a contact page also that contact's new events. Messages come from hub.broker, which fans out across
API processes through PostgreSQL LISTEN/NOTIFY, so an agent sees events whichever process took them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from hub import live
from hub.db import without_transaction
from hub.ingest import INCOMING_CALL, survivor
from hub.models import Contact, TimelineEvent
from hub.web import sessions, timeline_view
from hub.web.card import card_data
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, render, require

router = APIRouter()
Reader = Annotated[Agent, Depends(require("contacts:read"))]
HEARTBEAT_SECONDS = 15.0


def _frame(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


@router.get("/live")
async def stream(request: Request, agent: Reader, contact: int | None = None) -> Response:
    hub = get_hub(request)
    topics = {live.AGENTS_TOPIC}
    if contact is not None:
        topics.add(live.contact_topic(contact))
    signed_in = sessions.StreamSignIn(hub.session, agent.session)

    async def frames() -> AsyncIterator[str]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

        async def pump() -> None:
            async for message in hub.broker.subscribe(topics):
                await queue.put(message)

        task = asyncio.create_task(pump())
        await asyncio.sleep(0)  # let the pump subscribe before "ready" tells the page it is live
        try:
            yield "retry: 3000\n" + _frame("ready", {"topics": sorted(topics)})
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    message = None
                if await signed_in.lapsed():
                    yield _frame("signed-out", {})
                    return
                if message is None:
                    continue
                if message.get("type") == INCOMING_CALL and message.get("topic") == live.AGENTS_TOPIC:
                    yield _frame("pop", {"contact_id": message.get("contact_id"), "event_id": message.get("event_id")})
                elif message.get("topic", "").startswith("contact:"):
                    yield _frame("timeline", {k: message.get(k) for k in ("type", "contact_id", "event_id", "channel",
                                                                          "kind", "status")})
        finally:
            task.cancel()

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/pop/{contact_id}")
def screen_pop(request: Request, contact_id: int, agent: Reader, event: int | None = None) -> Response:
    """The caller's card and latest timeline, for the incoming-call dialog."""
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        without_transaction(db)  # reads only: half the round trips on PostgreSQL (no BEGIN, no ROLLBACK)
        contact = db.get(Contact, contact_id)
        if contact is None:
            raise PageError(404, N_("There is no such contact."))
        contact = survivor(db, contact)
        data = card_data(db, contact_id=contact.id, extensions=hub.extensions.values(),  # type: ignore[arg-type]
                         locale=agent.locale)
        recent_events = timeline_view.page(db, contact_id=contact.id,  # type: ignore[arg-type]
                                           filters=timeline_view.TimelineFilter(), cursor=None, limit=5).items
        items = timeline_view.views(db, recent_events, contact_id=contact.id, fmt=agent.fmt,  # type: ignore[arg-type]
                                    channels=hub.channels)
        call = db.get(TimelineEvent, event) if event is not None else None
        if call is not None and call.contact_id != contact.id:
            call = None
    return render(request, agent, "_pop.html", contact=contact, data=data, card=data.card, items=items, call=call)
