"""Workspace pages of outbound webhooks (admins): endpoints, their delivery log, replays, tests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import func, select
from starlette.responses import Response

from hub.web import confirm
from hub.web.i18n import N_, TranslatableError
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require
from webhooks import service
from webhooks.api import _delivery_rows, delivery_public
from webhooks.models import EndpointStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.signing import mask

router = APIRouter(prefix="/admin/webhooks")
Admin = Annotated[Agent, Depends(require("admin"))]
PKG = "webhooks"
NO_ENDPOINT = N_("There is no such webhook endpoint.")
STATUS_LABELS = {"active": N_("Active"), "paused": N_("Paused"), "disabled": N_("Disabled by the hub"),
                 "queued": N_("Waiting"), "sending": N_("Sending"), "delivered": N_("Delivered"),
                 "failed": N_("Gave up"), "cancelled": N_("Cancelled")}
STATUS_TONES = {"active": "ok", "delivered": "ok", "paused": "neutral", "cancelled": "neutral", "queued": "info",
                "sending": "info", "disabled": "bad", "failed": "bad"}


def _endpoint(db: Any, endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    try:
        return service.get_endpoint(db, endpoint_id, lock=lock)
    except service.EndpointNotFound:
        raise PageError(404, NO_ENDPOINT) from None


def _list_page(request: Request, agent: Agent, *, status: int = 200, error: str | None = None,
               values: dict[str, Any] | None = None, created: tuple[int, str] | None = None) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        endpoints = list(db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))
        D = WebhookDelivery
        counts = {(r.endpoint_id, r.status): r.n for r in db.execute(
            select(D.endpoint_id, D.status, func.count().label("n")).group_by(D.endpoint_id, D.status))}
    return render(request, agent, "webhooks/list.html", status=status, endpoints=endpoints, counts=counts,
                  types=hub.notices.latest(), error=error, values=values or {}, created=created, mask=mask,
                  status_labels=STATUS_LABELS, status_tones=STATUS_TONES,
                  disabled=[e for e in endpoints if e.status == EndpointStatus.DISABLED])


@router.get("")
def endpoints(request: Request, agent: Admin) -> Response:
    return _list_page(request, agent)


@router.post("")
def add(request: Request, agent: Admin, url: Annotated[str, Form(max_length=2000)] = "",
        description: Annotated[str, Form(max_length=500)] = "",
        event_types: Annotated[list[str] | None, Form()] = None, ordered: Annotated[str, Form()] = "") -> Response:
    hub = get_hub(request)
    values = {"url": url, "description": description, "event_types": event_types or [], "ordered": bool(ordered)}
    with hub.session() as db:
        try:
            endpoint, secret = service.create_endpoint(db, hub=hub, actor=agent.principal, url=url,
                                                       event_types=event_types or [], description=description,
                                                       ordered=bool(ordered))
        except TranslatableError as exc:
            return _list_page(request, agent, status=422, error=exc.translated(agent.package_gettext(PKG)), values=values)
        db.commit()
        endpoint_id = endpoint.id
    # The secret is shown once, in this answer; the page afterwards shows only its last characters.
    return _list_page(request, agent, status=201, created=(endpoint_id, secret))


def _detail(request: Request, agent: Agent, endpoint_id: int, *, status: int = 200, error: str | None = None,
            secret: str | None = None, notice: str | None = None) -> Response:
    hub = get_hub(request)
    only = request.query_params.get("status") or None
    if only not in (None, *STATUS_LABELS):
        only = None
    with hub.session(read_only=True) as db:
        endpoint = _endpoint(db, endpoint_id)
        rows = [delivery_public(r) for r in _delivery_rows(db, endpoint_id, status=only, before=None, limit=100)]
    return render(request, agent, "webhooks/detail.html", status=status, endpoint=endpoint, deliveries=rows,
                  types=hub.notices.latest(), error=error, secret=secret, notice=notice, mask=mask, only=only,
                  status_labels=STATUS_LABELS, status_tones=STATUS_TONES)


@router.get("/{endpoint_id}")
def detail(request: Request, endpoint_id: int, agent: Admin) -> Response:
    return _detail(request, agent, endpoint_id)


@router.post("/{endpoint_id}")
def edit(request: Request, endpoint_id: int, agent: Admin, url: Annotated[str, Form(max_length=2000)] = "",
         description: Annotated[str, Form(max_length=500)] = "",
         event_types: Annotated[list[str] | None, Form()] = None, ordered: Annotated[str, Form()] = "") -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        endpoint = _endpoint(db, endpoint_id, lock=True)
        try:
            service.update_endpoint(db, hub=hub, actor=agent.principal, endpoint=endpoint, url=url,
                                    event_types=event_types or [], description=description, ordered=bool(ordered))
        except TranslatableError as exc:
            db.rollback()
            return _detail(request, agent, endpoint_id, status=422, error=exc.translated(agent.package_gettext(PKG)))
        db.commit()
    return redirect(request, f"/admin/webhooks/{endpoint_id}")


@router.post("/{endpoint_id}/pause")
def pause(request: Request, endpoint_id: int, agent: Admin) -> Response:
    return _set(request, agent, endpoint_id, EndpointStatus.PAUSED)


@router.post("/{endpoint_id}/resume")
def resume(request: Request, endpoint_id: int, agent: Admin) -> Response:
    return _set(request, agent, endpoint_id, EndpointStatus.ACTIVE)


def _set(request: Request, agent: Agent, endpoint_id: int, status: EndpointStatus) -> Response:
    with get_hub(request).session() as db:
        service.set_status(db, actor=agent.principal, endpoint=_endpoint(db, endpoint_id, lock=True), status=status)
        db.commit()
    return redirect(request, f"/admin/webhooks/{endpoint_id}")


@router.post("/{endpoint_id}/rotate")
async def rotate(request: Request, endpoint_id: int, agent: Admin) -> Response:
    hub = get_hub(request)
    if not confirm.confirmed(await request.form()):
        with hub.session(read_only=True) as db:
            url = _endpoint(db, endpoint_id).url
        hours = hub.extensions["webhooks"].settings.rotation_overlap_hours
        return confirm.ask(request, agent, action=f"/admin/webhooks/{endpoint_id}/rotate", title=N_("Rotate the secret"),
                           question=N_("Make a new signing secret for %(url)s?"),
                           detail=N_("Both secrets sign every message for %(hours)s hours; switch the receiver to "
                                     "the new one within that time. The new secret is shown once."),
                           button=N_("Rotate"), back=f"/admin/webhooks/{endpoint_id}", package=PKG,
                           params={"url": url, "hours": f"{hours:g}"})
    with hub.session() as db:
        secret = service.rotate_secret(db, hub=hub, actor=agent.principal, endpoint=_endpoint(db, endpoint_id, lock=True))
        db.commit()
    return _detail(request, agent, endpoint_id, secret=secret)


@router.post("/{endpoint_id}/test")
def test(request: Request, endpoint_id: int, agent: Admin) -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        service.send_test(db, hub=hub, actor=agent.principal, endpoint=_endpoint(db, endpoint_id))
        db.commit()
    return _detail(request, agent, endpoint_id, status=202,
                   notice=agent.package_gettext(PKG)(N_("A test event is on its way; it appears in the log below.")))


@router.post("/{endpoint_id}/delete")
async def delete(request: Request, endpoint_id: int, agent: Admin) -> Response:
    hub = get_hub(request)
    if not confirm.confirmed(await request.form()):
        with hub.session(read_only=True) as db:
            url = _endpoint(db, endpoint_id).url
        return confirm.ask(request, agent, action=f"/admin/webhooks/{endpoint_id}/delete", title=N_("Delete the endpoint"),
                           question=N_("Delete the webhook endpoint %(url)s?"),
                           detail=N_("Nothing more is sent to it, and its delivery log is deleted. This cannot be undone."),
                           button=N_("Delete"), back=f"/admin/webhooks/{endpoint_id}", package=PKG, params={"url": url})
    with hub.session() as db:
        service.delete_endpoint(db, actor=agent.principal, endpoint=_endpoint(db, endpoint_id, lock=True))
        db.commit()
    return redirect(request, "/admin/webhooks")


@router.post("/{endpoint_id}/replay")
def replay_since(request: Request, endpoint_id: int, agent: Admin, since: Annotated[str, Form(max_length=40)] = "") -> Response:
    hub = get_hub(request)
    _ = agent.package_gettext(PKG)
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        return _detail(request, agent, endpoint_id, status=422, error=_(N_("Give the date and time to replay from.")))
    if moment.tzinfo is None:  # a datetime-local field: the agent's own zone
        moment = moment.replace(tzinfo=agent.fmt.tz)
    with hub.session() as db:
        count = service.replay_since(db, hub=hub, actor=agent.principal, endpoint=_endpoint(db, endpoint_id), since=moment)
        db.commit()
    return _detail(request, agent, endpoint_id, status=202,
                   notice=_(N_("Queued to be sent again: %(count)s.")) % {"count": count})


@router.post("/{endpoint_id}/deliveries/{delivery_id}/replay")
def replay_one(request: Request, endpoint_id: int, delivery_id: int, agent: Admin) -> Response:
    hub = get_hub(request)
    _ = agent.package_gettext(PKG)
    with hub.session() as db:
        try:
            done = service.replay_delivery(db, hub=hub, actor=agent.principal, endpoint=_endpoint(db, endpoint_id),
                                           delivery_id=delivery_id)
        except LookupError:
            raise PageError(404, N_("There is no such delivery.")) from None
        db.commit()
    if not done:
        return _detail(request, agent, endpoint_id, status=409, error=_(N_("It is being sent right now; try again in a moment.")))
    return redirect(request, f"/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}")


@router.get("/{endpoint_id}/deliveries/{delivery_id}")
def delivery(request: Request, endpoint_id: int, delivery_id: int, agent: Admin) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        endpoint = _endpoint(db, endpoint_id)
        rows = [r for r in _delivery_rows(db, endpoint_id, status=None, before=delivery_id + 1, limit=1) if r.id == delivery_id]
        if not rows:
            raise PageError(404, N_("There is no such delivery."))
        attempts = list(db.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                                   .order_by(WebhookAttempt.id.desc()).limit(100)))
    return render(request, agent, "webhooks/delivery.html", endpoint=endpoint, d=delivery_public(rows[0]),
                  payload=rows[0].payload, attempts=attempts, status_labels=STATUS_LABELS, status_tones=STATUS_TONES)
