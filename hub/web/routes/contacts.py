"""Finding contacts and the contact page: card, unified timeline, its pages, threads and messages."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from hub.channel_hooks import ComposeSlot
from hub.contacts import identities_of, search_contacts
from hub.identities import fold
from hub.ingest import survivor
from hub.merge import merges_of
from hub.models import Contact, TaskStatus, TimelineEvent
from hub.tasks import list_tasks
from hub.timeline import InvalidCursor, TimelineFilter
from hub.web import recent, timeline_view
from hub.web.card import card_data, display_names
from hub.web.i18n import N_
from hub.web.pages import Agent, PageError, get_hub, is_fragment, redirect, render, require
from hub.web.security import email_document

router = APIRouter()
Reader = Annotated[Agent, Depends(require("contacts:read"))]
ChannelFilter = Annotated[list[str], Query()]
KindFilter = Annotated[list[str], Query()]
SEARCH_LIMIT = 20


def _results(request: Request, q: str, cursor: str | None) -> tuple[list[Contact], dict, str | None]:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        try:
            found = search_contacts(db, query=q[:200], region=hub.settings.default_region, limit=SEARCH_LIMIT,
                                    cursor=cursor)
        except InvalidCursor:
            raise PageError(400, N_("That page of results has expired; search again.")) from None
        idents = identities_of(db, [c.id for c in found.items])  # type: ignore[misc]
        return list(found.items), idents, found.next_cursor


@router.get("/")
def home(request: Request, agent: Reader) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        recents = recent.recent(db, user_id=agent.id)
        recent_idents = identities_of(db, [c.id for c in recents])  # type: ignore[misc]
        tasks = list_tasks(db, assignee_id=agent.id, status=TaskStatus.OPEN, limit=6).items \
            if agent.allows("tasks:read") else []
    return render(request, agent, "home.html", q="", results=None, idents={}, next_cursor=None, recents=recents,
                  recent_idents=recent_idents, tasks=tasks)


@router.get("/search")
def search(request: Request, agent: Reader, q: Annotated[str, Query(max_length=200)] = "",
           cursor: str | None = None) -> Response:
    query = q.strip()
    results, idents, next_cursor = _results(request, query, cursor) if query else ([], {}, None)
    values = dict(q=query, results=results if query else None, idents=idents, next_cursor=next_cursor)
    if is_fragment(request):
        return render(request, agent, "_search_results.html", **values)
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        recents = recent.recent(db, user_id=agent.id)
        recent_idents = identities_of(db, [c.id for c in recents])  # type: ignore[misc]
    return render(request, agent, "home.html", recents=recents, recent_idents=recent_idents, tasks=[], **values)


def _filters_query(filters: TimelineFilter) -> list[tuple[str, str]]:
    pairs = [("channel", c) for c in sorted(filters.channels)] + [("kind", k) for k in sorted(filters.kinds)]
    if filters.text:
        pairs.append(("q", filters.text))
    return pairs


def _contact_or_404(db: Session, contact_id: int) -> Contact:
    contact = db.get(Contact, contact_id)
    if contact is None:
        raise PageError(404, N_("There is no such contact."))
    return contact


def _timeline_values(request: Request, agent: Agent, db: Session, *, contact_id: int, filters: TimelineFilter,
                     cursor: str | None, previous_day: date | None) -> dict:
    hub = get_hub(request)
    try:
        found = timeline_view.page(db, contact_id=contact_id, filters=filters, cursor=cursor)
    except InvalidCursor:
        raise PageError(400, N_("That part of the timeline has expired; reload the page.")) from None
    items = timeline_view.views(db, found.items, contact_id=contact_id, fmt=agent.fmt, channels=hub.channels,
                                previous_day=previous_day)
    return {
        "items": items,
        "next_cursor": found.next_cursor,
        "filters": filters,
        "filter_query": _filters_query(filters),
        "last_day": items[-1].day.isoformat() if items else (previous_day.isoformat() if previous_day else ""),
    }


@router.get("/contacts/{contact_id}")
def contact_page(request: Request, contact_id: int, agent: Reader, channel: ChannelFilter = [],  # noqa: B006
                 kind: KindFilter = [], q: Annotated[str | None, Query(max_length=200)] = None,  # noqa: B006
                 merged: int | None = None, undone: int | None = None) -> Response:
    hub = get_hub(request)
    filters = timeline_view.parse_filters(channel, kind, q)
    with hub.session(read_only=True) as db:
        contact = _contact_or_404(db, contact_id)
        if contact.merged_into is not None:
            return redirect(request, f"/contacts/{survivor(db, contact).id}", status=307)
        data = card_data(db, contact_id=contact_id, extensions=hub.extensions.values(), locale=agent.locale)
        timeline = _timeline_values(request, agent, db, contact_id=contact_id, filters=filters, cursor=None,
                                    previous_day=None)
        channels_present, kinds_present = timeline_view.facets(db, contact_id=contact_id, installed=list(hub.channels))
        merges = merges_of(db, contact_id=contact_id)
        just_merged = next((m for m in merges if m.id == merged and m.undone_at is None), None)
        merged_names = display_names(db, Contact, {m.merged_id for m in merges} | {m.survivor_id for m in merges})
    with hub.session() as db:
        recent.remember(db, user_id=agent.id, contact_id=contact_id)
        db.commit()
    return render(
        request, agent, "contact.html", contact=contact, data=data, card=data.card,
        channels_present=channels_present, kinds_present=kinds_present, merges=merges, just_merged=just_merged,
        undone=undone, merged_names=merged_names, compose=_compose_slots(request), **timeline,
        panels=[panel for _name, ext in sorted(hub.extensions.items())
                for panel in (ext.contact_panels() if hasattr(ext, "contact_panels") else []) if agent.allows(panel.scope)],
    )


# The compose panels a channel issue fills in: a slot is enabled once its channel is installed and
# configured, and its form is the template ui/compose/<channel>.html that the channel ships.
COMPOSE_SLOTS = (("email", N_("Email"), "email"), ("sms", N_("SMS"), "sms"), ("phone", N_("Log call"), "phone"),
                 ("meetings", N_("Book meeting"), "calendar"))


def _compose_slots(request: Request) -> list[dict]:
    hub = get_hub(request)
    from hub.web.pages import ENV

    slots = []
    declared = [(name, channel.compose_label, channel.compose_icon) for name, channel in sorted(hub.channels.items())
                if isinstance(channel, ComposeSlot) and name not in {n for n, _l, _i in COMPOSE_SLOTS}]
    for name, label, icon in (*COMPOSE_SLOTS, *declared):
        channel = hub.channels.get(name)
        template = f"compose/{name}.html"
        ready = channel is not None and channel.panel_ready and template in ENV.list_templates()
        slots.append({"name": name, "label": label, "icon": icon, "enabled": ready, "template": template})
    return slots


@router.get("/contacts/{contact_id}/timeline")
def timeline_fragment(request: Request, contact_id: int, agent: Reader, channel: ChannelFilter = [],  # noqa: B006
                      kind: KindFilter = [], q: Annotated[str | None, Query(max_length=200)] = None,  # noqa: B006
                      cursor: str | None = None, day: str | None = None) -> Response:
    hub = get_hub(request)
    filters = timeline_view.parse_filters(channel, kind, q)
    try:
        previous_day = date.fromisoformat(day) if day else None
    except ValueError:
        previous_day = None
    with hub.session(read_only=True) as db:
        contact = _contact_or_404(db, contact_id)
        values = _timeline_values(request, agent, db, contact_id=contact.id, filters=filters,  # type: ignore[arg-type]
                                  cursor=cursor, previous_day=previous_day)
    template = "_timeline_items.html" if cursor else "_timeline.html"
    response = render(request, agent, template, contact=contact, **values)
    if request.headers.get("hx-trigger") == "timeline-filters":
        # The filter lives in the contact page's address, so a filtered view can be shared and bookmarked.
        query = urlencode([*(("channel", c) for c in sorted(filters.channels)),
                           *(("kind", k) for k in sorted(filters.kinds)),
                           *((("q", filters.text),) if filters.text else ())])
        response.headers["HX-Push-Url"] = f"/contacts/{contact_id}" + (f"?{query}" if query else "")
    return response


def _matches(event: TimelineEvent, filters: TimelineFilter) -> bool:
    if filters.channels and event.channel not in filters.channels:
        return False
    if filters.kinds and event.kind not in filters.kinds:
        return False
    if filters.text:
        needle = fold(filters.text)
        return needle in fold(event.subject) or needle in fold(event.text)
    return True


def _event_of(db: Session, contact_id: int, event_id: int) -> TimelineEvent:
    event = db.get(TimelineEvent, event_id)
    if event is None or event.contact_id != contact_id:
        raise PageError(404, N_("There is no such event on this timeline."))
    return event


@router.get("/contacts/{contact_id}/events/{event_id}")
def event_fragment(request: Request, contact_id: int, event_id: int, agent: Reader,
                   channel: ChannelFilter = [], kind: KindFilter = [],  # noqa: B006
                   q: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """One event, for a live update to insert at the top of an open timeline (204 when filtered out)."""
    hub = get_hub(request)
    filters = timeline_view.parse_filters(channel, kind, q)
    with hub.session(read_only=True) as db:
        event = _event_of(db, contact_id, event_id)
        if not _matches(event, filters):
            return Response(status_code=204)
        item = timeline_view.views(db, [event], contact_id=contact_id, fmt=agent.fmt, channels=hub.channels)[0]
    return render(request, agent, "_event_live.html", item=item, contact_id=contact_id, live=True)


@router.get("/contacts/{contact_id}/events/{event_id}/message")
def message_fragment(request: Request, contact_id: int, event_id: int, agent: Reader) -> Response:
    """An email's formatted body in a sandboxed frame that can neither run script nor fetch anything."""
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        event = _event_of(db, contact_id, event_id)
    if not event.html:
        raise PageError(404, N_("This event has no formatted message."))
    return render(request, agent, "_message_frame.html", event=event, document=email_document(event.html))


@router.get("/contacts/{contact_id}/thread")
def thread_fragment(request: Request, contact_id: int, agent: Reader,
                    key: Annotated[str, Query(min_length=1, max_length=300)]) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        contact = _contact_or_404(db, contact_id)
        events = timeline_view.thread(db, contact_id=contact_id, key=key)
        items = timeline_view.views(db, events, contact_id=contact_id, fmt=agent.fmt, channels=hub.channels)
    return render(request, agent, "_thread.html", contact=contact, items=items, key=key)


@router.get("/contacts/{contact_id}/card")
def card_fragment(request: Request, contact_id: int, agent: Reader) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        contact = _contact_or_404(db, contact_id)
        data = card_data(db, contact_id=contact.id, extensions=hub.extensions.values(),  # type: ignore[arg-type]
                         locale=agent.locale)
    return render(request, agent, "_card.html", contact=contact, data=data, card=data.card)
