"""The inbox's pages: the list (mine, unassigned, my team's, all) with live updates, the contact
page's conversations panel with its actions, the agent's availability and canned responses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from hub import clock
from hub.ingest import ContactNotFound, get_contact
from hub.models import User
from hub.web.i18n import N_
from hub.web import sessions, timeline_view
from hub.web.pages import Agent, PageError, get_hub, is_fragment, redirect, render, require
from inbox import assignment, canned, events, queries, service, sla
from inbox.models import AgentState, Conversation, Presence, Priority, Status, Team

router = APIRouter()
Reader = Annotated[Agent, Depends(require("conversations:read"))]
Writer = Annotated[Agent, Depends(require("conversations:write"))]
STATIC = Path(__file__).parent / "static"
HEARTBEAT_SECONDS = 15.0
NO_CONVERSATION = N_("There is no such conversation.")
VIEW_LABELS = {"mine": N_("Mine"), "unassigned": N_("Unassigned"), "team": N_("My team's"), "all": N_("All")}
STATUS_LABELS = {"open": N_("Open"), "waiting": N_("Waiting on customer"), "snoozed": N_("Snoozed"),
                 "resolved": N_("Resolved")}
PRIORITY_LABELS = {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")}
SLA_LABELS = {"breached": N_("Breached"), "near": N_("Near breach"), "ok": N_("On time"), "none": N_("No target")}
PRESENCE_LABELS = {"online": N_("Online"), "away": N_("Away"), "offline": N_("Offline")}


def _settings(request: Request) -> Any:
    return get_hub(request).extensions["inbox"].settings


def _warn(request: Request) -> float:
    return max((p.warn_minutes_before for p in _settings(request).policies), default=15)


# The icon each channel's badge shows in the list (what its plug-in declares); others show "chat".
CHANNEL_ICONS = timeline_view.CHANNEL_ICONS


def _labels() -> dict[str, Any]:
    return {"view_labels": VIEW_LABELS, "status_labels": STATUS_LABELS, "priority_labels": PRIORITY_LABELS,
            "sla_labels": SLA_LABELS, "presence_labels": PRESENCE_LABELS, "channel_icons": CHANNEL_ICONS}


@router.get("/inbox/inbox.js", include_in_schema=False)
def script() -> Response:
    return FileResponse(STATIC / "inbox.js", media_type="text/javascript", headers={"cache-control": "max-age=300"})


@router.get("/inbox/inbox.css", include_in_schema=False)
def stylesheet() -> Response:
    return FileResponse(STATIC / "inbox.css", media_type="text/css", headers={"cache-control": "max-age=300"})


@router.get("/inbox")
def inbox_page(request: Request, agent: Reader, view: str | None = None, status: str | None = None,
               channel: str | None = None, priority: str | None = None, team: str | None = None,
               sla_state: Annotated[str | None, Query(alias="sla")] = None,
               cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    hub = get_hub(request)
    try:
        filters = queries.parse_filters(view=view, status=status, channel=channel, priority=priority, team=team,
                                        sla=sla_state)
    except ValueError as exc:
        raise PageError(400, str(exc)) from None
    now = clock.now()
    warn = _warn(request)
    with hub.session(read_only=True) as db:
        try:
            page = queries.page(db, filters, user_id=agent.id, now=now, warn_minutes=warn, cursor=cursor)
        except queries.BadCursor:
            raise PageError(400, N_("This link to a page of the list is broken; start from the first page.")) from None
        # The live refresh asks for the list alone: the filters' teams and the agent's presence are
        # read only for the whole page.
        fragment = is_fragment(request) and request.headers.get("hx-target") == "inbox-list"
        teams = [] if fragment else list(db.scalars(select(Team).order_by(Team.id)))
        me = None if fragment else db.get(AgentState, agent.id)
    states = {c.id: sla.state(c, now, warn_minutes=warn) for c in page.items}
    template = "inbox/_list.html" if fragment else "inbox/inbox.html"
    return render(request, agent, template, page=page, filters=filters, teams=teams, states=states,
                  presence=me.presence if me else Presence.OFFLINE.value, channels_installed=sorted(hub.channels),
                  query=filters.query(), **_labels())


@router.get("/inbox/live")
async def live_stream(request: Request, agent: Reader) -> Response:
    """Server-sent events: every conversation change, so the list refreshes without a reload."""
    hub = get_hub(request)
    signed_in = sessions.StreamSignIn(hub.session, agent.session)

    async def frames() -> AsyncIterator[str]:
        messages = hub.broker.subscribe({events.TOPIC})
        pending = asyncio.ensure_future(anext(messages))
        try:
            await asyncio.sleep(0)
            yield "retry: 3000\nevent: ready\ndata: {}\n\n"
            while True:
                done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_SECONDS)
                # A signed-out agent (password changed, session revoked, user disabled) stops
                # receiving the list's changes; the page reloads into the sign-in form.
                if await signed_in.lapsed():
                    yield "event: signed-out\ndata: {}\n\n"
                    return
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                message = pending.result()
                pending = asyncio.ensure_future(anext(messages))
                yield f"event: conversation\ndata: {json.dumps(message, default=str)}\n\n"
        finally:
            pending.cancel()

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/inbox/contacts/{contact_id}/conversations")
def contact_panel(request: Request, contact_id: int, agent: Reader) -> Response:
    hub = get_hub(request)
    now = clock.now()
    with hub.session(read_only=True) as db:
        try:
            contact = get_contact(db, contact_id)
        except ContactNotFound:
            raise PageError(404, N_("There is no such contact.")) from None
        convs = service.for_contact(db, contact.id)  # type: ignore[arg-type]
        people = queries.agents(db)
        names = {u.id: u.display_name for u, _p, _c in people}
    states = {c.id: sla.state(c, now, warn_minutes=_warn(request)) for c in convs}
    return render(request, agent, "inbox/_contact_panel.html", contact=contact, convs=convs, people=people,
                  names=names, states=states, **_labels())


def _back(request: Request, conv: Conversation) -> Response:
    """After an action: the contact panel again (htmx), or back where the agent came from."""
    if is_fragment(request):
        response = Response(status_code=204)
        response.headers["HX-Trigger"] = "card-refresh, inbox-changed"
        return response
    referer = request.headers.get("referer") or ""
    target = "/inbox" if "/inbox" in referer else f"/contacts/{conv.contact_id}"
    return redirect(request, target)


def _act(request: Request, agent: Agent, change: Any) -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        try:
            conv = change(db)
        except service.ConversationNotFound:
            raise PageError(404, NO_CONVERSATION) from None
        except service.ChangeRefused as exc:
            db.rollback()
            raise PageError(exc.status, exc.translated(agent.package_gettext("inbox"))) from None
        db.commit()
    return _back(request, conv)


@router.post("/inbox/conversations/{conv_id}/assign")
def assign(request: Request, conv_id: int, agent: Writer,
           assignee: Annotated[str, Form(max_length=20)] = "") -> Response:
    if assignee not in ("", "me", "none") and not assignee.isdigit():
        raise PageError(422, N_("Choose an agent."))
    target = agent.id if assignee == "me" else None if assignee in ("", "none") else int(assignee)
    return _act(request, agent, lambda db: service.assign(db, conv_id=conv_id, assignee_id=target, actor=agent.principal))


@router.post("/inbox/conversations/{conv_id}/status")
def change_status(request: Request, conv_id: int, agent: Writer, status: Annotated[str, Form(max_length=20)] = "",
                  until: Annotated[str, Form(max_length=40)] = "") -> Response:
    try:
        new = Status(status)
    except ValueError:
        raise PageError(422, N_("Choose a status.")) from None
    when = None
    if new == Status.SNOOZED:
        try:
            when = datetime.fromisoformat(until)
            if when.tzinfo is None:  # a datetime-local field: the agent's own zone
                when = when.replace(tzinfo=agent.fmt.tz)
        except ValueError:
            raise PageError(422, N_("Say until when to snooze.")) from None
    return _act(request, agent, lambda db: service.set_status(db, conv_id=conv_id, status=new, until=when, actor=agent.principal))


@router.post("/inbox/conversations/{conv_id}/priority")
def change_priority(request: Request, conv_id: int, agent: Writer,
                    priority: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        new = Priority(priority)
    except ValueError:
        raise PageError(422, N_("Choose a priority.")) from None
    return _act(request, agent, lambda db: service.set_priority(db, conv_id=conv_id, priority=new, actor=agent.principal))


@router.post("/inbox/presence")
def set_presence(request: Request, agent: Reader, presence: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        value = Presence(presence)
    except ValueError:
        raise PageError(422, N_("Choose online, away or offline.")) from None
    hub = get_hub(request)
    with hub.session() as db:
        assignment.set_presence(db, user_id=agent.id, presence=value)
        from hub import audit

        audit.record(db, actor=agent.principal, action="agent.presence", entity="user", entity_id=agent.id,
                     changes={"presence": value.value})
        db.commit()
    if value == Presence.ONLINE:  # what waited for someone to come online is handed out now
        from inbox.jobs import assign_waiting

        assign_waiting(hub)
    return redirect(request, "/inbox")


@router.get("/inbox/canned")
def canned_search(request: Request, agent: Reader, q: Annotated[str, Query(max_length=100)] = "",
                  contact: int | None = None, conversation: int | None = None) -> Response:
    """The agent's matching responses with their variables filled in for this contact (the picker's JSON)."""
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        who = None
        if contact is not None:
            try:
                who = get_contact(db, contact)
            except ContactNotFound:
                who = None
        me = db.get(User, agent.id)
        rows = canned.visible(db, user_id=agent.id, query=q)
        items = [{"id": r.id, "shortcut": r.shortcut, "title": r.title, "locale": r.locale, "shared": r.owner_id is None,
                  "text": canned.render(r, contact=who, agent=me, conversation_id=conversation,
                                        site=hub.settings.public_base_url)} for r in rows]
    return JSONResponse({"items": items}, headers={"cache-control": "no-store"})


@router.get("/inbox/canned/manage")
def canned_page(request: Request, agent: Reader, error: str | None = None) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        rows = canned.visible(db, user_id=agent.id, limit=500)
    return render(request, agent, "inbox/canned.html", rows=rows, variables=canned.VARIABLES, error=error, values={})


@router.post("/inbox/canned/manage")
def canned_create(request: Request, agent: Writer, shortcut: Annotated[str, Form(max_length=100)] = "",
                  title: Annotated[str, Form(max_length=300)] = "", body: Annotated[str, Form(max_length=20_000)] = "",
                  locale: Annotated[str, Form(max_length=5)] = "ru", shared: Annotated[str, Form(max_length=5)] = "") -> Response:
    hub = get_hub(request)
    values = {"shortcut": shortcut, "title": title, "body": body, "locale": locale, "shared": bool(shared)}
    try:
        data = canned.CannedIn(**values)
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        with hub.session(read_only=True) as db:
            rows = canned.visible(db, user_id=agent.id, limit=500)
        return render(request, agent, "inbox/canned.html", status=422, rows=rows, variables=canned.VARIABLES,
                      error=problem, values=values)
    with hub.session() as db:
        try:
            canned.create(db, data=data, actor=agent.principal)
        except PermissionError:
            raise PageError(403, N_("Only an admin may save a shared response.")) from None
        db.commit()
    return redirect(request, "/inbox/canned/manage")


@router.post("/inbox/canned/{canned_id}/delete")
def canned_delete(request: Request, canned_id: int, agent: Writer) -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        if not canned.delete(db, canned_id=canned_id, actor=agent.principal):
            raise PageError(404, N_("There is no such response of yours."))
        db.commit()
    return redirect(request, "/inbox/canned/manage")


REPORT_DAYS = (7, 30, 90)
GROUP_LABELS = {"agent": N_("Agent"), "team": N_("Team"), "channel": N_("Channel")}
BACKLOG_TITLE = N_("Unresolved conversations at the end of each day")


def _report(request: Request, agent: Agent, group: str, days: int) -> Any:
    from datetime import timedelta

    from inbox import reports

    if group not in reports.GROUPS or days not in REPORT_DAYS:
        raise PageError(400, N_("Choose a grouping (agent, team or channel) and a period of 7, 30 or 90 days."))
    until = clock.now()
    with get_hub(request).session(read_only=True) as db:
        return reports.build(db, group=group, since=until - timedelta(days=days), until=until, zone=agent.fmt.tz)


@router.get("/inbox/reports")
def reports_page(request: Request, agent: Reader, group: str = "agent", days: int = 30) -> Response:
    from inbox import reports

    report = _report(request, agent, group, days)
    _ = agent.package_gettext("inbox")
    return render(request, agent, "inbox/reports.html", report=report, group=group, days=days, periods=REPORT_DAYS,
                  group_labels=GROUP_LABELS, chart=reports.backlog_svg(report.backlog, title=_(BACKLOG_TITLE)))


@router.get("/inbox/reports.csv")
def reports_csv(request: Request, agent: Reader, group: str = "agent", days: int = 30) -> Response:
    from inbox import reports

    report = _report(request, agent, group, days)
    return Response("\ufeff" + reports.to_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="inbox-{group}-{days}d.csv"',
                             "cache-control": "no-store"})


Admin = Annotated[Agent, Depends(require("admin"))]
DAY_LABELS = {"mon": N_("Monday"), "tue": N_("Tuesday"), "wed": N_("Wednesday"), "thu": N_("Thursday"),
              "fri": N_("Friday"), "sat": N_("Saturday"), "sun": N_("Sunday")}


def _teams_page(request: Request, agent: Agent, *, status: int = 200, error: str | None = None,
                values: dict[str, Any] | None = None) -> Response:
    from hub.web.card import active_users
    from inbox import teams as team_service

    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        rows = list(db.scalars(select(Team).order_by(Team.id)))
        members = team_service.members(db)
        users = active_users(db)
    return render(request, agent, "inbox/teams.html", status=status, teams=rows, members=members, users=users,
                  names={u.id: u.display_name for u in users}, hours_text=team_service.hours_text, error=error,
                  values=values or {}, day_labels=DAY_LABELS, channels_installed=sorted(hub.channels))


@router.get("/inbox/teams")
def teams_page(request: Request, agent: Admin) -> Response:
    return _teams_page(request, agent)


@router.post("/inbox/teams")
async def teams_save(request: Request, agent: Admin) -> Response:
    from inbox import teams as team_service

    form = await request.form()
    raw_id = str(form.get("team_id") or "")
    try:
        data = team_service.TeamIn(
            name=str(form.get("name") or "").strip(), time_zone=str(form.get("time_zone") or "").strip(),
            hours={d: str(form.get(f"hours_{d}") or "") for d in DAY_LABELS},
            holidays=str(form.get("holidays") or ""), channels=[str(c) for c in form.getlist("channels")],
            lead_id=int(str(form.get("lead_id"))) if str(form.get("lead_id") or "").isdigit() else None,
            member_ids=[int(str(m)) for m in form.getlist("member_ids") if str(m).isdigit()])
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _teams_page(request, agent, status=422, error=problem, values=dict(form))
    hub = get_hub(request)
    with hub.session() as db:
        try:
            team_service.save(db, data=data, actor=agent.principal, team_id=int(raw_id) if raw_id.isdigit() else None)
        except team_service.TeamRefused as exc:
            db.rollback()
            return _teams_page(request, agent, status=422, error=str(exc), values=dict(form))
        db.commit()
    return redirect(request, "/inbox/teams")
