"""The demo survey loads once, with answers, and sends nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from campaigns.surveys.demo import demo
from campaigns.surveys.models import Survey, SurveyInvitation, SurveyResponse
from hub.auth import SYSTEM
from hub.events import BusinessEvent, record_business_event
from hub.models import Delivery


def count(hub, model) -> int:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_demo_is_idempotent_and_sends_nothing(hub):
    with hub.session() as session, session.begin():
        for n in range(8):
            record_business_event(session, actor=SYSTEM, event=BusinessEvent.model_validate({
                "event_id": f"demo-{n}", "type": "order.completed", "source": "shop",
                "contact": {"email": f"buyer{n}@example.com", "name": f"Покупатель {n}"},
                "order": {"order_id": str(n), "amount": f"{1000 + n * 700}.00", "currency": "RUB", "items": []},
            }))
    first = demo(hub, seed=7)
    assert "created" in first and "8 invitations" in first
    counts = (count(hub, Survey), count(hub, SurveyInvitation), count(hub, SurveyResponse))
    assert counts == (1, 8, 6)
    assert "found" in demo(hub, seed=7)
    assert (count(hub, Survey), count(hub, SurveyInvitation), count(hub, SurveyResponse)) == counts
    assert count(hub, Delivery) == 0
