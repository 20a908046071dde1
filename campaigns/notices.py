"""The campaign notices this package adds to the hub's event catalogue (hub.notices)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from hub.notices import NoticeData, NoticeType, timeline_example, timeline_type


class RunData(NoticeData):
    campaign_id: int
    run_id: int
    campaign_name: str
    contact_id: int | None = Field(None, description="The contact whose event triggered the run (triggered campaigns)")
    at: datetime


NOTICE_TYPES = [
    NoticeType("campaign.started", 1, RunData, "A campaign run started: its audience is being computed and sent.",
               {"campaign_id": 5, "run_id": 31, "campaign_name": "Декабрьская рассылка", "contact_id": None,
                "at": "2026-12-06T09:00:00+00:00"}),
    NoticeType("campaign.finished", 1, RunData, "A campaign run finished: every recipient's messages left the outbox.",
               {"campaign_id": 5, "run_id": 31, "campaign_name": "Декабрьская рассылка", "contact_id": None,
                "at": "2026-12-06T09:40:00+00:00"}),
    timeline_type("contact.unsubscribed", "A contact unsubscribed from a campaign's messages (link or List-Unsubscribe).",
                  (("campaign.unsubscribed", None),),
                  timeline_example("campaign.unsubscribed", "campaigns", "in", {"campaign_id": 5})),
]
