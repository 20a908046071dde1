"""Signed cookie sessions for people in the browser.

The cookie holds the user's id, the user's `session_version` when they signed in, and the session's
CSRF token, signed with the hub's key (itsdangerous). Nothing is kept server-side per session, so any
API process can read it; `hub.auth.change_password` raises `session_version`, which ends every session
issued before the change. A visitor who has not signed in still gets a session (with no user) so the
sign-in form itself carries a CSRF token.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from hub.models import User
from hub.settings import Settings

COOKIE_NAME = "hub_session"
# A session lives through a long shift without activity; each page view renews it.
MAX_AGE_SECONDS = 12 * 3600
# Renew the cookie at most this often, so a busy page does not set a cookie on every fragment.
RENEW_AFTER_SECONDS = 10 * 60
# An open stream (server-sent events) re-reads its session this often, so a password change, a
# revoked session or a disabled user ends it.
RECHECK_SECONDS = 60.0
_SALT = "hub.web.session"


@dataclass(frozen=True)
class WebSession:
    """What the cookie carries."""

    csrf: str
    user_id: int | None = None
    version: int = 0
    issued_at: int = 0  # seconds since the epoch, from the signature's timestamp

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None


def new_session() -> WebSession:
    """An anonymous session with a fresh CSRF token."""
    return WebSession(csrf=secrets.token_urlsafe(32))


def signed_in_session(user: User) -> WebSession:
    """A new session for a user who just proved who they are (a new token too: no fixation)."""
    return WebSession(csrf=secrets.token_urlsafe(32), user_id=user.id, version=user.session_version)


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_key(), salt=_SALT)


def decode(settings: Settings, cookie: str | None) -> WebSession | None:
    """The session in a cookie value, or None when it is missing, forged or expired."""
    if not cookie:
        return None
    try:
        data, issued = _serializer(settings).loads(cookie, max_age=MAX_AGE_SECONDS, return_timestamp=True)
    except BadSignature:  # SignatureExpired is a BadSignature too
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        return None
    user_id, version = data.get("u"), data.get("v", 0)
    if user_id is not None and (not isinstance(user_id, int) or not isinstance(version, int)):
        return None
    return WebSession(csrf=data["c"], user_id=user_id, version=version, issued_at=int(issued.timestamp()))


def encode(settings: Settings, session: WebSession) -> str:
    payload: dict[str, Any] = {"c": session.csrf}
    if session.user_id is not None:
        payload["u"] = session.user_id
        payload["v"] = session.version
    return _serializer(settings).dumps(payload)


def read(request: Request) -> WebSession | None:
    """The request's session (decoded once per request)."""
    if "hub_web_session" not in request.scope:
        settings = request.app.state.hub.settings
        request.scope["hub_web_session"] = decode(settings, request.cookies.get(COOKIE_NAME))
    return request.scope["hub_web_session"]


def write(response: Response, settings: Settings, session: WebSession) -> None:
    """Set the session cookie: HttpOnly, SameSite=Lax, Secure when the hub is served over https."""
    response.set_cookie(
        COOKIE_NAME,
        encode(settings, session),
        max_age=MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.public_base_url.startswith("https://"),
    )


def clear(response: Response, settings: Settings) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax",
                           secure=settings.public_base_url.startswith("https://"))


def needs_renewal(session: WebSession, now: float) -> bool:
    return now - session.issued_at > RENEW_AFTER_SECONDS


def user_of(db: Session, session: WebSession | None) -> User | None:
    """The active user a session belongs to; None once the password changed or the user was disabled."""
    if session is None or session.user_id is None:
        return None
    user = db.get(User, session.user_id)
    if user is None or not user.is_active or user.session_version != session.version:
        return None
    return user


class StreamSignIn:
    """A long response's periodic re-read of the session it was opened with (user_of, in a thread):
    `lapsed()` is cheap to call on every heartbeat and reads the store at most every RECHECK_SECONDS."""

    def __init__(self, open_session: Callable[..., Any], session: WebSession) -> None:
        self._open, self._session = open_session, session
        self._checked = time.monotonic()

    def _signed_in(self) -> bool:
        with self._open(read_only=True) as db:
            return user_of(db, self._session) is not None

    async def lapsed(self) -> bool:
        """True once the session no longer belongs to an active user (the stream should end)."""
        now = time.monotonic()
        if now - self._checked < RECHECK_SECONDS:
            return False
        self._checked = now
        return not await asyncio.to_thread(self._signed_in)
