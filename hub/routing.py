"""Including a module's router in an app without rebuilding its routes for every app.

FastAPI (held below 0.137, see docs/architecture.md "Routing") copies each route on
`include_router`, analysing its endpoint's signature again: ~4 ms a route here, half a second per
app. A router defined once per process (a module's `router`) gives the same copies every time, so
they are made the first time and shared by every app the process builds. The hub's CLI, the
server and the test suite (hundreds of apps) all build apps this way.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

_copies: dict[tuple[int, str], tuple[APIRouter, list[BaseRoute]]] = {}


def include_shared(app: FastAPI, router: APIRouter, **options: Any) -> None:
    """`app.include_router(router, **options)` for a router that lives as long as the process.

    The copies carry no app of their own, so `app.dependency_overrides` does not reach them; the
    hub does not use overrides (tests register fakes through the registries instead)."""
    key = (id(router), repr(sorted(options.items())))
    cached = _copies.get(key)
    if cached is None:
        scratch = APIRouter()
        scratch.include_router(router, **options)
        # Kept with its router, so the id in the key cannot be reused by another object.
        cached = _copies[key] = (router, list(scratch.routes))
    app.router.routes.extend(cached[1])
