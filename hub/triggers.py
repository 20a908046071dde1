"""Reactions other packages register to timeline events (a sale schedules a survey, say).

Triggers run inside the transaction that inserts the event, and only when the event is new:
whatever they write (an outbox row, a scheduled invitation) commits with the event or not at all,
so a crash cannot lose it and a replayed webhook cannot double it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.models import Contact, TimelineEvent

log = logging.getLogger("hub.triggers")
ENTRY_POINT_GROUP = "hub.triggers"


class Trigger(Protocol):
    def __call__(self, session: Session, *, event: TimelineEvent, contact: Contact) -> None: ...


class TriggerRegistry:
    """Handlers by event kind ("order.completed"), or "*" for every kind."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Trigger]] = defaultdict(list)

    def register(self, kind: str, handler: Trigger) -> None:
        self._handlers[kind].append(handler)

    def on(self, kind: str) -> Callable[[Trigger], Trigger]:
        def decorate(handler: Trigger) -> Trigger:
            self.register(kind, handler)
            return handler

        return decorate

    def fire(self, session: Session, *, event: TimelineEvent, contact: Contact) -> None:
        for handler in [*self._handlers.get(event.kind, ()), *self._handlers.get("*", ())]:
            handler(session, event=event, contact=contact)

    def load_entry_points(self) -> None:
        """Let installed packages register triggers: each entry point is `setup(registry)`."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                setup = ep.load()
            except Exception as exc:
                raise RuntimeError(f"trigger package {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
            setup(self)
