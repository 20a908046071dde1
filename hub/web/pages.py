"""What every page shares: the signed-in agent, the Jinja2 environment, rendering, and page errors."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from gettext import GNUTranslations
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response

from hub import __version__, clock
from hub.auth import Principal, user_principal
from hub.models import User
from hub.runtime import Hub
from hub.settings import HUB_TEMPLATES
from hub.web import i18n, sessions, timeline_view
from hub.web.card import display_phone, stage_label
from hub.web.i18n import N_

TEMPLATES_DIR = HUB_TEMPLATES / "ui"


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    scope: str
    icon: str


# The left navigation; each entry shows only to roles holding its scope. Channels and extensions
# add theirs through their `nav()` (nav_items).
NAV: list[NavItem] = [
    NavItem(N_("Contacts"), "/", "contacts:read", "contacts"),
    NavItem(N_("Accounts"), "/accounts", "contacts:read", "building"),
    NavItem(N_("My tasks"), "/tasks", "tasks:read", "tasks"),
    NavItem(N_("Users"), "/admin/users", "admin", "users"),
    NavItem(N_("API keys"), "/admin/api-keys", "admin", "key"),
    NavItem(N_("Channels"), "/admin/channels", "admin", "channels"),
    NavItem(N_("Personal data"), "/admin/privacy", "admin", "lock"),
    NavItem(N_("Audit log"), "/admin/audit", "admin", "clock"),
]


def nav_items(hub: Hub) -> list[NavItem]:
    """The hub's own pages, then the channels' and extensions' (before the admin pages)."""
    extra = [NavItem(e.label, e.path, e.scope, e.icon)
             for source in [*sorted(hub.channels.items()), *sorted(hub.extensions.items())]
             for e in (source[1].nav() if hasattr(source[1], "nav") else [])]
    first_admin = next((i for i, item in enumerate(NAV) if item.scope == "admin"), len(NAV))
    demo = [NavItem(N_("Test mailbox"), "/admin/test-mailbox", "admin", "email")] if hub.settings.demo.active else []
    return [*NAV[:first_admin], *extra, *NAV[first_admin:], *demo]


class LoginRequired(Exception):
    """No signed-in user: pages redirect to the sign-in form, fragments ask the browser to."""


class PageError(Exception):
    """A page-level error answered with an HTML page (or fragment) in the agent's language."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Agent:
    """The signed-in person a page is rendered for."""

    user: User
    principal: Principal
    session: sessions.WebSession
    locale: str
    fmt: i18n.Formatter
    translations: GNUTranslations

    @property
    def id(self) -> int:
        return self.user.id  # type: ignore[return-value]

    def allows(self, scope: str) -> bool:
        return self.principal.allows(scope)

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def package_gettext(self, package: str) -> Callable[[str], str]:
        """gettext in the agent's language reading `package`'s catalog first (i18n.package_translations)."""
        return i18n.package_translations(self.locale, package).gettext


def get_hub(request: Request) -> Hub:
    return request.app.state.hub


def locale_for(request: Request, user: User | None) -> str:
    settings = get_hub(request).settings
    return i18n.negotiate(user.locale if user else None, request.headers.get("accept-language"),
                          settings.default_locale)


def current_agent(request: Request) -> Agent:
    """The signed-in user, or LoginRequired; loaded in a short read of its own."""
    hub = get_hub(request)
    web_session = sessions.read(request)
    if web_session is None or not web_session.signed_in:
        raise LoginRequired
    with hub.session(read_only=True) as db:
        user = sessions.user_of(db, web_session)
        if user is None:
            raise LoginRequired
        db.expunge(user)
    locale = locale_for(request, user)
    fmt = i18n.Formatter(locale, i18n.zone(user.time_zone, hub.settings.default_timezone))
    return Agent(user=user, principal=user_principal(user), session=web_session, locale=locale, fmt=fmt,
                 translations=i18n.translations(locale))


CurrentAgent = Annotated[Agent, Depends(current_agent)]


def require(scope: str) -> Callable[[Agent], Agent]:
    """A dependency admitting agents whose role holds `scope` (a 403 page otherwise)."""

    def check(agent: CurrentAgent) -> Agent:
        if not agent.allows(scope):
            raise PageError(403, N_("Your role does not allow this page."))
        return agent

    check.__name__ = f"page_require_{scope.replace(':', '_')}"
    return check


class _Templates(FileSystemLoader):
    """The root's templates, then each installed plug-in's own templates/ folder (a plug-in shipped
    as a wheel carries its templates): found on first use, since plug-ins import this module."""

    def __init__(self) -> None:
        super().__init__([str(TEMPLATES_DIR), str(TEMPLATES_DIR.parent)])
        self._complete = False

    def _with_plugins(self) -> None:
        if self._complete:
            return
        from hub.plugin import plugin_folders

        for folder in plugin_folders():
            if (folder / "templates").is_dir():
                self.searchpath += [str(folder / "templates" / "ui"), str(folder / "templates")]
        self._complete = True

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        self._with_plugins()
        return super().get_source(environment, template)

    def list_templates(self) -> list[str]:
        self._with_plugins()
        return super().list_templates()


def _environment() -> Environment:
    env = Environment(
        # "compose/email.html" for the workspace; "public/…" and "messages/…" by their folder.
        loader=_Templates(),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # create_app turns it on with settings.templates_reload
    )
    env.globals["version"] = __version__
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    env.filters["phone"] = display_phone
    # A form's own id for what it submits, so a double click or a retry posts it once.
    env.globals["new_client_id"] = lambda: uuid.uuid4().hex
    return env


ENV = _environment()


def is_fragment(request: Request) -> bool:
    """An htmx request that wants a part of a page, not a whole page."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


