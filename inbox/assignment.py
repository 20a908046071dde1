"""Who gets a conversation: the contact's owner, then the key-account manager, when available;
otherwise round-robin among the team's online agents under a per-agent cap; or a person's choice.

Safe across processes on both stores without a lock of our own: an agent's slot is taken by one
conditional UPDATE (`open_count < cap`), so two processes cannot push an agent over the cap, and
the conversation row is locked (FOR UPDATE; SQLite has one writer) while its assignee changes,
so an assignment racing a reassignment ends with one assignee and the counters right."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub import clock
from hub.db import is_postgres
from hub.models import Account, Contact, User
from inbox.models import AgentState, Conversation, Presence, TeamMember


def ensure_state(session: Session, user_id: int) -> None:
    """The agent's row, created offline with nothing assigned if missing (racing creators insert one)."""
    if session.scalar(select(AgentState.user_id).where(AgentState.user_id == user_id)) is not None:
        return
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(AgentState).values(user_id=user_id, presence=Presence.OFFLINE.value, open_count=0,
                                              updated_at=clock.now()).on_conflict_do_nothing(index_elements=["user_id"]))


def set_presence(session: Session, *, user_id: int, presence: Presence) -> None:
    ensure_state(session, user_id)
    session.execute(update(AgentState).where(AgentState.user_id == user_id)
                    .values(presence=presence.value, updated_at=clock.now()))


def take_slot(session: Session, user_id: int, *, default_cap: int, online_only: bool) -> bool:
    """Count one more open conversation for this agent if under the cap (and online); whether it did."""
    ensure_state(session, user_id)
    cap = func.coalesce(AgentState.cap, default_cap)
    stmt = (update(AgentState).where(AgentState.user_id == user_id, AgentState.open_count < cap)
            .values(open_count=AgentState.open_count + 1, last_assigned_at=clock.now())
            .execution_options(synchronize_session=False))
    if online_only:
        stmt = stmt.where(AgentState.presence == Presence.ONLINE.value)
    return session.execute(stmt).rowcount == 1


def release_slot(session: Session, user_id: int | None) -> None:
    if user_id is None:
        return
    session.execute(update(AgentState).where(AgentState.user_id == user_id, AgentState.open_count > 0)
                    .values(open_count=AgentState.open_count - 1).execution_options(synchronize_session=False))


def preferred(session: Session, contact: Contact) -> list[tuple[int, str]]:
    """(user id, rule) of the people who know this customer, in order: owner, key-account manager."""
    out = []
    if contact.owner_id is not None:
        out.append((contact.owner_id, "owner"))
    if contact.account_id is not None:
        account = session.get(Account, contact.account_id)
        if account is not None and account.is_key and account.owner_id is not None:
            out.append((account.owner_id, "key_account_manager"))
    return out


def _active(session: Session, user_id: int) -> bool:
    return bool(session.scalar(select(User.is_active).where(User.id == user_id)))


def round_robin_order(session: Session, team_id: int | None) -> list[int]:
    """The team's online agents, the one assigned longest ago first (everyone online without a team)."""
    query = (select(AgentState.user_id).join(User, User.id == AgentState.user_id)
             .where(AgentState.presence == Presence.ONLINE.value, User.is_active.is_(True)))
    if team_id is not None:
        query = query.join(TeamMember, TeamMember.user_id == AgentState.user_id).where(TeamMember.team_id == team_id)
    # Never assigned sorts first on both stores (NULLs differ: coalesce to the epoch).
    from datetime import datetime, timezone

    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    # Ties (the same instant) go to the least loaded.
    query = query.order_by(func.coalesce(AgentState.last_assigned_at, epoch), AgentState.open_count, AgentState.user_id)
    return list(session.scalars(query))


def choose(session: Session, conv: Conversation, contact: Contact, *, default_cap: int,
           exclude: int | None = None) -> tuple[int | None, str]:
    """Take a slot for the best available agent; (user id, rule) or (None, "none")."""
    for user_id, rule in preferred(session, contact):
        if user_id != exclude and _active(session, user_id) and take_slot(session, user_id, default_cap=default_cap,
                                                                           online_only=True):
            return user_id, rule
    for user_id in round_robin_order(session, conv.team_id):
        if user_id != exclude and take_slot(session, user_id, default_cap=default_cap, online_only=True):
            return user_id, "round_robin"
    return None, "none"


def open_counts(session: Session) -> dict[int, int]:
    """The true number of unresolved conversations per assignee (to check or repair the counters)."""
    rows = session.execute(select(Conversation.assignee_id, func.count()).where(
        Conversation.status != "resolved", Conversation.assignee_id.is_not(None)).group_by(Conversation.assignee_id))
    return {r[0]: r[1] for r in rows}
