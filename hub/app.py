"""The ASGI application: API, channel routers, operations endpoints, and the embedded worker."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import __version__
from hub.api import api_router
from hub.api import problems
from hub.migrate import SchemaBehind, check_current
from hub.models import Delivery
from hub.observability import HTTP_LATENCY, HTTP_REQUESTS, OUTBOX_ROWS, render_metrics
from hub.runtime import Hub

log = logging.getLogger("hub.app")


class BodyLimit:
    """Answer 413 to a body over the limit, whether or not it declares Content-Length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
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
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem_response(
            None, 413, f"The request body is larger than {self.max_bytes} bytes; send less at a time.",
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(hub: Hub | None = None, *, check_schema: bool = True, start_worker: bool | None = None) -> FastAPI:
    """Build the app around a runtime; `start_worker` defaults to settings.embedded_worker."""
    hub = hub or Hub()
    run_worker = hub.settings.embedded_worker if start_worker is None else start_worker

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
        docs_url="/api/docs",
        redoc_url="/api/redoc",
        openapi_url="/api/openapi.json",
    )
    app.state.hub = hub
    problems.install(app)
    app.include_router(api_router)
    for name, channel in sorted(hub.channels.items()):
        router = channel.router()
        if router is not None:
            app.include_router(router, prefix=f"/channels/{name}", tags=[f"channel: {name}"])

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    app.add_middleware(BodyLimit, max_bytes=hub.settings.api.max_body_bytes)

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

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        with hub.session(read_only=True) as session:
            counts = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        for status in ("queued", "sending", "sent", "delivered", "failed", "dead", "cancelled", "bounced"):
            OUTBOX_ROWS.labels(status).set(counts.get(status, 0))
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    return app
