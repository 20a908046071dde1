"""The inbox's lists: mine, unassigned, my teams', all; filtered, due first, in keyset pages that
each hit one index (ix_inbox_conv_assignee / _team / _due) whatever the number of conversations."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from hub.models import Contact, User
from inbox.models import Conversation, Presence, Priority, Status, TeamMember

VIEWS = ("mine", "unassigned", "team", "all")
SLA_STATES = ("breached", "near", "ok")


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    view: str = "mine"
    status: str = Status.OPEN.value
    channel: str | None = None
    priority: str | None = None
    team_id: int | None = None
    sla: str | None = None
    assignee_id: int | None = None

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, "")}


def parse_filters(*, view: str | None, status: str | None, channel: str | None, priority: str | None,
                  team: str | None, sla: str | None) -> Filters:
    """Filters from query parameters; ValueError naming the parameter that is wrong."""
    view = view or "mine"
    if view not in VIEWS:
        raise ValueError(f"view: one of {', '.join(VIEWS)}")
    status = status or Status.OPEN.value
    if status not in {s.value for s in Status}:
        raise ValueError(f"status: one of {', '.join(s.value for s in Status)}")
    if priority and priority not in {p.value for p in Priority}:
        raise ValueError(f"priority: one of {', '.join(p.value for p in Priority)}")
    if sla and sla not in SLA_STATES:
        raise ValueError(f"sla: one of {', '.join(SLA_STATES)}")
    if team and not team.isdigit():
        raise ValueError("team: a team id")
    if channel and len(channel) > 40:
        raise ValueError("channel: a channel name")
    return Filters(view=view, status=status, channel=channel or None, priority=priority or None,
                   team_id=int(team) if team else None, sla=sla or None)


def encode_cursor(conv: Conversation) -> str:
    raw = json.dumps([conv.due_at.isoformat(), conv.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        due, conv_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(due), int(conv_id)
    except (ValueError, TypeError) as exc:
        raise BadCursor("the cursor is not one this list gave") from exc


def my_team_ids(session: Session, user_id: int) -> list[int]:
    return list(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


def build(filters: Filters, *, user_id: int, team_ids: list[int], now: datetime, warn_minutes: float) -> Select[Any]:
    query = select(Conversation).where(Conversation.status == filters.status)
    if filters.view == "mine":
        query = query.where(Conversation.assignee_id == user_id)
    elif filters.view == "unassigned":
        query = query.where(Conversation.assignee_id.is_(None))
    elif filters.view == "team":
        query = query.where(Conversation.team_id.in_(team_ids or [-1]))
    if filters.assignee_id is not None:
        query = query.where(Conversation.assignee_id == filters.assignee_id)
    if filters.channel:
        query = query.where(Conversation.channel == filters.channel)
    if filters.priority:
        query = query.where(Conversation.priority == filters.priority)
    if filters.team_id is not None:
        query = query.where(Conversation.team_id == filters.team_id)
    warn = now + timedelta(minutes=warn_minutes)
    if filters.sla == "breached":
        query = query.where(Conversation.due_at <= now)
    elif filters.sla == "near":
        query = query.where(Conversation.due_at > now, Conversation.due_at <= warn)
    elif filters.sla == "ok":
        query = query.where(Conversation.due_at > warn)
    return query


@dataclass
class Page:
    items: list[Conversation]
    next_cursor: str | None
    contacts: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)


def page(session: Session, filters: Filters, *, user_id: int, now: datetime, warn_minutes: float,
         cursor: str | None = None, limit: int = 50) -> Page:
    """One page of the list, due first (then oldest id), with the contacts' and assignees' names."""
    team_ids = my_team_ids(session, user_id) if filters.view == "team" else []
    query = build(filters, user_id=user_id, team_ids=team_ids, now=now, warn_minutes=warn_minutes)
    if cursor:
        due, last_id = decode_cursor(cursor)
        query = query.where(or_(Conversation.due_at > due, and_(Conversation.due_at == due, Conversation.id > last_id)))
    # The names come in the same statement (one round trip): the contact's and the assignee's.
    query = (query.add_columns(Contact.display_name, User.display_name)
             .join(Contact, Contact.id == Conversation.contact_id)
             .outerjoin(User, User.id == Conversation.assignee_id))
    found = session.execute(query.order_by(Conversation.due_at, Conversation.id).limit(limit + 1)).all()
    more = len(found) > limit
    found = found[:limit]
    rows = [r[0] for r in found]
    contacts = {r[0].contact_id: r[1] for r in found}
    users = {r[0].assignee_id: r[2] for r in found if r[0].assignee_id is not None}
    return Page(rows, encode_cursor(rows[-1]) if more and rows else None, contacts, users)


def agents(session: Session) -> list[tuple[User, str, int]]:
    """Active users with their presence and open conversations, for assignment menus."""
    from inbox.models import AgentState

    rows = session.execute(select(User, AgentState.presence, AgentState.open_count)
                           .outerjoin(AgentState, AgentState.user_id == User.id)
                           .where(User.is_active.is_(True)).order_by(User.display_name, User.id)).all()
    return [(u, presence or Presence.OFFLINE.value, count or 0) for u, presence, count in rows]
