"""Admin pages: users and their roles, API keys, and the installed channels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select
from starlette.responses import Response

from hub import audit
from hub.auth import SCOPES, create_api_key, create_user, revoke_api_key
from hub.models import ApiKey, Role, User
from hub.web.i18n import N_, TranslatableError
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require

router = APIRouter(prefix="/admin")
Admin = Annotated[Agent, Depends(require("admin"))]
ROLE_LABELS = {"agent": N_("Agent"), "marketer": N_("Marketer"), "admin": N_("Admin")}


def _users_page(request: Request, agent: Agent, *, status: int = 200, error: str | None = None,
                values: dict | None = None) -> Response:
    with get_hub(request).session(read_only=True) as db:
        users = list(db.scalars(select(User).order_by(User.is_active.desc(), User.display_name, User.id)))
    return render(request, agent, "admin_users.html", status=status, users=users, roles=ROLE_LABELS, error=error,
                  values=values or {})


@router.get("/users")
def users(request: Request, agent: Admin) -> Response:
    return _users_page(request, agent)


@router.post("/users")
def add_user(request: Request, agent: Admin, email: Annotated[str, Form(max_length=320)] = "",
             display_name: Annotated[str, Form(max_length=200)] = "", role: Annotated[str, Form()] = "agent",
             password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    values = {"email": email, "display_name": display_name, "role": role}
    if role not in ROLE_LABELS:
        return _users_page(request, agent, status=422, error=N_("Choose a role."), values=values)
    with get_hub(request).session() as db:
        try:
            user = create_user(db, email=email, password=password, role=Role(role), display_name=display_name.strip())
        except TranslatableError as exc:  # a bad address, a short password, a taken email
            return _users_page(request, agent, status=422, error=exc, values=values)
        audit.record(db, actor=agent.principal, action="user.create", entity="user", entity_id=user.id,
                     changes={"email": [None, user.email], "role": [None, user.role]})
        db.commit()
    return redirect(request, "/admin/users")


@router.post("/users/{user_id}/active")
def set_active(request: Request, user_id: int, agent: Admin, active: Annotated[str, Form()] = "") -> Response:
    with get_hub(request).session() as db:
        user = db.get(User, user_id)
        if user is None:
            raise PageError(404, N_("There is no such user."))
        if user.id == agent.id:
            raise PageError(409, N_("You cannot deactivate yourself."))
        wanted = active == "1"
        if user.is_active != wanted:
            user.is_active = wanted
            audit.record(db, actor=agent.principal, action="user.active", entity="user", entity_id=user.id,
                         changes={"is_active": [not wanted, wanted]})
        db.commit()
    return redirect(request, "/admin/users")


def _keys_page(request: Request, agent: Agent, *, status: int = 200, error: str | None = None,
               created: str | None = None) -> Response:
    with get_hub(request).session(read_only=True) as db:
        keys = list(db.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())))
    return render(request, agent, "admin_keys.html", status=status, keys=keys, scopes=SCOPES, error=error,
                  created=created)


@router.get("/api-keys")
def api_keys(request: Request, agent: Admin) -> Response:
    return _keys_page(request, agent)


@router.post("/api-keys")
def add_api_key(request: Request, agent: Admin, name: Annotated[str, Form(max_length=200)] = "",
                scopes: Annotated[list[str] | None, Form()] = None) -> Response:
    if not name.strip():
        return _keys_page(request, agent, status=422, error=N_("Give the key a name."))
    with get_hub(request).session() as db:
        try:
            key, plain = create_api_key(db, name=name.strip(), scopes=scopes or [], created_by=agent.id)
        except ValueError:
            return _keys_page(request, agent, status=422, error=N_("Choose at least one permission."))
        audit.record(db, actor=agent.principal, action="api_key.create", entity="api_key", entity_id=key.id,
                     changes={"name": [None, key.name], "scopes": [None, key.scopes]})
        db.commit()
    # The plain key is shown once, in this answer, and never stored.
    return _keys_page(request, agent, status=201, created=plain)


@router.post("/api-keys/{key_id}/revoke")
def revoke(request: Request, key_id: int, agent: Admin) -> Response:
    with get_hub(request).session() as db:
        key = db.get(ApiKey, key_id)
        if key is None:
            raise PageError(404, N_("There is no such API key."))
        if key.revoked_at is None:
            revoke_api_key(db, key)
            audit.record(db, actor=agent.principal, action="api_key.revoke", entity="api_key", entity_id=key.id)
        db.commit()
    return redirect(request, "/admin/api-keys")


@router.get("/channels")
def channels(request: Request, agent: Admin) -> Response:
    hub = get_hub(request)
    rows = [
        {"name": name, "label": channel.label or name, "configured": channel.configured,
         "capabilities": sorted(str(c) for c in channel.capabilities)}
        for name, channel in sorted(hub.channels.items())
    ]
    return render(request, agent, "admin_channels.html", rows=rows)
