"""The agent workspace: server-rendered pages (Jinja2 + htmx) for agents, marketers and admins.

`install(app)` is the one call the app factory makes: it mounts the pages and their static files,
adds the security headers, and lets the REST API accept the session cookie (CSRF-checked).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from hub.web import csrf, sessions
from hub.web.i18n import N_
from hub.web import models as _models  # noqa: F401  (registers the workspace's tables)
from hub.web.pages import LoginRequired, PageError, current_agent, is_fragment, render
from hub.web.routes import accounts, actions, admin, auth, contacts, live, privacy, tasks
from hub.web.security import SecurityHeaders

if TYPE_CHECKING:
    from hub.runtime import Hub

STATIC_DIR = Path(__file__).resolve().parent / "static"
CSRF_MESSAGE = N_("This request did not come from a page of this hub, or the page is too old. "
                  "Reload the page and try again.")


def build_router(hub: Hub) -> APIRouter:
    """Every page and fragment; unsafe methods pass the CSRF checks before any route runs."""
    router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf.protect)])
    router.include_router(auth.router)
    # Before contacts: /contacts/new must not be read as /contacts/{contact_id}.
    router.include_router(actions.router)
    router.include_router(contacts.router)
    router.include_router(accounts.router)
    for _name, channel in sorted(hub.channels.items()):  # the channels' compose panels
        panel_router = channel.web_router()
        if panel_router is not None:
            router.include_router(panel_router)
    for _name, extension in sorted(hub.extensions.items()):  # marketers' pages: campaigns, surveys
        ext_router = extension.web_router()
        if ext_router is not None:
            router.include_router(ext_router)
    router.include_router(tasks.router)
    router.include_router(live.router)
    router.include_router(admin.router)
    router.include_router(privacy.router)
    return router


def _agent_or_none(request: Request):  # type: ignore[no-untyped-def]
    try:
        return current_agent(request)
    except LoginRequired:
        return None


def install(app: FastAPI) -> None:
    """Mount the workspace on the app (pages, static files, headers, the API's cookie hook)."""
    app.include_router(build_router(app.state.hub))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.cookie_principal = csrf.cookie_principal
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = "/login" if request.method != "GET" or target == "/" else f"/login?next={quote(target, safe='')}"
        if request.headers.get("hx-request") == "true":
            current = request.headers.get("hx-current-url", "")
            path = current.split("://", 1)[-1].partition("/")[2] if current else ""
            login = f"/login?next={quote('/' + path, safe='')}" if path else "/login"
            return Response(status_code=401, headers={"HX-Redirect": login})
        if request.url.path == "/live":
            return Response(status_code=401)
        response = Response(status_code=303, headers={"Location": login})
        sessions.clear(response, request.app.state.hub.settings)
        return response

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        agent = await run_in_threadpool(_agent_or_none, request)
        template = "_flash.html" if is_fragment(request) else "error.html"
        return render(request, agent, template, status=exc.status, tone="bad", message=exc.message,
                      status_code=exc.status)

    @app.exception_handler(csrf.CsrfRejected)
    async def _csrf(request: Request, exc: csrf.CsrfRejected) -> Response:
        agent = await run_in_threadpool(_agent_or_none, request)
        template = "_flash.html" if is_fragment(request) else "error.html"
        return render(request, agent, template, status=403, tone="bad", message=CSRF_MESSAGE, detail=exc.reason,
                      status_code=403)
