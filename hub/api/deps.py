"""Typed dependencies shared by every route: the runtime, a session, the principal and its scopes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from hub.api.problems import Problem
from hub.auth import Principal, api_key_principal
from hub.runtime import Hub
from hub.timeline import InvalidCursor, decode_cursor, encode_cursor


def get_hub(request: Request) -> Hub:
    return request.app.state.hub


HubDep = Annotated[Hub, Depends(get_hub)]


def get_session(request: Request, hub: HubDep) -> Iterator[Session]:
    """A session per request; views commit their unit of work explicitly."""
    with hub.session(read_only=request.method in {"GET", "HEAD", "OPTIONS"}) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def current_principal(request: Request, session: SessionDep) -> Principal:
    """The caller: an API key (Bearer or X-API-Key) or a signed-in user's session cookie."""
    key = _presented_key(request)
    if key:
        principal = api_key_principal(session, key)
        if principal is None:
            raise Problem(401, "The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"})
        return principal
    cookie_auth = getattr(request.app.state, "cookie_principal", None)
    if cookie_auth is not None:
        principal = cookie_auth(request, session)
        if principal is not None:
            return principal
    raise Problem(401, "Send an API key as 'Authorization: Bearer hub_…' (create one with `hub apikeys create`).",
                  headers={"WWW-Authenticate": "Bearer"})


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(scope: str) -> Callable[[Principal], Principal]:
    """A dependency that admits principals holding `scope`."""

    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.allows(scope):
            raise Problem(403, f"This needs the '{scope}' permission, which {principal.name!r} does not have.",
                          slug="missing-scope", scope=scope)
        return principal

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check


def page_size(hub: Hub, requested: int | None, default: int = 50) -> int:
    """A page size within the configured maximum."""
    size = default if requested is None else requested
    if size < 1 or size > hub.settings.api.max_page_size:
        raise Problem(422, f"limit must be between 1 and {hub.settings.api.max_page_size}")
    return size


def _after_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    parts = decode_cursor(cursor)
    if len(parts) != 1 or not isinstance(parts[0], int) or isinstance(parts[0], bool):
        raise InvalidCursor("the cursor is not one this API issued; start again without it")
    return parts[0]


def id_page(session: Session, stmt: Any, model: Any, *, limit: int, cursor: str | None,
            newest_first: bool = False) -> tuple[list[Any], str | None]:
    """One keyset page of `stmt` by id, and the cursor of the next one."""
    after = _after_id(cursor)
    if after is not None:
        stmt = stmt.where(model.id < after if newest_first else model.id > after)
    stmt = stmt.order_by(model.id.desc() if newest_first else model.id).limit(limit + 1)
    rows = list(session.scalars(stmt))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None
