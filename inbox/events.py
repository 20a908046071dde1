"""The conversation events other parts of the hub may subscribe to: opened, assigned, resolved and
sla_breached. Each function is called where the change happens, inside its transaction.

Each one publishes a live message to agents' inbox pages after the commit, and the four the
catalogue names (inbox/notices.py) are emitted as notices in the change's transaction, so outbound
webhooks carry them (hub.notices)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub import notices
from hub.db import after_commit
from inbox.models import Conversation

TOPIC = "inbox"
_NOTICES = frozenset({"opened", "assigned", "resolved", "sla_breached"})


def _payload(conv: Conversation) -> dict[str, Any]:
    return {"conversation_id": conv.id, "contact_id": conv.contact_id, "channel": conv.channel,
            "status": conv.status, "priority": conv.priority, "assignee_id": conv.assignee_id,
            "team_id": conv.team_id}


def publish(session: Session, kind: str, conv: Conversation, **extra: Any) -> None:
    """After the commit: tell every open inbox page that this conversation changed."""
    hub = session.info.get("hub")
    if hub is None:
        return
    message = {"type": f"conversation.{kind}", **_payload(conv), **extra}
    after_commit(session, lambda: hub.broker.publish(TOPIC, message))
    if kind in _NOTICES:
        notices.emit(session, f"conversation.{kind}", subject=f"contact:{conv.contact_id}",
                     data={**_payload(conv), **extra})


def opened(session: Session, conv: Conversation, *, reopened: bool = False) -> None:
    publish(session, "opened", conv, reopened=reopened)


def assigned(session: Session, conv: Conversation, *, previous_id: int | None, rule: str) -> None:
    publish(session, "assigned", conv, previous_assignee_id=previous_id, rule=rule)


def resolved(session: Session, conv: Conversation) -> None:
    publish(session, "resolved", conv)


def sla_breached(session: Session, conv: Conversation, *, target: str, due_at: Any) -> None:
    publish(session, "sla_breached", conv, target=target, due_at=due_at.isoformat())


def changed(session: Session, conv: Conversation, *, what: str) -> None:
    """Any other change an inbox list shows (a new message, a status, a priority, a warning)."""
    publish(session, "updated", conv, what=what)
