"""Service levels: which policy a conversation falls under, its due times in business hours, and
the moments the escalation tick must look at it (near-breach, then breach, of each target)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from inbox.hours import Calendar
from inbox.models import NO_DUE, Conversation, Escalation, Team

if TYPE_CHECKING:
    from inbox.settings import InboxSettings, SlaPolicy

TARGETS = ("first_response", "next_response", "resolution")


def policy_for(settings: InboxSettings, *, channel: str, priority: str, key_account: bool) -> SlaPolicy | None:
    """The most specific policy matching the conversation (channel, priority, key flag), or None."""
    best, best_score = None, -1
    for policy in settings.policies:
        if policy.channel not in (None, channel) or policy.priority not in (None, priority):
            continue
        if policy.key_account is not None and policy.key_account != key_account:
            continue
        score = (policy.channel is not None) * 4 + (policy.key_account is not None) * 2 + (policy.priority is not None)
        if score > best_score:
            best, best_score = policy, score
    return best


def calendar_of(session: Session, settings: InboxSettings, team_id: int | None) -> Calendar:
    """The team's business hours, or the extension's default calendar when there is no team."""
    team = session.get(Team, team_id) if team_id is not None else None
    if team is not None and team.hours:
        return Calendar.of(time_zone=team.time_zone, hours=team.hours, holidays=team.holidays)
    return Calendar.of(time_zone=team.time_zone if team else settings.time_zone, hours=settings.hours,
                       holidays=settings.holidays)


@dataclass(frozen=True)
class Clock:
    """What sets due times: the policy and the calendar they are counted in."""

    policy: SlaPolicy | None
    calendar: Calendar


def clock_for(session: Session, settings: InboxSettings, conv: Conversation) -> Clock:
    policy = policy_for(settings, channel=conv.channel, priority=conv.priority, key_account=conv.key_account)
    return Clock(policy, calendar_of(session, settings, conv.team_id))


def start_cycle(conv: Conversation, clock: Clock, *, at: datetime, first: bool) -> None:
    """Set the targets a new conversation (first=True) or a reopened one starts with."""
    policy = clock.policy
    if policy is None:
        conv.policy = None
        conv.first_response_due_at = conv.resolution_due_at = conv.next_response_due_at = None
    else:
        conv.policy = policy.name
        if first and policy.first_response_minutes is not None:
            conv.first_response_due_at = clock.calendar.add(at, policy.first_response_minutes)
        elif not first and policy.next_response_minutes is not None:
            conv.next_response_due_at = clock.calendar.add(at, policy.next_response_minutes)
        if policy.resolution_minutes is not None:
            conv.resolution_due_at = clock.calendar.add(at, policy.resolution_minutes)
    refresh(conv, clock)


def customer_wrote(conv: Conversation, clock: Clock, *, at: datetime) -> None:
    """A new inbound message: a next response is due unless one is already awaited."""
    policy = clock.policy
    if (policy is not None and policy.next_response_minutes is not None and conv.first_response_at is not None
            and conv.next_response_due_at is None):
        conv.next_response_due_at = clock.calendar.add(at, policy.next_response_minutes)
    refresh(conv, clock)


def agent_answered(conv: Conversation, clock: Clock) -> None:
    conv.first_response_due_at = None
    conv.next_response_due_at = None
    refresh(conv, clock)


def dues(conv: Conversation) -> dict[str, datetime]:
    """The targets still running: none while the conversation waits on the customer or sleeps,
    except resolution, which keeps counting until it is resolved."""
    out = {}
    if conv.status == "open":
        if conv.first_response_due_at is not None:
            out["first_response"] = conv.first_response_due_at
        if conv.next_response_due_at is not None:
            out["next_response"] = conv.next_response_due_at
    if conv.status != "resolved" and conv.resolution_due_at is not None:
        out["resolution"] = conv.resolution_due_at
    return out


def thresholds(conv: Conversation, clock: Clock) -> list[tuple[str, str, datetime, datetime]]:
    """(target, level, due, moment) of every escalation the running targets can still cause."""
    warn = timedelta(minutes=clock.policy.warn_minutes_before if clock.policy else 0)
    out = []
    for target, due in dues(conv).items():
        if warn:
            out.append((target, "warning", due, due - warn))
        out.append((target, "breach", due, due))
    return out


def refresh(conv: Conversation, clock: Clock, *, done: set[tuple[str, str, datetime]] | None = None) -> None:
    """Recompute the sort key (earliest running due time) and when the tick must look next."""
    running = dues(conv)
    conv.due_at = min(running.values(), default=NO_DUE)
    pending = [moment for target, level, due, moment in thresholds(conv, clock)
               if (target, level, due) not in (done or set())]
    conv.check_at = min(pending, default=None)


def escalated(session: Session, conv_id: int) -> set[tuple[str, str, datetime]]:
    rows = session.execute(select(Escalation.target, Escalation.level, Escalation.due_at)
                           .where(Escalation.conversation_id == conv_id)).all()
    return {(r.target, r.level, r.due_at) for r in rows}


def state(conv: Conversation, now: datetime, *, warn_minutes: float) -> str:
    """ok, near (within the warning time of a due) or breached, as shown and filtered in the inbox."""
    if conv.due_at >= NO_DUE:
        return "none"
    if conv.due_at <= now:
        return "breached"
    if conv.due_at - timedelta(minutes=warn_minutes) <= now:
        return "near"
    return "ok"
