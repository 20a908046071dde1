"""Timeline events as the contact page shows them: icon, labels, day headings, threads, previews."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import nh3
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import TimelineEvent
from hub.plugin import Plugin, installed
from hub.timeline import EventRow, Page, TimelineFilter, timeline_page
from hub.web.i18n import N_, Formatter

PAGE_SIZE = 30
PREVIEW_CHARS = 600



class _WithPlugins(Mapping[str, str]):
    """The core's own entries, then what the installed plug-ins declare (hub.plugin: timeline
    channels and event kinds), read on first use since plug-ins import this module."""

    def __init__(self, core: dict[str, str], declared: Callable[[type[Plugin]], Iterable[tuple[str, str]]]) -> None:
        self._core, self._declared = core, declared
        self._merged: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self._merged is None:
            merged = dict(self._core)
            for cls in installed():
                for key, value in self._declared(cls):
                    merged.setdefault(key, value)
            self._merged = merged
        return self._merged

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


# The core's own timeline channels and kinds (tasks, orders, erasure); plug-ins declare theirs.
# Icons are symbols of templates/ui/_icons.html; unknown channels get a generic one.
CHANNEL_ICONS: Mapping[str, str] = _WithPlugins(
    {"task": "task", "commerce": "cart"},
    lambda cls: ((c.name, c.icon) for c in cls.timeline_channels))
CHANNEL_LABELS: Mapping[str, str] = _WithPlugins(
    {"task": N_("Task"), "commerce": N_("Orders")},
    lambda cls: ((c.name, c.label) for c in cls.timeline_channels))
DIRECTION_LABELS = {"in": N_("Inbound"), "out": N_("Outbound"), "internal": N_("Internal")}
STATUS_LABELS = {
    "queued": N_("Queued"), "sending": N_("Sending"), "sent": N_("Sent"), "delivered": N_("Delivered"),
    "read": N_("Read"), "failed": N_("Failed"), "undelivered": N_("Undelivered"), "bounced": N_("Bounced"),
    "dead": N_("Failed"), "cancelled": N_("Cancelled"),
}
STATUS_TONES = {
    "queued": "neutral", "sending": "neutral", "sent": "info", "delivered": "ok", "read": "ok",
    "failed": "bad", "undelivered": "bad", "bounced": "bad", "dead": "bad", "cancelled": "neutral",
}
KIND_LABELS: Mapping[str, str] = _WithPlugins(
    {"task.created": N_("Task created"), "task.completed": N_("Task completed"), "order.completed": N_("Order"),
     "order.refunded": N_("Refund"), "message": N_("Message"), "privacy.erased": N_("Personal data erased")},
    lambda cls: ((k.kind, k.label) for k in cls.event_kinds))


def score_kinds() -> tuple[str, ...]:
    """Kinds whose data carries a numeric "score" (survey answers), as plug-ins declare them."""
    return tuple(sorted({k.kind for cls in installed() for k in cls.event_kinds if k.score}))


@dataclass(frozen=True)
class EventView:
    event: TimelineEvent | EventRow  # a page's rows, or a thread's ORM objects
    icon: str
    channel_label: str
    kind_label: str
    direction: str
    direction_label: str
    status: str | None
    status_label: str
    status_tone: str
    preview: str
    long: bool
    has_html: bool
    thread_count: int
    day: date
    day_changed: bool


def channel_label(name: str, channels: dict[str, Any]) -> str:
    if name in CHANNEL_LABELS:
        return CHANNEL_LABELS[name]
    channel = channels.get(name)
    return getattr(channel, "label", "") or name.replace("_", " ").capitalize()


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind) or kind.replace(".", " ").replace("_", " ").capitalize()


def plain_text(event: TimelineEvent) -> str:
    """The event's text, or its HTML reduced to text when it has only HTML."""
    if event.text:
        return event.text
    if event.html:
        return " ".join(nh3.clean(event.html, tags=set(), clean_content_tags={"script", "style", "title"}).split())
    return ""


