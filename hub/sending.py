"""Sending rules the worker checks on each claimed delivery, just before it goes out.

A rule is a `SendGate`: given a claimed message it answers nothing (go ahead), `defer(until)` (not
now: quiet hours, a frequency cap, an exhausted rate budget) or `skip(reason)` (never: consent
withdrawn, address suppressed). Checking at send time, not when the audience was computed, is the
point: a contact who unsubscribed a minute ago must not get the campaign queued an hour ago.
Extensions contribute gates through `Extension.send_gates()`; the worker runs all of them in one
read-only session per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from channels.base import OutboundMessage
    from hub.runtime import Hub

log = logging.getLogger("hub.sending")


class Verdict(StrEnum):
    SEND = "send"
    DEFER = "defer"
    SKIP = "skip"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    until: datetime | None = None

    @classmethod
    def defer(cls, until: datetime, reason: str) -> Decision:
        return cls(Verdict.DEFER, reason, until)

    @classmethod
    def skip(cls, reason: str) -> Decision:
        return cls(Verdict.SKIP, reason)


SEND = Decision(Verdict.SEND)


class SendGate(Protocol):
    """One sending rule; `check` returns None to let the message go."""

    name: str

    def check(self, session: Session, *, message: OutboundMessage, now: datetime) -> Decision | None: ...


def gates_of(hub: Hub) -> list[SendGate]:
    """Every gate the installed extensions contribute, in extension-name order."""
    gates: list[SendGate] = []
    for _name, extension in sorted(hub.extensions.items()):
        gates.extend(extension.send_gates())
    return gates


def decide(hub: Hub, messages: Sequence[OutboundMessage], *, now: datetime,
           gates: Sequence[SendGate] | None = None) -> list[Decision]:
    """The first objection of any gate to each message, or SEND; aligned with `messages`."""
    gates = gates_of(hub) if gates is None else list(gates)
    if not gates or not messages:
        return [SEND] * len(messages)
    decisions: list[Decision] = []
    with hub.session(read_only=True) as session:
        for message in messages:
            decision = SEND
            for gate in gates:
                found = gate.check(session, message=message, now=now)
                if found is not None and found.verdict != Verdict.SEND:
                    decision = found
                    break
            decisions.append(decision)
    return decisions
