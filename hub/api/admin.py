"""REST routes for administration: users, API keys, installed channels and the audit log."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import audit
from hub.api.deps import CurrentPrincipal, HubDep, SessionDep, id_page, page_size, require
from hub.api.problems import Problem
from hub.auth import MIN_PASSWORD_LENGTH, SCOPES, Principal, create_api_key, create_user, revoke_api_key
from hub.identities import normalize_email
from hub.models import ApiKey, AuditEntry, Role, User

router = APIRouter(tags=["admin"])
Admin = Annotated[Principal, Depends(require("admin"))]
Limit = Annotated[int | None, Query(description="Page size")]


def _zone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Moscow)") from None
    return value


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: SecretStr = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1000)
    role: Role
    display_name: str = Field(default="", max_length=200)
    locale: Literal["ru", "en"] | None = None
    time_zone: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        return _zone(value)


class UserUpdate(BaseModel):
    """Only the fields sent change; is_active false signs the user out everywhere."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=200)
    is_active: bool | None = None
    locale: Literal["ru", "en"] | None = None
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        return _zone(value)

    @model_validator(mode="after")
    def _required_stay_set(self) -> UserUpdate:
        for name in ("role", "display_name", "is_active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class UserPublic(BaseModel):
    id: int
    email: str
    display_name: str
    role: Role
    is_active: bool
    locale: str | None
    time_zone: str | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(id=user.id, email=user.email, display_name=user.display_name, role=Role(user.role),  # type: ignore[arg-type]
                   is_active=user.is_active, locale=user.locale, time_zone=user.time_zone, created_at=user.created_at)


class UserPage(BaseModel):
    items: list[UserPublic]
    next_cursor: str | None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    # The scopes are the core's and the installed plug-ins': listed when the schema is built, not at
    # import (plug-ins import this module while they load).
    scopes: list[str] = Field(min_length=1, max_length=100, json_schema_extra=lambda schema: schema.update(
        description=f"Any of: {', '.join(SCOPES)}", maxItems=len(SCOPES)))

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; choose from {', '.join(SCOPES)}")
        return sorted(set(value))


class ApiKeyPublic(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_by: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(id=key.id, name=key.name, prefix=key.prefix, scopes=list(key.scopes),  # type: ignore[arg-type]
                   created_by=key.created_by, created_at=key.created_at, last_used_at=key.last_used_at,
                   revoked_at=key.revoked_at)


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class ApiKeyPage(BaseModel):
    items: list[ApiKeyPublic]
    next_cursor: str | None


class ChannelPublic(BaseModel):
    name: str
    label: str
    capabilities: list[str]
    configured: bool
    limits: dict[str, Any]


class AuditEntryPublic(BaseModel):
    id: int
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    action: str
    entity: str
    entity_id: str | None
    contact_id: int | None
    changes: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryPublic]
    next_cursor: str | None


# --- users ------------------------------------------------------------------------------------

@router.get("/users", summary="List users")
def get_users(hub: HubDep, session: SessionDep, principal: Admin, limit: Limit = None,
              cursor: str | None = None) -> UserPage:
    rows, next_cursor = id_page(session, select(User), User, limit=page_size(hub, limit), cursor=cursor)
    return UserPage(items=[UserPublic.of(u) for u in rows], next_cursor=next_cursor)


@router.post("/users", status_code=201, summary="Create a user (admin, agent or marketer)")
def post_user(body: UserCreate, session: SessionDep, principal: Admin) -> UserPublic:
    if session.scalars(select(User.id).where(User.email == body.email)).first() is not None:
        raise Problem(409, f"a user with email {body.email} already exists", slug="user-exists")
    user = create_user(session, email=body.email, password=body.password.get_secret_value(), role=body.role,
                       display_name=body.display_name, locale=body.locale, time_zone=body.time_zone)
    audit.record(session, actor=principal, action="user.created", entity="user", entity_id=user.id,
                 changes={"email": [None, user.email], "role": [None, user.role]})
    session.commit()
    return UserPublic.of(user)


@router.patch("/users/{user_id}", summary="Change a user's role, name or settings, or deactivate them")
def patch_user(user_id: int, body: UserUpdate, session: SessionDep, principal: Admin) -> UserPublic:
    user = session.get(User, user_id)
    if user is None:
        raise Problem(404, f"user {user_id} does not exist")
    before = {"role": user.role, "display_name": user.display_name, "is_active": user.is_active,
              "locale": user.locale, "time_zone": user.time_zone}
    after = {**before, **{name: getattr(body, name) for name in body.model_fields_set}}
    if after["role"] is not None:
        after["role"] = Role(after["role"]).value
    if before["role"] == Role.ADMIN and before["is_active"] and (after["role"] != Role.ADMIN or not after["is_active"]):
        admins = session.scalar(select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.is_active))
        if admins <= 1:
            raise Problem(409, "this is the last active admin; make another user admin first", slug="last-admin")
    for name, value in after.items():
        setattr(user, name, value)
    if before["is_active"] and not user.is_active:
        user.session_version += 1  # ends the user's open sessions
    changes = audit.diff(before, after)
    if changes:
        audit.record(session, actor=principal, action="user.updated", entity="user", entity_id=user.id, changes=changes)
    session.commit()
    return UserPublic.of(user)