_MEDIA_RANGE = re.compile(r"^\s*([\w.+*-]+/[\w.+*-]+)\s*(?:;(.*))?$")
_JSON_TYPES = ("application/json", "application/problem+json")


def wants_page(request: Request) -> bool:
    """A person's browser asking for a page: htmx, or an Accept that ranks text/html at least as high
    as JSON. API clients (`*/*`, JSON) and everything under /api/ keep problem details."""
    if request.url.path.startswith("/api/"):
        return False
    if request.headers.get("hx-request") == "true":
        return True
    html = json = 0.0
    for part in request.headers.get("accept", "").split(",")[:30]:
        match = _MEDIA_RANGE.match(part)
        if not match:
            continue
        quality = 1.0
        for param in (match.group(2) or "").split(";"):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = match.group(1).lower()
        if media in ("text/html", "application/xhtml+xml"):
            html = max(html, quality)
        elif media in _JSON_TYPES:
            json = max(json, quality)
    return html > 0 and html >= json


def context(request: Request, agent: Agent | None, locale: str | None = None) -> dict[str, Any]:
    """What every template can use: the agent, translation and formatting helpers, the CSRF token."""
    hub = get_hub(request)
    if agent is not None:
        translations, fmt, loc = agent.translations, agent.fmt, agent.locale
    else:
        loc = locale or locale_for(request, None)
        translations = i18n.translations(loc)
        fmt = i18n.Formatter(loc, i18n.zone(None, hub.settings.default_timezone))
    web_session = sessions.read(request)
    nav = [item for item in nav_items(hub) if agent is not None and agent.allows(item.scope)]
    return {
        "request": request,
        "agent": agent,
        "_": translations.gettext,
        "gettext": translations.gettext,
        "ngettext": translations.ngettext,
        "fmt": fmt,
        "locale": loc,
        "now": clock.now(),
        "csrf_token": web_session.csrf if web_session else "",
        "nav": nav,
        "path": request.url.path,
        "languages": i18n.LANGUAGE_NAMES,
        "channels": hub.channels,
        "channel_label": lambda name: timeline_view.channel_label(name, hub.channels),
        "kind_label": timeline_view.kind_label,
        "stage_label": stage_label,
    }


def speaking(ctx: dict[str, Any], template: str) -> dict[str, Any]:
    """`ctx` with the translation functions of `template`'s package (i18n.template_translations)."""
    translations = i18n.template_translations(ctx["locale"], template)
    ctx.update({"_": translations.gettext, "gettext": translations.gettext, "ngettext": translations.ngettext})
    return ctx


def render(request: Request, agent: Agent | None, template: str, *, status: int = 200,
           headers: dict[str, str] | None = None, locale: str | None = None, **values: Any) -> HTMLResponse:
    """A page or fragment as an HTML response; renews the session cookie during long use."""
    ctx = speaking(context(request, agent, locale), template)
    ctx.update(values)
    response = HTMLResponse(ENV.get_template(template).render(ctx), status_code=status, headers=headers)
    response.headers["cache-control"] = "no-store"
    response.headers["vary"] = "Cookie, HX-Request"
    if agent is not None and sessions.needs_renewal(agent.session, time.time()):
        sessions.write(response, get_hub(request).settings, agent.session)
    return response


def redirect(request: Request, url: str, status: int = 303) -> Response:
    """Go to `url`: a normal redirect, or HX-Redirect for an htmx request (which would swap it in)."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return Response(status_code=status, headers={"Location": url})


def safe_next(url: str | None) -> str:
    """A post-sign-in destination on this site only (no //evil.example or scheme)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url
