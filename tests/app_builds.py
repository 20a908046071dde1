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
mode. Smaller pieces of a route's construction are remembered too (the first three together ~40%
of an app's build once the analyses above are remembered):

- a path's compiled pattern (Starlette's `compile_path`, a pure function of the path string; the
  `re` module's own cache holds 512 patterns, fewer than an app's routes need, so every app
  compiled them all again), with a fresh convertors dict for each route;
- a route's combined request body (`get_body_field`: a pydantic model made with `create_model`
  for every route that takes more than one body parameter), keyed by the route's unique id and
  the very body parameter fields it is made of, which are the remembered analyses' own;
- an endpoint's return annotation, keyed like its analysis (code object, and what the code's
  signature reads); and the endpoint's call flags (coroutine, generator: read from the code's
  flags) carried to the rebound analysis instead of being worked out again;
- a remembered dependency's flattened form (`get_flat_dependant`, which every route runs over its
  whole dependency tree), kept on the dependency for each set of OAuth scopes passed down to it.

A rebound analysis is copied field by field rather than with dataclasses.replace, which ran
__init__ over every field. With the flattening remembered: an app's build 77-87 -> 57-63 ms of CPU
(median of 30 builds, three alternating runs on a loaded machine).

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
from starlette import routing as starlette_routing