# --- API keys ---------------------------------------------------------------------------------

@router.get("/api-keys", summary="List API keys (never the keys themselves)")
def get_api_keys(hub: HubDep, session: SessionDep, principal: Admin, limit: Limit = None,
                 cursor: str | None = None) -> ApiKeyPage:
    rows, next_cursor = id_page(session, select(ApiKey), ApiKey, limit=page_size(hub, limit), cursor=cursor)
    return ApiKeyPage(items=[ApiKeyPublic.of(k) for k in rows], next_cursor=next_cursor)


@router.post("/api-keys", status_code=201, summary="Create an API key; the key is in this answer only")
def post_api_key(body: ApiKeyCreate, session: SessionDep, principal: Admin) -> ApiKeyCreated:
    key, plain = create_api_key(session, name=body.name, scopes=body.scopes, created_by=principal.user_id)
    audit.record(session, actor=principal, action="api_key.created", entity="api_key", entity_id=key.id,
                 changes={"name": [None, key.name], "scopes": [None, key.scopes]})
    session.commit()
    return ApiKeyCreated(**ApiKeyPublic.of(key).model_dump(), key=plain)


@router.delete("/api-keys/{key_id}", summary="Revoke an API key (it stays listed, revoked)")
def delete_api_key(key_id: int, session: SessionDep, principal: Admin) -> ApiKeyPublic:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise Problem(404, f"API key {key_id} does not exist")
    if key.revoked_at is None:
        revoke_api_key(session, key)
        audit.record(session, actor=principal, action="api_key.revoked", entity="api_key", entity_id=key.id)
    session.commit()
    return ApiKeyPublic.of(key)


# --- channels and audit -----------------------------------------------------------------------

@router.get("/channels", summary="Installed channel adapters: capabilities, configuration, limits")
def get_channels(hub: HubDep, principal: CurrentPrincipal) -> list[ChannelPublic]:
    return [
        ChannelPublic(name=name, label=channel.label or name, capabilities=sorted(str(c) for c in channel.capabilities),
                      configured=channel.configured, limits=dataclasses.asdict(channel.limits))
        for name, channel in sorted(hub.channels.items())
    ]


@router.get("/audit", summary="The audit log, newest first; narrowed by contact, actor, action and time")
def get_audit(
    hub: HubDep,
    session: SessionDep,
    principal: Admin,
    contact_id: int | None = None,
    actor: Annotated[str | None, Query(
        max_length=120, pattern=r"^(user|api_key|system)(:[0-9]{1,19})?$",
        description='"user:3", "api_key:5", or a kind alone: "user", "api_key", "system"')] = None,
    action: Annotated[str | None, Query(max_length=100, description='e.g. "contact.update"')] = None,
    since: Annotated[AwareDatetime | None, Query(description="At or after (with a zone)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before (with a zone)")] = None,
    limit: Limit = None,
    cursor: str | None = None,
) -> AuditPage:
    page = audit.entries(session, actor=actor, action=action, contact_id=contact_id, since=since, until=until,
                         limit=page_size(hub, limit), cursor=cursor)
    return AuditPage(items=[AuditEntryPublic.model_validate(e, from_attributes=True) for e in page.items],
                     next_cursor=page.next_cursor)
