"""The agent workspace: server-rendered pages (Jinja2 + htmx) for agents, marketers and admins.

`install(app)` is the one call the app factory makes: it mounts the pages and their static files,
adds the security headers, and lets the REST API accept the session cookie (CSRF-checked).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, Response

from hub.api import problems
from hub.routing import include_shared
from hub.web import csrf, sessions
from hub.web.i18n import N_, field_errors
from hub.web import models as _models  # noqa: F401  (registers the workspace's tables)
from hub.web.pages import LoginRequired, PageError, current_agent, is_fragment, render, safe_next, wants_page
from hub.web.routes import account_tools, accounts, actions, admin, auth, contacts, demo_mailbox, live, privacy, tasks
from hub.web.security import SecurityHeaders

if TYPE_CHECKING:
    from hub.runtime import Hub

STATIC_DIR = Path(__file__).resolve().parent / "static"
# What an HTTP error means to a person, by status; others read GENERIC_MESSAGE.
STATUS_MESSAGES = {
    404: N_("There is no page at this address. It may have moved, or the link has a typo."),
    405: N_("This address cannot be used that way. Go back and use the page's own buttons and links."),
    413: N_("What you sent is too large. Send less at a time."),
    429: N_("Too many requests in a short time. Wait a minute and try again."),
}
GENERIC_MESSAGE = N_("The hub could not do this. Go back and try again; if it happens again, tell an admin.")
INVALID_MESSAGE = N_("Some of what you sent cannot be used. Go back, correct it and send it again:")
CRASH_MESSAGE = N_("The hub hit an unexpected error and has logged it. Go back and try again; "
                   "if it happens again, tell an admin.")
# The visible labels of the form fields pages post, for the few checks made before a route runs.
FIELD_LABELS = {
    "display_name": N_("Name"), "email": N_("Email"), "phone": N_("Phone"), "password": N_("Password"),
    "role": N_("Role"), "name": N_("Name"), "title": N_("Title"), "body": N_("Text"), "tags": N_("Tags"),
    "time_zone": N_("Time zone"), "locale": N_("Language"), "lifecycle_stage": N_("Lifecycle stage"),
    "new_email": N_("Add an email"), "new_phone": N_("Add a phone"), "due": N_("Due"), "q": N_("Search"),
    "consent_source": N_("Source"), "description": N_("Description"),
}
CSRF_MESSAGE = N_("This request did not come from a page of this hub, or the page is too old. "
                  "Reload the page and try again.")


# Every page and fragment passes the CSRF checks before any route runs; none is in the API schema.
PAGE_OPTIONS: dict[str, object] = {"include_in_schema": False, "dependencies": [Depends(csrf.protect)]}


def include_pages(app: FastAPI, hub: Hub) -> None:
    """Every router of pages and fragments, in the order requests are matched against them.

    Each goes straight onto the app (not through one workspace router included after): FastAPI
    rebuilds a route at every include, and the hub's own routers are built once per process."""
    include_shared(app, auth.router, **PAGE_OPTIONS)
    # Before contacts: /contacts/new must not be read as /contacts/{contact_id}.
    include_shared(app, actions.router, **PAGE_OPTIONS)
    include_shared(app, contacts.router, **PAGE_OPTIONS)
    include_shared(app, account_tools.router, **PAGE_OPTIONS)  # before accounts: /accounts/import is no id
    include_shared(app, accounts.router, **PAGE_OPTIONS)
    for _name, channel in sorted(hub.channels.items()):  # the channels' compose panels
        panel_router = channel.web_router()
        if panel_router is not None:
            app.include_router(panel_router, **PAGE_OPTIONS)  # type: ignore[arg-type]
    for _name, extension in sorted(hub.extensions.items()):  # marketers' pages: campaigns, surveys
        ext_router = extension.web_router()
        if ext_router is not None:
            app.include_router(ext_router, **PAGE_OPTIONS)  # type: ignore[arg-type]
    for module in (tasks, live, admin, demo_mailbox, privacy):
        include_shared(app, module.router, **PAGE_OPTIONS)


def _agent_or_none(request: Request):  # type: ignore[no-untyped-def]
    try:
        return current_agent(request)
    except LoginRequired:
        return None


def install(app: FastAPI) -> None:
    """Mount the workspace on the app (pages, static files, headers, the API's cookie hook)."""
    include_pages(app, app.state.hub)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        # Browsers ask for it on pages that name no icon (JSON, files): the same picture.
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                            headers={"cache-control": "public, max-age=86400"})
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

    async def error_page(request: Request, status: int, message: str, *, headers: dict[str, str] | None = None,
                         **values: object) -> Response:
        """The workspace's error page (a flash for htmx), in the user's language, with a way back."""
        agent = await run_in_threadpool(_agent_or_none, request)
        template = "_flash.html" if is_fragment(request) else "error.html"
        referer = request.headers.get("referer", "")
        origin = f"{request.url.scheme}://{request.url.netloc}"
        back = safe_next(referer[len(origin):]) if referer.startswith(origin + "/") else "/"
        return render(request, agent, template, status=status, headers=headers, tone="bad", message=message,
                      status_code=status, back=back, **values)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not wants_page(request):
            return problems.http_problem(request, exc)
        return await error_page(request, exc.status_code, STATUS_MESSAGES.get(exc.status_code, GENERIC_MESSAGE),
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not wants_page(request):
            return problems.validation_problem(request, exc)
        errors = exc.errors()
        if request.method == "GET" and any(err.get("loc", ("",))[0] == "path" for err in errors):
            # /contacts/abc: an address that names no page, not a form to correct.
            return await error_page(request, 404, STATUS_MESSAGES[404])
        return await error_page(request, 422, INVALID_MESSAGE, problems=field_errors(errors, FIELD_LABELS))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        if not wants_page(request):
            return problems.problem_response(request, 500, "The hub hit an unexpected error; it is in the server log.")
        problems.log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        try:
            return await error_page(request, 500, CRASH_MESSAGE)
        except Exception:  # the page itself cannot be drawn (the store is down): the plain answer
            return problems.problem_response(request, 500, "The hub hit an unexpected error; it is in the server log.")

    @app.exception_handler(csrf.CsrfRejected)
    async def _csrf(request: Request, exc: csrf.CsrfRejected) -> Response:
        agent = await run_in_threadpool(_agent_or_none, request)
        template = "_flash.html" if is_fragment(request) else "error.html"
        return render(request, agent, template, status=403, tone="bad", message=CSRF_MESSAGE, detail=exc.reason,
                      status_code=403)
