"""Pages for customers, not agents: survey, booking, unsubscribe and form pages.

No session and no CSRF token: these pages are reached through signed links (hub.signing) or are
open by nature (a form). They speak the customer's language (`?lang=`, then what the hub knows of
the contact, then the browser's Accept-Language), are built phone-first on templates/public/base.html,
and are never cached, indexed, or leak their tokenised URL through the Referer header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import HTMLResponse

from hub import clock
from hub.runtime import Hub
from hub.web import i18n
from hub.web.pages import ENV, speaking
from hub.web.security import PAGE_CSP

PUBLIC_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",  # the URL carries a token: never hand it to another site
    "x-robots-tag": "noindex, nofollow",
    "content-security-policy": PAGE_CSP,
}


def public_locale(request: Request, preferred: str | None = None) -> str:
    """`?lang=` first (the page's own switcher), then `preferred` (the contact's), then the browser's."""
    hub: Hub = request.app.state.hub
    asked = request.query_params.get("lang")
    if asked in i18n.LOCALES:
        return asked  # type: ignore[return-value]
    return i18n.negotiate(preferred, request.headers.get("accept-language"), hub.settings.default_locale)


def language_links(request: Request) -> dict[str, str]:
    """This page's URL in each language, for the switcher (other query parameters kept)."""
    links = {}
    for locale in i18n.LOCALES:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] + [("lang", locale)]
        links[locale] = f"{request.url.path}?{urlencode(params)}"
    return links


def public_context(request: Request, *, locale: str, time_zone: str | None = None) -> dict[str, Any]:
    hub: Hub = request.app.state.hub
    translations = i18n.translations(locale)
    return {
        "request": request,
        "_": translations.gettext,
        "gettext": translations.gettext,
        "ngettext": translations.ngettext,
        "fmt": i18n.Formatter(locale, i18n.zone(time_zone, hub.settings.default_timezone)),
        "locale": locale,
        "now": clock.now(),
        "languages": i18n.LANGUAGE_NAMES,
        "language_links": language_links(request),
    }


def render_public(request: Request, template: str, *, locale: str, status: int = 200, time_zone: str | None = None,
                  headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:
    """A customer-facing page (templates/public/…) as an HTML response with the public headers."""
    ctx = speaking(public_context(request, locale=locale, time_zone=time_zone), template)
    ctx.update(values)
    response = HTMLResponse(ENV.get_template(template).render(ctx), status_code=status)
    for name, value in {**PUBLIC_HEADERS, **(headers or {})}.items():
        response.headers[name] = value
    response.headers["content-language"] = locale
    return response