def order_text(event: TimelineEvent, fmt: Formatter) -> str | None:
    """An order's amount and items in the page's locale ("3 336 600,00 ₽", as the card's totals),
    read from the event's data rather than its stored English text ("165400.00 RUB")."""
    order = (event.data or {}).get("order")
    if not isinstance(order, dict) or not isinstance(order.get("currency"), str):
        return None
    currency = order["currency"]
    try:
        lines = [fmt.money(order["amount"], currency)]
        for item in order.get("items") or []:
            sku = f" ({item['sku']})" if item.get("sku") else ""
            lines.append(f"{item['quantity']} × {item['name']}{sku} · {fmt.money(item['unit_price'], currency)}")
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return None  # data written by an older version: its stored text is still right
    return "\n".join(lines)


def thread_counts(session: Session, *, contact_id: int, keys: Sequence[str]) -> dict[str, int]:
    """How many events each conversation on a page has in all."""
    if not keys:
        return {}
    rows = session.execute(
        select(TimelineEvent.thread_key, func.count())
        .where(TimelineEvent.contact_id == contact_id, TimelineEvent.thread_key.in_(sorted(set(keys))))
        .group_by(TimelineEvent.thread_key)
    ).all()
    return {key: count for key, count in rows}


def views(session: Session, events: Sequence[TimelineEvent | EventRow], *, contact_id: int, fmt: Formatter,
          channels: dict[str, Any], previous_day: date | None = None) -> list[EventView]:
    counts = thread_counts(session, contact_id=contact_id, keys=[e.thread_key for e in events if e.thread_key])
    out = []
    day_before = previous_day
    for event in events:
        day = fmt.local(event.occurred_at).date()
        text = order_text(event, fmt) or plain_text(event)
        label = channel_label(event.channel, channels)
        kind = kind_label(event.kind)
        out.append(EventView(
            event=event,
            icon=CHANNEL_ICONS.get(event.channel, "dot"),
            channel_label=label,
            # "SMS · SMS" says nothing twice: the kind shows only when it adds something.
            kind_label="" if kind.casefold() == label.casefold() else kind,
            direction=event.direction,
            direction_label=DIRECTION_LABELS.get(event.direction, event.direction),
            status=event.status,
            status_label=STATUS_LABELS.get(event.status or "", (event.status or "").capitalize()),
            status_tone=STATUS_TONES.get(event.status or "", "neutral"),
            preview=text[:PREVIEW_CHARS],
            long=len(text) > PREVIEW_CHARS,
            has_html=bool(event.html),
            thread_count=counts.get(event.thread_key or "", 0),
            day=day,
            day_changed=day != day_before,
        ))
        day_before = day
    return out


def parse_filters(channel: Sequence[str], kind: Sequence[str], q: str | None) -> TimelineFilter:
    # Bounded: the values come from a query string anyone can write.
    return TimelineFilter(
        channels=frozenset(c[:40] for c in channel[:20] if c),
        kinds=frozenset(k[:60] for k in kind[:40] if k),
        text=(q or "").strip()[:200] or None,
    )


def page(session: Session, *, contact_id: int, filters: TimelineFilter, cursor: str | None,
         limit: int = PAGE_SIZE) -> Page[EventRow]:
    """One page through the hub's one read path."""
    return timeline_page(session, contact_id=contact_id, limit=limit, cursor=cursor, filters=filters)


FACET_WINDOW = 2000


def facets(session: Session, *, contact_id: int, installed: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """The channels and kinds to offer as filters: what the contact's recent history holds.

    Only the newest FACET_WINDOW events are looked at, so a long history costs no more than a short
    one; channels installed on this hub are always offered.
    """
    recent = (
        select(TimelineEvent.channel, TimelineEvent.kind)
        .where(TimelineEvent.contact_id == contact_id)
        .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc())
        .limit(FACET_WINDOW)
    ).subquery()
    rows = session.execute(select(recent.c.channel, recent.c.kind).distinct()).all()
    present = {c for c, _ in rows}
    return sorted(present | {c for c in installed if c in CHANNEL_LABELS}), sorted({k for _, k in rows})


def thread(session: Session, *, contact_id: int, key: str, limit: int = 200) -> list[TimelineEvent]:
    """A conversation's latest `limit` messages, in the order they were exchanged."""
    newest = session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.contact_id == contact_id, TimelineEvent.thread_key == key)
        .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc())
        .limit(limit)
    )
    return list(reversed(list(newest)))
