"""Reactions other packages register to timeline events (a sale schedules a survey, say).

Triggers run inside the transaction that inserts the event, and only when the event is new:
whatever they write (an outbox row, a scheduled invitation) commits with the event or not at all,
so a crash cannot lose it and a replayed webhook cannot double it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Protocol

from hub.models import Direction
from hub.plugin import load_group

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.models import Contact, TimelineEvent

log = logging.getLogger("hub.triggers")
ENTRY_POINT_GROUP = "hub.triggers"


class Trigger(Protocol):
    """`event` is the new event: a `TimelineEvent` from `post_event`, a read-only row of timeline_event
    (each column an attribute, the same values) from `post_events`. Read it; do not change it."""

    def __call__(self, session: Session, *, event: TimelineEvent, contact: Contact) -> None: ...


class TriggerRegistry:
    """Handlers by event kind ("order.completed"), or "*" for every kind. A handler registered with
    outgoing=False never sees the hub's own outgoing messages (a campaign sends thousands)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[Trigger, bool]]] = defaultdict(list)
        # (kind, direction) -> the handlers that run, worked out once: every new event asks.
        self._chosen: dict[tuple[str, str], tuple[Trigger, ...]] = {}

    def register(self, kind: str, handler: Trigger, *, outgoing: bool = True) -> None:
        self._handlers[kind].append((handler, outgoing))
        self._chosen.clear()

    def on(self, kind: str, *, outgoing: bool = True) -> Callable[[Trigger], Trigger]:
        def decorate(handler: Trigger) -> Trigger:
            self.register(kind, handler, outgoing=outgoing)
            return handler

        return decorate

    def _for(self, kind: str, direction: str) -> tuple[Trigger, ...]:
        chosen = self._chosen.get((kind, direction))
        if chosen is None:
            chosen = self._chosen[(kind, direction)] = tuple(
                handler for handler, outgoing in (*self._handlers.get(kind, ()), *self._handlers.get("*", ()))
                if outgoing or direction != Direction.OUT)
        return chosen

    def listening(self, events: set[tuple[str, str]]) -> bool:
        """Whether any handler would run for one of these (kind, direction) pairs; if not, a batch
        of new events need not be loaded as rows to fire nothing."""
        return any(self._for(kind, direction) for kind, direction in events)

    def fire(self, session: Session, *, event: TimelineEvent, contact: Contact) -> None:
        for handler in self._for(event.kind, str(event.direction)):
            handler(session, event=event, contact=contact)

    def load_entry_points(self) -> None:
        """Let installed packages register triggers: each entry point is `setup(registry)`."""
        for setup in load_group(ENTRY_POINT_GROUP, what="trigger package").values():
            setup(self)
