"""The audit log: every change a user or key makes to a contact."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.auth import Principal
from hub.models import AuditEntry


def record(session: Session, *, actor: Principal, action: str, entity: str, entity_id: object = None,
           contact_id: int | None = None, changes: dict[str, Any] | None = None) -> AuditEntry:
    """Add one entry in the caller's transaction (it commits with the change it describes)."""
    entry = AuditEntry(
        actor_kind=actor.kind.value,
        actor_id=None if actor.id is None else str(actor.id),
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        contact_id=contact_id,
        changes=changes or {},
    )
    session.add(entry)
    return entry


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Field changes as {field: [old, new]}, for one tracking entry per edit."""
    return {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}
