"""Canned responses: saved replies, shared or personal, in Russian or English, with variables
({{ contact.name }}, {{ agent.name }}, {{ links.site }}…) rendered in Jinja2's sandbox."""

from __future__ import annotations

import re
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub import audit, clock
from hub.auth import Principal
from hub.db import contains_folded
from hub.models import Contact, User
from inbox.models import CannedResponse

_ENV = ImmutableSandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)
SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
VARIABLES = ("contact.name", "contact.first_name", "agent.name", "agent.first_name", "agent.email",
             "conversation.id", "links.site")


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shortcut: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=10_000)
    locale: str = Field("ru", pattern="^(ru|en)$")
    shared: bool = False

    @field_validator("shortcut")
    @classmethod
    def _shortcut(cls, value: str) -> str:
        value = value.strip().lower()
        if not SHORTCUT.match(value):
            raise ValueError("a shortcut is lowercase letters, digits, - or _ (up to 40)")
        return value

    @field_validator("body")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            _ENV.from_string(value)
        except TemplateError as exc:
            raise ValueError(f"the text has a broken variable: {exc}") from None
        return value


def create(session: Session, *, data: CannedIn, actor: Principal) -> CannedResponse:
    if data.shared and not actor.allows("admin"):
        raise PermissionError("only an admin may save a shared response")
    row = CannedResponse(owner_id=None if data.shared else actor.user_id, shortcut=data.shortcut, title=data.title,
                         body=data.body, locale=data.locale)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="canned.create", entity="canned_response", entity_id=row.id,
                 changes={"shortcut": row.shortcut, "shared": data.shared, "locale": row.locale})
    return row


def delete(session: Session, *, canned_id: int, actor: Principal) -> bool:
    row = session.get(CannedResponse, canned_id)
    if row is None or not _may_edit(row, actor):
        return False
    session.delete(row)
    audit.record(session, actor=actor, action="canned.delete", entity="canned_response", entity_id=canned_id,
                 changes={"shortcut": row.shortcut})
    return True


def _may_edit(row: CannedResponse, actor: Principal) -> bool:
    return row.owner_id == actor.user_id if row.owner_id is not None else actor.allows("admin")


def visible(session: Session, *, user_id: int, query: str = "", locale: str | None = None, limit: int = 20) -> list[CannedResponse]:
    """The agent's own and the shared responses matching `query` (shortcut, title or text), own first."""
    stmt = select(CannedResponse).where(or_(CannedResponse.owner_id == user_id, CannedResponse.owner_id.is_(None)))
    query = query.strip().lstrip("/")
    if query:
        stmt = stmt.where(or_(CannedResponse.shortcut.startswith(query.lower()),
                              contains_folded(session, CannedResponse.title, query),
                              contains_folded(session, CannedResponse.body, query)))
    if locale:
        stmt = stmt.where(CannedResponse.locale == locale)
    stmt = stmt.order_by(CannedResponse.owner_id.is_(None), CannedResponse.shortcut, CannedResponse.id).limit(limit)
    return list(session.scalars(stmt))


def _first(name: str) -> str:
    return (name or "").split(" ")[0]


def render(row: CannedResponse | str, *, contact: Contact | None, agent: User | None, conversation_id: int | None = None,
           site: str = "") -> str:
    """The response's text with its variables filled in; an unknown variable renders empty."""
    body = row if isinstance(row, str) else row.body
    values: dict[str, Any] = {
        "contact": {"name": contact.display_name if contact else "", "first_name": _first(contact.display_name) if contact else ""},
        "agent": {"name": agent.display_name if agent else "", "first_name": _first(agent.display_name) if agent else "",
                  "email": agent.email if agent else ""},
        "conversation": {"id": conversation_id or ""},
        "links": {"site": site},
    }
    try:
        return _ENV.from_string(body).render(values)
    except TemplateError:
        return body


def touch(row: CannedResponse) -> None:
    row.updated_at = clock.now()
