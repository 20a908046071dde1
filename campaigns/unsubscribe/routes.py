"""Public unsubscribe routes: `POST /u/{token}` (RFC 8058 one-click, and the confirmation page's
button), `GET /u/{token}` (a confirmation page only: link scanners that follow every URL unsubscribe
no one), and `GET|POST /preferences/{token}`.

No cookies, no login, no CSRF token: the signed token is the only key (hub.signing), and it carries
ids only. A forged, truncated or stale token (a contact erased since) gets one plain page, 404, that
says nothing about anyone.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from campaigns.unsubscribe import service
from campaigns.unsubscribe.links import (
    UnsubscribeLink,
    preferences_url,
    read_preferences,
    read_unsubscribe,
)
from hub.runtime import Hub
from hub.signing import BadLink
from hub.web import i18n
from hub.web.public import public_locale, render_public

log = logging.getLogger("campaigns.unsubscribe")
router = APIRouter(include_in_schema=False)

MAX_BODY = 64 * 1024


def _hub(request: Request) -> Hub:
    return request.app.state.hub


def channel_label(hub: Hub, name: str, locale: str, *, in_sentence: bool = True) -> str:
    """The channel as the channel names itself: inside "our mailings by …", or as a switch's label."""
    channel = hub.channels.get(name)
    label = (getattr(channel, "mailing_label", "") if in_sentence else "") or getattr(channel, "label", "") or name
    return i18n.package_translations(locale, "unsubscribe").gettext(label)


def _invalid(request: Request) -> HTMLResponse:
    return render_public(request, "public/unsubscribe/invalid.html", locale=public_locale(request), status=404)


def _path(request: Request, path: str) -> str:
    asked = request.query_params.get("lang")
    return path + (f"?lang={asked}" if asked in i18n.LOCALES else "")


def _relative(url: str, base: str) -> str:
    return url.removeprefix(base)


def _contact_view(hub: Hub, contact_id: int, channel: str) -> dict[str, Any]:
    """What the confirmation page shows: the contact's language and whether they already withdrew."""
    from hub.contacts import consent_status
    from hub.models import ConsentStatus, Purpose

    with hub.session(read_only=True) as session:
        contact = service._contact(session, contact_id)
        status = consent_status(session, contact_id=contact.id, channel=channel, purpose=Purpose.MARKETING)  # type: ignore[arg-type]
        return {"id": contact.id, "locale": contact.locale, "already": status == ConsentStatus.WITHDRAWN}


def _link(request: Request, token: str) -> UnsubscribeLink:
    return read_unsubscribe(_hub(request).settings, token)


@router.get("/u/{token}", response_class=HTMLResponse)
async def confirm_page(request: Request, token: str) -> HTMLResponse:
    """Shows what the button would do; changes nothing."""
    hub = _hub(request)
    try:
        link = _link(request, token)
        view = await run_in_threadpool(_contact_view, hub, link.contact_id, link.channel)
    except (BadLink, service.UnknownContact):
        return _invalid(request)
    locale = public_locale(request, view["locale"])
    prefs = _relative(preferences_url(hub.settings, contact_id=view["id"]), hub.settings.public_base_url)
    return render_public(request, "public/unsubscribe/confirm.html", locale=locale, already=view["already"],
                         action=_path(request, f"/u/{token}"), channel_label=channel_label(hub, link.channel, locale),
                         preferences_link=_path(request, prefs))


async def _is_one_click(request: Request) -> bool:
    """Whether the body is RFC 8058's `List-Unsubscribe=One-Click` (form-encoded or multipart)."""
    try:
        form = await request.form(max_files=0, max_fields=20)
    except Exception:  # a malformed body is still an unsubscribe request, just not a one-click one
        return False
    return form.get("List-Unsubscribe") == "One-Click"


def _unsubscribe(hub: Hub, link: UnsubscribeLink, source: str) -> dict[str, Any]:
    with hub.session() as session, session.begin():
        done = service.unsubscribe(session, link=link, source=source)
        contact = service._contact(session, done.contact_id)
        return {"id": contact.id, "locale": contact.locale, "already": done.already}


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """Unsubscribes at once: the mail client's one-click POST, or the confirmation page's button."""
    hub = _hub(request)
    try:
        link = _link(request, token)
    except BadLink:
        return _invalid(request)
    source = service.ONE_CLICK_SOURCE if await _is_one_click(request) else service.PAGE_SOURCE
    try:
        view = await run_in_threadpool(_unsubscribe, hub, link, source)
    except service.UnknownContact:
        return _invalid(request)
    locale = public_locale(request, view["locale"])
    prefs = _relative(preferences_url(hub.settings, contact_id=view["id"]), hub.settings.public_base_url)
    return render_public(request, "public/unsubscribe/done.html", locale=locale,
                         channel_label=channel_label(hub, link.channel, locale), preferences_link=_path(request, prefs))


def _preferences_view(hub: Hub, contact_id: int) -> dict[str, Any]:
    with hub.session(read_only=True) as session:
        prefs = service.preferences(hub, session, contact_id=contact_id)
        return {"locale": prefs.contact.locale, "channels": dict(prefs.channels)}


def _render_preferences(request: Request, token: str, view: dict[str, Any], *, saved: bool = False) -> HTMLResponse:
    hub = _hub(request)
    locale = public_locale(request, view["locale"])
    labels = {name: channel_label(hub, name, locale, in_sentence=False) for name in view["channels"]}
    return render_public(request, "public/unsubscribe/preferences.html", locale=locale, channels=view["channels"],
                         labels=labels, contact_locale=view["locale"] or hub.settings.default_locale, saved=saved,
                         action=_path(request, f"/preferences/{token}"))


@router.get("/preferences/{token}", response_class=HTMLResponse)
async def preferences_page(request: Request, token: str) -> HTMLResponse:
    hub = _hub(request)
    try:
        contact_id = read_preferences(hub.settings, token)
        view = await run_in_threadpool(_preferences_view, hub, contact_id)
    except (BadLink, service.UnknownContact):
        return _invalid(request)
    return _render_preferences(request, token, view)


def _save(hub: Hub, contact_id: int, marketing: dict[str, bool], locale: str | None) -> dict[str, Any]:
    with hub.session() as session, session.begin():
        service.save_preferences(hub, session, contact_id=contact_id, marketing=marketing, locale=locale)
    return _preferences_view(hub, contact_id)


@router.post("/preferences/{token}", response_class=HTMLResponse)
async def save_preferences(request: Request, token: str) -> HTMLResponse:
    hub = _hub(request)
    try:
        contact_id = read_preferences(hub.settings, token)
    except BadLink:
        return _invalid(request)
    try:
        form = await request.form(max_files=0, max_fields=50)
    except Exception:
        return render_public(request, "public/unsubscribe/invalid.html", locale=public_locale(request), status=400)
    chosen = {str(v) for v in form.getlist("marketing")}
    asked_locale = form.get("locale")
    locale = asked_locale if asked_locale in i18n.LOCALES else None
    try:
        view = await run_in_threadpool(_save, hub, contact_id, {c: True for c in chosen}, locale)
    except service.UnknownContact:
        return _invalid(request)
    # The page switches to the language just chosen (unless ?lang= asks otherwise).
    return _render_preferences(request, token, view, saved=True)
