"""The suite's remembered dependency analysis (tests/app_builds.py) builds the app FastAPI would."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tests import app_builds

pytestmark = pytest.mark.any_store


def _shape(dependant: Dependant) -> tuple[Any, ...]:
    """What a dependant resolves at request time, as comparable data."""
    fields = lambda group: tuple((f.name, f.alias, repr(f.field_info.annotation), f.field_info.is_required())  # noqa: E731
                                 for f in group)
    return (getattr(dependant.call, "__qualname__", repr(dependant.call)), dependant.name, dependant.use_cache,
            fields(dependant.path_params), fields(dependant.query_params), fields(dependant.header_params),
            fields(dependant.cookie_params), fields(dependant.body_params),
            tuple(_shape(sub) for sub in dependant.dependencies))


def _app_shape(hub: Any) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    from hub.app import create_app

    app = create_app(hub, check_schema=False, start_worker=False)
    routes = [(route.path, tuple(sorted(route.methods or ())), _shape(route.dependant), _shape(route._flat_dependant),
               tuple(route._flat_dependant.oauth_scopes))
              for route in app.routes if isinstance(route, APIRoute)]
    return routes, app.openapi()


def test_an_app_built_with_remembered_dependencies_is_the_app_fastapi_builds(hub):
    app_builds.uninstall()
    try:
        plain = _app_shape(hub)
    finally:
        app_builds.install()
    first, again = _app_shape(hub), _app_shape(hub)  # the second from what the first remembered
    assert first == plain and again == plain


def test_each_remembered_route_calls_its_own_endpoint_and_keeps_its_own_dependencies(hub):
    from hub.app import create_app

    apps = [create_app(hub, check_schema=False, start_worker=False) for _ in range(2)]
    routes = [[route for route in app.routes if isinstance(route, APIRoute)] for app in apps]
    for one, other in zip(*routes):
        assert one.dependant.call is one.endpoint and other.dependant.call is other.endpoint
        if one is other:  # the core's shared routes (hub.app.include_shared) are one object
            continue
        assert one.dependant is not other.dependant
        assert one.dependant.dependencies is not other.dependant.dependencies


def test_remembered_route_parts_are_what_fastapi_works_out_and_nothing_mutable_is_shared(hub):
    from hub.app import create_app

    apps = [create_app(hub, check_schema=False, start_worker=False) for _ in range(2)]
    routes = [[route for route in app.routes if isinstance(route, APIRoute)] for app in apps]
    assert app_builds._paths and app_builds._bodies and app_builds._returns  # each memo was used
    # A remembered dependency's flattened form is shared by the routes that use it.
    assert any(sub.__dict__.get(app_builds._FLAT) for route in routes[0] for sub in route.dependant.dependencies)
    shared = 0
    for one, other in zip(*routes):
        assert one.path == other.path
        if one is other:
            continue
        # The call flags carried to the rebound analysis are the endpoint's own.
        plain = Dependant(call=one.endpoint)
        for flag in app_builds._CALL_FLAGS:
            assert getattr(one.dependant, flag) == getattr(plain, flag), (one.path, flag)
        # A path's compiled pattern is shared; the convertors dict a route may change is its own.
        assert one.path_regex is other.path_regex
        assert one.param_convertors == other.param_convertors
        assert one.param_convertors is not other.param_convertors or not one.param_convertors
        # A combined body is FastAPI's: the same fields, under the route's own model name (shared
        # when the body parameters are the remembered analyses' own).
        if one.body_field is not None and one._embed_body_fields:
            shared += one.body_field is other.body_field
            assert one.body_field.field_info.annotation.__name__ == f"Body_{one.unique_id}"
            assert set(one.body_field.field_info.annotation.model_fields) == {
                f.alias for f in one._flat_dependant.body_params}
    assert shared > 0
