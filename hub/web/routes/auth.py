"""Signing in and out, and the account page: language, time zone, password."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from hub import audit
from hub.auth import MIN_PASSWORD_LENGTH, authenticate, change_password, user_principal, verify_password
from hub.contacts import InvalidField, clean_time_zone
from hub.identities import InvalidIdentity, normalize_email
from hub.models import User
from hub.web import i18n, ratelimit, sessions
from hub.web.i18n import N_
from hub.web.pages import CurrentAgent, get_hub, locale_for, redirect, render, safe_next

router = APIRouter()


def _login_page(request: Request, *, status: int = 200, error: str | None = None, email: str = "",
                next_url: str = "/", lang: str | None = None, headers: dict[str, str] | None = None) -> Response:
    locale = lang if lang in i18n.LOCALES else locale_for(request, None)
    web_session = sessions.read(request)
    fresh = web_session is None
    if fresh:
        # The sign-in form needs a CSRF token before anyone is signed in.
        web_session = sessions.new_session()
        request.scope["hub_web_session"] = web_session
    response = render(request, None, "login.html", status=status, locale=locale, error=error, email=email,
                      next_url=safe_next(next_url), headers=headers)
    if fresh:
        sessions.write(response, get_hub(request).settings, web_session)  # type: ignore[arg-type]
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/", lang: str | None = None) -> Response:
    hub = get_hub(request)
    with hub.session(read_only=True) as db:
        if sessions.user_of(db, sessions.read(request)) is not None:
            return redirect(request, safe_next(next))
    return _login_page(request, next_url=next, lang=lang)


@router.post("/login")
def login(request: Request, email: Annotated[str, Form(max_length=320)] = "",
          password: Annotated[str, Form(max_length=1024)] = "", next: Annotated[str, Form()] = "/",
          lang: Annotated[str | None, Form()] = None) -> Response:
    hub = get_hub(request)
    try:
        folded = normalize_email(email)
    except InvalidIdentity:
        folded = email.strip().casefold()
    address = request.client.host if request.client else ""
    with hub.session() as db:
        wait = ratelimit.retry_after(db, email=folded, address=address)
        if wait is not None:
            return _rate_limited(request, wait.total_seconds(), email, next, lang)
        user = authenticate(db, email=email, password=password) if email and password else None
        ratelimit.record(db, email=folded, address=address, succeeded=user is not None)
        if user is not None:
            audit.record(db, actor=user_principal(user), action="user.login", entity="user", entity_id=user.id)
        db.commit()
        if user is None:
            return _login_page(request, status=401, error=N_("The email or password is not right."), email=email,
                               next_url=next, lang=lang)
        response = redirect(request, safe_next(next))
        sessions.write(response, hub.settings, sessions.signed_in_session(user))
        return response


def _rate_limited(request: Request, seconds: float, email: str, next_url: str, lang: str | None) -> Response:
    minutes = max(1, math.ceil(seconds / 60))
    locale = lang if lang in i18n.LOCALES else locale_for(request, None)
    translations = i18n.translations(locale)
    message = translations.ngettext(
        "Too many failed sign-ins. Try again in %(n)d minute.",
        "Too many failed sign-ins. Try again in %(n)d minutes.", minutes,
    ) % {"n": minutes}
    return _login_page(request, status=429, error=message, email=email, next_url=next_url, lang=lang,
                       headers={"Retry-After": str(math.ceil(seconds))})


@router.post("/logout")
def logout(request: Request) -> Response:
    response = redirect(request, "/login")
    sessions.clear(response, get_hub(request).settings)
    return response


@router.get("/account")
def account(request: Request, agent: CurrentAgent) -> Response:
    return render(request, agent, "account.html", zones=_common_zones(agent.user.time_zone), message=None,
                  error=None)


@router.post("/account/preferences")
def save_preferences(request: Request, agent: CurrentAgent, locale: Annotated[str, Form()] = "",
                     time_zone: Annotated[str | None, Form()] = None,
                     back: Annotated[str, Form()] = "/account") -> Response:
    hub = get_hub(request)
    if locale not in ("", *i18n.LOCALES):
        return _account_error(request, agent, N_("Choose Russian or English."))
    with hub.session() as db:
        user = db.get(User, agent.id)
        assert user is not None
        before = {"locale": user.locale, "time_zone": user.time_zone}
        user.locale = locale or None
        if time_zone is not None:
            try:
                user.time_zone = clean_time_zone(time_zone)
            except InvalidField:
                return _account_error(request, agent, N_("That is not a time zone the hub knows."))
        changes = audit.diff(before, {"locale": user.locale, "time_zone": user.time_zone})
        if changes:
            audit.record(db, actor=agent.principal, action="user.preferences", entity="user", entity_id=user.id,
                         changes=changes)
        db.commit()
    return redirect(request, safe_next(back))


@router.post("/account/password")
def save_password(request: Request, agent: CurrentAgent, current: Annotated[str, Form(max_length=1024)] = "",
                  new: Annotated[str, Form(max_length=1024)] = "",
                  confirm: Annotated[str, Form(max_length=1024)] = "") -> Response:
    hub = get_hub(request)
    with hub.session() as db:
        user = db.get(User, agent.id)
        assert user is not None
        if not verify_password(user, current):
            return _account_error(request, agent, N_("The current password is not right."))
        if new != confirm:
            return _account_error(request, agent, N_("The two new passwords differ."))
        if len(new) < MIN_PASSWORD_LENGTH:
            return _account_error(request, agent, N_("A password needs at least 10 characters."))
        change_password(db, user, new)
        audit.record(db, actor=agent.principal, action="user.password", entity="user", entity_id=user.id)
        db.commit()
        # This browser stays signed in; every other session of this user ended with the version bump.
        fresh = sessions.signed_in_session(user)
    response = render(request, agent, "account.html", zones=_common_zones(agent.user.time_zone),
                      message=N_("Password changed. Your other sessions have been signed out."), error=None)
    sessions.write(response, hub.settings, fresh)
    return response


def _account_error(request: Request, agent: CurrentAgent, message: str) -> Response:
    return render(request, agent, "account.html", status=422, zones=_common_zones(agent.user.time_zone),
                  message=None, error=message)


_ZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
    "Asia/Magadan", "Asia/Kamchatka", "Europe/Minsk", "Europe/Kyiv", "Asia/Almaty", "Asia/Tashkent",
    "Europe/London", "Europe/Berlin", "Europe/Istanbul", "Asia/Dubai", "America/New_York", "UTC",
)


def _common_zones(current: str | None) -> list[str]:
    return [current] + list(_ZONES) if current and current not in _ZONES else list(_ZONES)
