"""Faster app builds for the suite: FastAPI's analysis of a route, done once per process.

The suite builds an app for every test that talks HTTP (~1,000 a run). FastAPI (held below 0.137,
docs/architecture.md "Routing") analyses every route again for each app: signatures read, string
annotations evaluated, a pydantic adapter built for each parameter and response model — about a
second of CPU per app with every plug-in installed, most of what an HTTP test costs. This
remembers two analyses:

- a dependency's (a plain function), for the same route path and options, for as long as the
  function lives: the workspace's sign-in, CSRF and scope checks are the same module-level
  functions in every app;
- an endpoint's, keyed by its code object: an endpoint defined in a router-building function is
  a new function object in every app, but its analysis depends only on what the code's signature
  reads — its annotations (strings evaluated in the module's globals, or objects), its defaults,
  and the path and options — so it is reused when each of those is the very same object, and
  rebound to the new function (`call`), with fresh lists, since APIRoute adds its own
  dependencies to the list it gets. A wrapped function or one with an explicit `__signature__`
  is analysed as before.

A response model's field is remembered by its name (which holds the route's unique id), type and
mode.

Only the suite does this: a served hub builds one app per process and gains nothing.
`tests/test_app_builds.py` checks that an app built this way has the same routes, dependencies
and OpenAPI document as one built without it, and that each route calls its own endpoint.
"""

from __future__ import annotations

import dataclasses
import inspect
import weakref
from collections.abc import Callable
from types import CodeType
from typing import Any

from fastapi import routing
from fastapi.dependencies import utils
from fastapi.dependencies.models import Dependant

_plain = utils.get_dependant
_plain_for_routes = routing.get_dependant
_plain_field = routing.create_model_field
_seen: weakref.WeakKeyDictionary[Callable[..., Any], dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
_endpoints: dict[tuple[Any, ...], tuple[tuple[Any, ...], Dependant]] = {}
_fields: dict[tuple[Any, ...], Any] = {}


def _options(path: str, name: str | None, own_oauth_scopes: list[str] | None, parent_oauth_scopes: list[str] | None,
             use_cache: bool, scope: Any) -> tuple[Any, ...]:
    return (path, name, tuple(own_oauth_scopes or ()), tuple(parent_oauth_scopes or ()), use_cache, scope)


def _remembered(*, path: str, call: Callable[..., Any], name: str | None = None,
                own_oauth_scopes: list[str] | None = None, parent_oauth_scopes: list[str] | None = None,
                use_cache: bool = True, scope: Any = None) -> Any:
    options = dict(path=path, call=call, name=name, own_oauth_scopes=own_oauth_scopes,
                   parent_oauth_scopes=parent_oauth_scopes, use_cache=use_cache, scope=scope)
    if not inspect.isfunction(call):  # bound methods and classes: new objects, nothing to key on
        return _plain(**options)
    key = _options(path, name, own_oauth_scopes, parent_oauth_scopes, use_cache, scope)
    per_call = _seen.setdefault(call, {})
    if key not in per_call:
        per_call[key] = _plain(**options)
    return per_call[key]


def _inputs(call: Any) -> tuple[Any, ...]:
    """What the analysis of a function reads besides its code: compared object by object."""
    annotations = tuple(sorted(call.__annotations__.items()))
    return (call.__globals__, call.__defaults__ or (), tuple(sorted((call.__kwdefaults__ or {}).items())), annotations)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, tuple) and isinstance(y, tuple):
            if not _same(x, y):
                return False
        elif not (x is y or (isinstance(x, str) and x == y)):
            return False
    return True


def _fresh(dependant: Dependant, call: Callable[..., Any] | None) -> Dependant:
    lists = {f.name: list(getattr(dependant, f.name)) for f in dataclasses.fields(dependant)
             if isinstance(getattr(dependant, f.name), list)}
    return dataclasses.replace(dependant, call=call, **lists)


def _remembered_endpoint(*, path: str, call: Callable[..., Any], name: str | None = None,
                         own_oauth_scopes: list[str] | None = None, parent_oauth_scopes: list[str] | None = None,
                         use_cache: bool = True, scope: Any = None) -> Any:
    options = dict(path=path, call=call, name=name, own_oauth_scopes=own_oauth_scopes,
                   parent_oauth_scopes=parent_oauth_scopes, use_cache=use_cache, scope=scope)
    code = getattr(call, "__code__", None)
    if (not inspect.isfunction(call) or not isinstance(code, CodeType)
            or hasattr(call, "__wrapped__") or hasattr(call, "__signature__")):
        return _plain_for_routes(**options)
    key = (code, *_options(path, name, own_oauth_scopes, parent_oauth_scopes, use_cache, scope))
    inputs = _inputs(call)
    known = _endpoints.get(key)
    if known is None or not _same(known[0], inputs):
        known = _endpoints[key] = (inputs, _fresh(_plain_for_routes(**options), None))  # type: ignore[arg-type]
    return _fresh(known[1], call)


def _remembered_field(name: str, type_: Any, mode: Any = "validation", **kwargs: Any) -> Any:
    if kwargs:
        return _plain_field(name=name, type_=type_, mode=mode, **kwargs)
    try:
        key = (name, type_, mode)
        hash(key)
    except TypeError:
        return _plain_field(name=name, type_=type_, mode=mode)
    if key not in _fields:
        _fields[key] = _plain_field(name=name, type_=type_, mode=mode)
    return _fields[key]


def install() -> None:
    """Sub-dependencies (and a router's own dependencies) are looked up through the dependency
    module's global; routes' endpoints and response fields through fastapi.routing's own names."""
    utils.get_dependant = _remembered  # type: ignore[assignment]
    routing.get_dependant = _remembered_endpoint  # type: ignore[assignment]
    routing.create_model_field = _remembered_field  # type: ignore[assignment]


def uninstall() -> None:
    utils.get_dependant = _plain
    routing.get_dependant = _plain_for_routes
    routing.create_model_field = _plain_field
