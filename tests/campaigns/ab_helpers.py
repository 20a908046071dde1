"""Factories the A/B tests share: a campaign with a test, and engagement recorded the way the
tracking routes record it."""

from __future__ import annotations

from typing import Any

from campaigns.tracking.service import find_delivery, record_click
from hub.models import DeliveryStatus
from hub.runtime import Hub
from tests.campaigns.helpers import add_contacts, deliveries, make_campaign, make_segment, make_template, recipients


def ab_campaign(hub: Hub, n: int, *, share: int = 50, metric: str = "click", wait: int = 60, seed: int = 42,
                variants: list[dict[str, Any]] | None = None, schedule: bool = True, **fields: Any) -> int:
    """n contacts and a campaign testing two subjects (by default) on `share` % of them."""
    add_contacts(hub, n)
    template = make_template(hub)
    test = {"share_percent": share, "metric": metric, "wait_minutes": wait, "seed": seed,
            "variants": variants or [{"subject": "Subject A"}, {"subject": "Subject B"}]}
    return make_campaign(hub, segment_id=make_segment(hub), template_ids=[template], ab_test=test, schedule=schedule,
                         **fields)


def click(hub: Hub, campaign_id: int, contact_ids: set[int]) -> int:
    """A click on the tracked link of each of these contacts' messages; how many were recorded."""
    done = 0
    for delivery in deliveries(hub, campaign_id):
        if delivery.contact_id in contact_ids:
            with hub.session() as s, s.begin():
                tracked = find_delivery(s, delivery.idempotency_key)
                assert tracked is not None
                done += record_click(s, tracked, url="https://shop.example.com/sale")
    return done


def by_variant(hub: Hub, campaign_id: int) -> dict[str | None, list[int]]:
    """Test recipients' contacts per variant (None: the rest)."""
    out: dict[str | None, list[int]] = {}
    for r in recipients(hub, campaign_id):
        out.setdefault(r.variant if r.ab_role == "test" else None, []).append(r.contact_id)
    return out


def subjects(hub: Hub, campaign_id: int) -> dict[int, list[str]]:
    """The subjects each contact's messages carried, in the order they were queued."""
    out: dict[int, list[str]] = {}
    for d in deliveries(hub, campaign_id):
        if d.status != DeliveryStatus.CANCELLED:
            out.setdefault(d.contact_id, []).append(d.content["subject"])  # type: ignore[index]
    return out
