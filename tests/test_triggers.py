"""The trigger registry: which handlers an event's kind and direction choose, kept per pair."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hub.triggers import TriggerRegistry


def test_handlers_are_chosen_by_kind_and_direction_and_a_later_registration_is_seen() -> None:
    triggers = TriggerRegistry()
    ran: list[tuple[str, str]] = []

    def handler(name: str) -> Any:
        return lambda _session, *, event, contact: ran.append((name, event.direction))

    triggers.register("message", handler("inbox"))
    triggers.register("*", handler("campaigns"), outgoing=False)
    incoming, outgoing = SimpleNamespace(kind="message", direction="in"), SimpleNamespace(kind="message", direction="out")
    triggers.fire(None, event=incoming, contact=None)  # type: ignore[arg-type]
    triggers.fire(None, event=outgoing, contact=None)  # type: ignore[arg-type]
    assert ran == [("inbox", "in"), ("campaigns", "in"), ("inbox", "out")]
    assert triggers.listening({("message", "out")}) and not triggers.listening({("order.completed", "out")})
    # The choice is kept per (kind, direction); a handler registered after an event fired still runs.
    triggers.register("*", handler("notices"))
    ran.clear()
    triggers.fire(None, event=outgoing, contact=None)  # type: ignore[arg-type]
    assert ran == [("inbox", "out"), ("notices", "out")]
    assert triggers.listening({("order.completed", "out")})
