"""Engagement on the timeline: one `campaign.opened` per delivery, one `campaign.clicked` per delivery
and URL, each idempotent through post_event's (channel, external_id) key, so a pixel loaded ten
times or a link clicked twice counts once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from hub.ingest import ContactNotFound, InboundEvent, post_event
from hub.models import Delivery, Direction, TimelineEvent
from hub.utm import utm_params

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.runtime import Hub


@dataclass(frozen=True)
class Tracked:
    delivery_id: int
    channel: str
    contact_id: int | None
    campaign_id: int | None
    campaign_run_id: int | None


def find_delivery(session: Session, delivery_key: str) -> Tracked | None:
    """The delivery a tracking token names, with the campaign its outbound event was posted for."""
    row = session.execute(
        select(Delivery.id, Delivery.channel, Delivery.contact_id, TimelineEvent.data)
        .outerjoin(TimelineEvent, TimelineEvent.id == Delivery.event_id)
        .where(Delivery.idempotency_key == delivery_key)
    ).first()
    if row is None:
        return None
    data = row.data or {}
    campaign = data.get("campaign_id")
    run = data.get("campaign_run_id")  # the run's campaign.message event says which run sent it
    return Tracked(row.id, row.channel, row.contact_id, campaign if isinstance(campaign, int) else None,
                   run if isinstance(run, int) else None)


def _post(session: Session, tracked: Tracked, *, kind: str, external_id: str, extra: dict[str, Any] | None = None,
          text: str | None = None) -> bool:
    if tracked.contact_id is None:  # an erased contact's delivery: nobody's timeline to write on
        return False
    data: dict[str, Any] = {"campaign_id": tracked.campaign_id, "campaign_run_id": tracked.campaign_run_id,
                            "delivery_id": tracked.delivery_id, **(extra or {})}
    try:
        result = post_event(session, event=InboundEvent(
            channel=tracked.channel, kind=kind, direction=Direction.IN, external_id=external_id,
            contact_id=tracked.contact_id, data=data, text=text,
            thread_key=f"campaign:{tracked.campaign_id}" if tracked.campaign_id is not None else None,
        ))
    except ContactNotFound:
        return False
    return result.created


def record_open(session: Session, tracked: Tracked, *, implied: bool = False) -> bool:
    """One open per delivery; True if this was the first. `implied`: a click showed the mail was read."""
    return _post(session, tracked, kind="campaign.opened", external_id=f"open:{tracked.delivery_id}",
                 extra={"implied_by_click": True} if implied else None)


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def record_click(session: Session, tracked: Tracked, *, url: str) -> bool:
    """One click per delivery and URL; True if this was the first. A click also counts as an open
    (images are often blocked, so the pixel alone undercounts)."""
    record_open(session, tracked, implied=True)
    return _post(session, tracked, kind="campaign.clicked", external_id=f"click:{tracked.delivery_id}:{url_key(url)}",
                 extra={"url": url, **({"utm": utm} if (utm := utm_params(url)) else {})}, text=url)


def track_open(hub: Hub, delivery_key: str) -> bool:
    with hub.session() as session, session.begin():
        tracked = find_delivery(session, delivery_key)
        return tracked is not None and record_open(session, tracked)


def track_click(hub: Hub, delivery_key: str, url: str) -> bool:
    with hub.session() as session, session.begin():
        tracked = find_delivery(session, delivery_key)
        return tracked is not None and record_click(session, tracked, url=url)
