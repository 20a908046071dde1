"""What each figure is made of: the rows behind a profit's lines, as a page lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Delivery, Task, TimelineEvent
from keyaccounts.profit import Profit

SHOWN_PER_LINE = 50


@dataclass(frozen=True)
class TraceItem:
    ref: str
    contact_id: int | None
    occurred_at: datetime | None
    label: str
    href: str | None


def trace(session: Session, profit: Profit, *, limit: int = SHOWN_PER_LINE) -> dict[str, list[TraceItem]]:
    """For each cost line and for "orders", its newest rows (at most `limit`), one query per source."""
    wanted = {name: line.refs[-limit:] for name, line in profit.lines.items()}
    wanted["orders"] = [f"event:{o.event_id}" for o in profit.orders[-limit:]]
    ids: dict[str, set[int]] = {"event": set(), "task": set(), "delivery": set()}
    for refs in wanted.values():
        for ref in refs:
            kind, _, raw = ref.partition(":")
            ids[kind].add(int(raw))
    found: dict[str, TraceItem] = {}
    if ids["event"]:
        for e in session.scalars(select(TimelineEvent).where(TimelineEvent.id.in_(sorted(ids["event"])))):
            found[f"event:{e.id}"] = TraceItem(f"event:{e.id}", e.contact_id, e.occurred_at,
                                               e.subject or (e.text or "")[:120] or e.kind,
                                               f"/contacts/{e.contact_id}#event-{e.id}")
    if ids["task"]:
        for t in session.scalars(select(Task).where(Task.id.in_(sorted(ids["task"])))):
            found[f"task:{t.id}"] = TraceItem(f"task:{t.id}", t.contact_id, t.created_at, t.title,
                                              f"/contacts/{t.contact_id}" if t.contact_id else None)
    if ids["delivery"]:
        for d in session.scalars(select(Delivery).where(Delivery.id.in_(sorted(ids["delivery"])))):
            found[f"delivery:{d.id}"] = TraceItem(f"delivery:{d.id}", d.contact_id, d.sent_at,
                                                  f"{d.channel} → {d.address}",
                                                  f"/contacts/{d.contact_id}" if d.contact_id else None)
    return {name: sorted((found[r] for r in refs if r in found),
                         key=lambda item: item.occurred_at or datetime.min, reverse=True)
            for name, refs in wanted.items()}
