"""Cross-site request forgery protection for everything a browser session can change.

Two independent checks on every unsafe request (POST, PUT, PATCH, DELETE) made with the session
cookie: the request must come from a page of this hub (Origin, or Referer when a browser sends no
Origin), and it must carry the session's token — as the `csrf_token` form field or the
`X-CSRF-Token` header (htmx sends it from `hx-headers` on <body>). SameSite=Lax already keeps the
cookie off most cross-site posts; these checks cover same-site attackers (another port or a sibling
subdomain) and browsers that ignore SameSite.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from sqlalchemy.orm import Session
from starlette.requests import Request

from hub.auth import Principal, user_principal
from hub.web import sessions

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
HEADER = "x-csrf-token"
FIELD = "csrf_token"


class CsrfRejected(Exception):
    """An unsafe request without proof that one of this hub's pages sent it (answered 403)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def trusted_origins(request: Request) -> set[str]:
    """This hub's public origin and the origin the request was addressed to."""
    settings = request.app.state.hub.settings
    origins = {_origin_of(settings.public_base_url)}
    host = request.headers.get("host")
    if host:
        origins.add(f"{request.url.scheme}://{host}".lower())
    return {o for o in origins if o}


def check_origin(request: Request) -> None:
    """Refuse a request whose Origin (or Referer) is another site, or that names neither."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        source = origin.lower().rstrip("/")
    else:
        referer = request.headers.get("referer")
        source = _origin_of(referer) if referer else None
    if source is None:
        raise CsrfRejected("the request names no Origin or Referer, so it cannot be shown to come from this hub")
    if source not in trusted_origins(request):
        raise CsrfRejected(f"the request came from {source}, not from a page of this hub")


def check_token(session: sessions.WebSession | None, given: str | None) -> None:
    if session is None:
        raise CsrfRejected("there is no session; reload the page and try again")
    if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise CsrfRejected("the form's security token is missing or stale; reload the page and try again")


async def protect(request: Request) -> None:
    """Router dependency for the web pages: both checks on every unsafe request."""
    if request.method in SAFE_METHODS:
        return
    check_origin(request)
    given = request.headers.get(HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette caches it, so the route's Form() fields still parse
            value = form.get(FIELD)
            given = value if isinstance(value, str) else None
    check_token(sessions.read(request), given)


def cookie_principal(request: Request, db: Session) -> Principal | None:
    """The hook hub.api.deps consults: the signed-in user behind a session cookie, CSRF-checked.

    API calls made with the cookie (from the hub's own pages) must send the token in X-CSRF-Token.
    """
    session = sessions.read(request)
    user = sessions.user_of(db, session)
    if user is None:
        return None
    if request.method not in SAFE_METHODS:
        from hub.api.problems import Problem

        try:
            check_origin(request)
            check_token(session, request.headers.get(HEADER))
        except CsrfRejected as exc:
            raise Problem(403, f"Cross-site request refused: {exc.reason}.", slug="csrf") from None
    return user_principal(user)
