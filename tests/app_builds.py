"""Faster app builds for the suite: FastAPI's analysis of a dependency, done once per process.

The suite builds an app for every test that talks HTTP (~750 a run). FastAPI (held below 0.137,
docs/architecture.md "Routing") analyses every route's dependencies again for each app: the
workspace's sign-in, CSRF and scope checks are the same module-level functions in every app, yet
their signatures are read, their string annotations evaluated and their pydantic adapters built
~1,000 times per app, three quarters of an app's build. This remembers the analysis of a
dependency (a plain function) for the same route path and options, for as long as the function
lives. A dependency's analysis depends on nothing else, and nothing changes it after it is made.

Only the suite does this: a served hub builds one app per process and gains nothing.
`tests/test_app_builds.py` checks that an app built this way has the same routes, dependencies
and OpenAPI document as one built without it.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

from fastapi.dependencies import utils

_plain = utils.get_dependant
_seen: weakref.WeakKeyDictionary[Callable[..., Any], dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()


def _remembered(*, path: str, call: Callable[..., Any], name: str | None = None,
                own_oauth_scopes: list[str] | None = None, parent_oauth_scopes: list[str] | None = None,
                use_cache: bool = True, scope: Any = None) -> Any:
    options = dict(path=path, call=call, name=name, own_oauth_scopes=own_oauth_scopes,
                   parent_oauth_scopes=parent_oauth_scopes, use_cache=use_cache, scope=scope)
    if not inspect.isfunction(call):  # bound methods and classes: new objects, nothing to key on
        return _plain(**options)
    key = (path, name, tuple(own_oauth_scopes or ()), tuple(parent_oauth_scopes or ()), use_cache, scope)
    per_call = _seen.setdefault(call, {})
    if key not in per_call:
        per_call[key] = _plain(**options)
    return per_call[key]


def install() -> None:
    """Sub-dependencies (and a router's own dependencies) are looked up through the module's
    global, which this replaces; routes' endpoints are analysed as before (fastapi.routing holds
    its own reference to the plain function)."""
    utils.get_dependant = _remembered  # type: ignore[assignment]


def uninstall() -> None:
    utils.get_dependant = _plain  # type: ignore[assignment]