_plain = utils.get_dependant
_plain_for_routes = routing.get_dependant
_plain_field = routing.create_model_field
_plain_compile_path = starlette_routing.compile_path
_plain_body_field = routing.get_body_field
_plain_return_annotation = routing.get_typed_return_annotation
_plain_flat = utils.get_flat_dependant
_seen: weakref.WeakKeyDictionary[Callable[..., Any], dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
_endpoints: dict[tuple[Any, ...], tuple[tuple[Any, ...], Dependant, dict[str, Any]]] = {}
_fields: dict[tuple[Any, ...], Any] = {}
_paths: dict[str, tuple[Any, str, dict[str, Any]]] = {}
_bodies: dict[tuple[Any, ...], tuple[list[Any], Any]] = {}
_returns: dict[CodeType, tuple[tuple[Any, ...], Any]] = {}
# Worked out from the call's code flags alone (for a plain function): the same for every function
# object made from one code object. Not the flags that read sub-dependencies or scopes, which
# APIRoute changes after the analysis (it inserts a router's dependencies).
_CALL_FLAGS = ("is_gen_callable", "is_async_gen_callable", "is_coroutine_callable", "_is_security_scheme")
_FIELDS = tuple(f.name for f in dataclasses.fields(Dependant))
# Where a remembered dependency's flattened form is kept, on the dependency itself (so it lives as
# long as the analysis does), by the OAuth scopes its parent passes down.
_FLAT = "_suite_flat"


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
        per_call[key].__dict__[_FLAT] = {}  # marks it as one of the remembered, shared analyses
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


def _fresh(dependant: Dependant, call: Callable[..., Any] | None,
           flags: dict[str, Any] | None = None) -> Dependant:
    """A copy of `dependant` calling `call`, with lists of its own; made without dataclasses.replace
    (which runs __init__ over every field: a third of the cost of a remembered endpoint)."""
    fresh = object.__new__(Dependant)
    values = {name: getattr(dependant, name) for name in _FIELDS}
    fresh.__dict__.update({name: list(value) if isinstance(value, list) else value for name, value in values.items()},
                          call=call)
    fresh.__dict__.update(flags or {})  # cached_property values, as if computed on `fresh`
    return fresh


def _remembered_flat(dependant: Dependant, *, skip_repeats: bool = False, visited: list[Any] | None = None,
                     parent_oauth_scopes: list[str] | None = None) -> Dependant:
    """A remembered dependency (the workspace's sign-in, CSRF and scope checks, in every route of
    every app) flattened once for each set of scopes its parent passes down. Only without
    skip_repeats: with it the result depends on what was visited before."""
    kept = dependant.__dict__.get(_FLAT)
    if kept is None or skip_repeats:
        return _plain_flat(dependant, skip_repeats=skip_repeats, visited=visited,
                           parent_oauth_scopes=parent_oauth_scopes)
    key = tuple(parent_oauth_scopes or ())
    if key not in kept:
        kept[key] = _plain_flat(dependant, parent_oauth_scopes=parent_oauth_scopes)
    if visited is not None:
        visited.append(dependant.cache_key)  # as the plain flattening does (nothing reads it here)
    return kept[key]


def _plain_function(call: Any) -> bool:
    """A function whose analysis reads only its code, annotations, defaults and globals."""
    return (inspect.isfunction(call) and isinstance(getattr(call, "__code__", None), CodeType)
            and not hasattr(call, "__wrapped__") and not hasattr(call, "__signature__"))


def _remembered_endpoint(*, path: str, call: Callable[..., Any], name: str | None = None,
                         own_oauth_scopes: list[str] | None = None, parent_oauth_scopes: list[str] | None = None,
                         use_cache: bool = True, scope: Any = None) -> Any:
    options = dict(path=path, call=call, name=name, own_oauth_scopes=own_oauth_scopes,
                   parent_oauth_scopes=parent_oauth_scopes, use_cache=use_cache, scope=scope)
    if not _plain_function(call):
        return _plain_for_routes(**options)
    key = (call.__code__, *_options(path, name, own_oauth_scopes, parent_oauth_scopes, use_cache, scope))
    inputs = _inputs(call)
    known = _endpoints.get(key)
    if known is None or not _same(known[0], inputs):
        analysed = _plain_for_routes(**options)
        flags = {flag: getattr(analysed, flag) for flag in _CALL_FLAGS}
        known = _endpoints[key] = (inputs, _fresh(analysed, None), flags)  # type: ignore[arg-type]
    return _fresh(known[1], call, known[2])


def _remembered_return_annotation(call: Callable[..., Any]) -> Any:
    if not _plain_function(call):
        return _plain_return_annotation(call)
    inputs = _inputs(call)
    known = _returns.get(call.__code__)
    if known is None or not _same(known[0], inputs):
        known = _returns[call.__code__] = (inputs, _plain_return_annotation(call))
    return known[1]


def _remembered_path(path: str) -> tuple[Any, str, dict[str, Any]]:
    if path not in _paths:
        _paths[path] = _plain_compile_path(path)
    regex, path_format, convertors = _paths[path]
    return regex, path_format, dict(convertors)


def _remembered_body_field(*, flat_dependant: Dependant, name: str, embed_body_fields: bool) -> Any:
    params = flat_dependant.body_params
    if not params or not embed_body_fields:  # no model made: the first parameter's own field, or None
        return _plain_body_field(flat_dependant=flat_dependant, name=name, embed_body_fields=embed_body_fields)
    key = (name, *map(id, params))
    known = _bodies.get(key)
    if known is None or any(a is not b for a, b in zip(known[0], params)):
        # The fields are kept with the result, so the ids in the key stay theirs.
        known = _bodies[key] = (list(params), _plain_body_field(flat_dependant=flat_dependant, name=name,
                                                                embed_body_fields=embed_body_fields))
    return known[1]


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
    routing.get_body_field = _remembered_body_field  # type: ignore[assignment]
    routing.get_typed_return_annotation = _remembered_return_annotation
    # A route flattens its own (fresh) dependant through fastapi.routing's name; that recurses into
    # the sub-dependencies through the dependency module's.
    utils.get_flat_dependant = _remembered_flat  # type: ignore[assignment]
    # fastapi.routing's APIRoute and Starlette's Route, Mount and Host read their own module's name.
    routing.compile_path = starlette_routing.compile_path = _remembered_path  # type: ignore[assignment]


def uninstall() -> None:
    utils.get_dependant = _plain
    routing.get_dependant = _plain_for_routes
    routing.create_model_field = _plain_field
    routing.get_body_field = _plain_body_field
    routing.get_typed_return_annotation = _plain_return_annotation
    utils.get_flat_dependant = _plain_flat
    routing.compile_path = starlette_routing.compile_path = _plain_compile_path
