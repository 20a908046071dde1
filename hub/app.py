"""The ASGI application: API, channel routers, operations endpoints, and the embedded worker."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import func, select, text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import __version__, web
from hub.api import api_router
from hub.api import problems
from hub.migrate import SchemaBehind, check_current
from hub.models import Delivery
from hub.observability import (
    HTTP_LATENCY,
    HTTP_REQUESTS,
    OUTBOX_COUNTS_MAX_AGE,
    OUTBOX_ROWS,
    OUTBOX_STATUSES,
    CachedGauge,
    bearer_matches,
    is_local_client,
    render_metrics,
)
from hub.routing import include_shared
from hub.runtime import Hub

log = logging.getLogger("hub.app")


class BodyLimit:
    """Answer 413 to a body over the limit, whether or not it declares Content-Length."""

    def __init__(self, app: ASGIApp, max_bytes: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = max_bytes
        # Path pattern -> limit: a mail pipe, an email with attachments or a CSV upload needs more than JSON.
        self.overrides = [(re.compile(pattern), limit) for pattern, limit in (overrides or {}).items()]

    def limit_for(self, path: str) -> int:
        return next((limit for pattern, limit in self.overrides if pattern.match(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._reject(scope, receive, send, max_bytes)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, receive, send, max_bytes)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        response = problems.problem_response(
            None, 413, f"The request body is larger than {max_bytes} bytes; send less at a time.",
        )
        await response(scope, receive, send)


class Measure:
    """Count and time requests by route template, for /metrics.

    Plain ASGI rather than @app.middleware("http"): that one reads the body inside a task group,
    which wraps BodyLimit's 413 in an ExceptionGroup that FastAPI answers with a 400, and it hides
    client disconnects from streaming responses.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            path = _route_template(scope)
            HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], path).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    """The matched route's full template ("/api/v1/tasks/{task_id}"), so ids don't become labels."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return "unmatched"
    # FastAPI >= 0.160 keeps an included router's routes unprefixed: take the prefix from the URL.
    path, regex = scope.get("path", ""), getattr(route, "path_regex", None)
    if regex is not None and not regex.match(path):
        for i, char in enumerate(path):
            if char == "/" and regex.match(path[i:]):
                return path[:i] + template
    return template


class _TooLarge(StarletteHTTPException):
    # An HTTPException, so FastAPI's body reader passes it on (as a 413 problem) instead of
    # turning it into "400 There was an error parsing the body" when no Content-Length was sent.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body is larger than {max_bytes} bytes; send less at a time.")


def create_app(hub: Hub | None = None, *, check_schema: bool = True, start_worker: bool | None = None) -> FastAPI:
    """Build the app around a runtime; `start_worker` defaults to settings.embedded_worker."""
    hub = hub or Hub()
    run_worker = hub.settings.embedded_worker if start_worker is None else start_worker
    from hub.web import pages

    pages.ENV.auto_reload = hub.settings.templates_reload

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if check_schema:
            check_current(hub.db.engine)
        hub.broker.start()
        worker = None
        if run_worker:
            from hub.worker import EmbeddedWorker

            worker = EmbeddedWorker(hub)
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()  # finishes in-flight sends and releases claimed rows
            hub.broker.stop()

    app = FastAPI(
        title="Hub",
        version=__version__,
        summary="Omnichannel communication hub: one timeline per contact.",
        lifespan=lifespan,
        docs_url=None,  # served below from the swagger-ui-bundle package: no CDN, works offline
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.hub = hub
    _install_api_docs(app)
    problems.install(app)
    # A request is matched against the routes one by one, in this order: first the routes that carry
    # the volume, customers' pages and links (tracking pixels, survey answers, unsubscribes) and the
    # providers' webhooks, then the REST API, then the agents' workspace.
    for name, extension in sorted(hub.extensions.items()):
        if (ext_public := extension.public_router()) is not None:
            app.include_router(ext_public, include_in_schema=False)
    for name, channel in sorted(hub.channels.items()):
        router = channel.router()
        if router is not None:
            app.include_router(router, prefix=f"/channels/{name}", tags=[f"channel: {name}"])
    include_shared(app, api_router)
    for name, channel in sorted(hub.channels.items()):
        if (channel_api := channel.api_router()) is not None:
            app.include_router(channel_api, prefix="/api/v1")
    for name, extension in sorted(hub.extensions.items()):
        if (ext_api := extension.api_router()) is not None:
            app.include_router(ext_api, prefix="/api/v1")
    web.install(app)  # the agent workspace: pages, /static, security headers, the API's cookie sign-in

    app.add_middleware(Measure)
    body_limits = {"/api/v1/contacts/import$": hub.settings.api.max_upload_bytes}
    for name, channel in hub.channels.items():  # a channel's webhooks and its compose panel
        if (limit := channel.max_request_bytes) is not None:
            body_limits[f"/channels/{name}/"] = body_limits[rf"/contacts/\d+/compose/{name}$"] = limit
    for extension in hub.extensions.values():
        body_limits.update(extension.body_limits())
    app.add_middleware(BodyLimit, max_bytes=hub.settings.api.max_body_bytes, overrides=body_limits)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The store is reachable and migrated")
    def readyz() -> JSONResponse:
        try:
            with hub.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            check_current(hub.db.engine)
        except SchemaBehind as exc:
            return problems.problem_response(None, 503, str(exc), slug="schema-behind")
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return problems.problem_response(None, 503, f"The database is not reachable: {type(exc).__name__}")
        return JSONResponse({"status": "ready"})

    def count_outbox() -> dict[str, int]:
        with hub.session(read_only=True) as session:
            return dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())

    app.state.outbox_gauge = outbox_gauge = CachedGauge(
        OUTBOX_ROWS, count_outbox, labels=OUTBOX_STATUSES, max_age=OUTBOX_COUNTS_MAX_AGE)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (Authorization: Bearer <metrics_token>)",
             response_class=Response)
    def metrics(request: Request) -> Response:
        token = hub.settings.metrics_token
        if token is not None:
            if not bearer_matches(request.headers.get("authorization"), token.get_secret_value()):
                return problems.problem_response(None, 401, "Send the metrics token: Authorization: Bearer <token>.",
                                                 headers={"WWW-Authenticate": "Bearer"})
        elif not is_local_client(request.client.host if request.client else None, request.headers):
            # Without a token the endpoint exists only for this machine; others are not told it is there.
            return problems.problem_response(None, 404, "Not found.")
        outbox_gauge.refresh()
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    return app


def _install_api_docs(app: FastAPI) -> None:
    """Swagger UI at /api/docs and ReDoc at /api/redoc with their scripts from the installed
    fastapi-offline package, so the API's docs open on a machine without internet (FastAPI's
    default pages load them from a CDN)."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/api/docs/assets", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"),
              name="api-docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="Hub API",
                                   swagger_js_url="/api/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/api/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/api/docs/assets/favicon.png")

    @app.get("/api/redoc", include_in_schema=False)
    def api_redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/api/openapi.json", title="Hub API",
                              redoc_js_url="/api/docs/assets/redoc.standalone.js",
                              redoc_favicon_url="/api/docs/assets/favicon.png", with_google_fonts=False)
