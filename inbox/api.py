"""REST routes: conversations (GET /conversations, GET /conversations/{id}, POST …/assign,
POST …/status, POST …/snooze). Changes take the same paths as the pages (inbox.service): audited,
announced, safe under concurrency; `If-Match: <version>` makes a change conditional."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from hub import clock
from hub.api.deps import HubDep, SessionDep, page_size, require
from hub.api.problems import Problem
from hub.auth import Principal
from inbox import queries, service, sla
from inbox.models import NO_DUE, Conversation, Priority, Status

router = APIRouter(tags=["conversations"])
Reader = Annotated[Principal, Depends(require("conversations:read"))]
Writer = Annotated[Principal, Depends(require("conversations:write"))]


class ConversationPublic(BaseModel):
    id: int
    contact_id: int
    channel: str
    status: Status
    priority: Priority
    assignee_id: int | None
    team_id: int | None
    key_account: bool
    subject: str | None
    opened_at: datetime
    last_inbound_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    snoozed_until: datetime | None
    first_response_due_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    due_at: datetime | None = Field(description="The earliest running target; null when none runs")
    sla_state: Literal["ok", "near", "breached", "none"]
    policy: str | None
    breached: bool
    version: int = Field(description="Send it back as If-Match to change only what you read")

    @classmethod
    def of(cls, conv: Conversation, *, warn: float) -> ConversationPublic:
        values = {name: getattr(conv, name) for name in cls.model_fields if hasattr(conv, name)}
        values["due_at"] = None if conv.due_at >= NO_DUE else conv.due_at
        values["sla_state"] = sla.state(conv, clock.now(), warn_minutes=warn)
        return cls(**values)


class ConversationPage(BaseModel):
    items: list[ConversationPublic]
    next_cursor: str | None


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee_id: int | None = Field(description="A user id, or null to unassign")


class StatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "waiting", "resolved"]


class SnoozeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime


def _warn(hub: HubDep) -> float:  # type: ignore[valid-type]
    return max((p.warn_minutes_before for p in hub.extensions["inbox"].settings.policies), default=15)


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    value = if_match.strip().strip('"').removeprefix("W/").strip('"')
    if not value.isdigit():
        raise Problem(400, "If-Match must be a conversation version (a number) as read from the conversation")
    return int(value)


def _change(session: Session, hub: HubDep, change) -> ConversationPublic:  # type: ignore[no-untyped-def, valid-type]
    try:
        conv = change()
    except service.ConversationNotFound as exc:
        raise Problem(404, str(exc)) from None
    except service.ChangeRefused as exc:
        session.rollback()
        raise Problem(exc.status, str(exc), slug="precondition-failed" if exc.status == 412 else None) from None
    session.commit()
    return ConversationPublic.of(conv, warn=_warn(hub))


@router.get("/conversations", summary="List conversations: mine, unassigned, my teams' or all; due first")
def list_conversations(
    hub: HubDep, session: SessionDep, principal: Reader,
    view: Annotated[Literal["mine", "unassigned", "team", "all"], Query()] = "all",
    status: Status = Status.OPEN,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    priority: Priority | None = None,
    team_id: int | None = None,
    assignee_id: int | None = None,
    sla_state: Annotated[Literal["breached", "near", "ok"] | None, Query()] = None,
    limit: Annotated[int | None, Query(ge=1, le=500, description="Page size")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ConversationPage:
    if view in ("mine", "team") and principal.user_id is None:
        raise Problem(422, "An API key has no conversations or teams of its own; use view=all with assignee_id.",
                      slug="validation", errors=[{"field": "view", "in": "query", "message": "mine/team need a user",
                                                  "type": "value_error"}])
    filters = queries.Filters(view=view, status=status.value, channel=channel, priority=priority.value if priority else None,
                              team_id=team_id, sla=sla_state, assignee_id=assignee_id)
    warn = _warn(hub)
    try:
        page = queries.page(session, filters, user_id=principal.user_id or -1, now=clock.now(), warn_minutes=warn,
                            cursor=cursor, limit=page_size(hub, limit))
    except queries.BadCursor as exc:
        raise Problem(400, str(exc)) from None
    return ConversationPage(items=[ConversationPublic.of(c, warn=warn) for c in page.items], next_cursor=page.next_cursor)


@router.get("/conversations/{conv_id}", summary="One conversation", responses={404: {"description": "No such conversation"}})
def get_conversation(conv_id: int, hub: HubDep, session: SessionDep, principal: Reader) -> ConversationPublic:
    try:
        return ConversationPublic.of(service.get(session, conv_id), warn=_warn(hub))
    except service.ConversationNotFound as exc:
        raise Problem(404, str(exc)) from None


@router.post("/conversations/{conv_id}/assign", summary="Assign, reassign or unassign (the agent's cap holds)",
             responses={404: {"description": "No such conversation"}, 409: {"description": "Resolved, or the agent is full"},
                        412: {"description": "If-Match does not match"}})
def assign_conversation(conv_id: int, body: AssignBody, hub: HubDep, session: SessionDep, principal: Writer,
                        if_match: Annotated[str | None, Header()] = None) -> ConversationPublic:
    version = _version(if_match)
    return _change(session, hub, lambda: service.assign(session, conv_id=conv_id, assignee_id=body.assignee_id,
                                                        actor=principal, expected_version=version))


@router.post("/conversations/{conv_id}/status", summary="Open, wait on the customer, or resolve",
             responses={404: {"description": "No such conversation"}, 409: {"description": "Cannot reopen"},
                        412: {"description": "If-Match does not match"}})
def status_conversation(conv_id: int, body: StatusBody, hub: HubDep, session: SessionDep, principal: Writer,
                        if_match: Annotated[str | None, Header()] = None) -> ConversationPublic:
    version = _version(if_match)
    return _change(session, hub, lambda: service.set_status(session, conv_id=conv_id, status=Status(body.status),
                                                            actor=principal, expected_version=version))


@router.post("/conversations/{conv_id}/snooze", summary="Snooze until a time; it opens again then (or when the customer writes)",
             responses={404: {"description": "No such conversation"}, 422: {"description": "The time is not in the future"}})
def snooze_conversation(conv_id: int, body: SnoozeBody, hub: HubDep, session: SessionDep, principal: Writer,
                        if_match: Annotated[str | None, Header()] = None) -> ConversationPublic:
    version = _version(if_match)
    return _change(session, hub, lambda: service.set_status(session, conv_id=conv_id, status=Status.SNOOZED,
                                                            until=body.until, actor=principal, expected_version=version))
