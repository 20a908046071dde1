"""The key-account notice this package adds to the hub's event catalogue (hub.notices)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hub.notices import NoticeData, NoticeType


class CoolingData(NoticeData):
    account_id: int
    account_name: str
    episode_id: int
    score: int = Field(description="Temperature 0-100 when the episode opened")
    reasons: dict[str, dict[str, Any]] = Field(description="Why it counts as cooling: cold, sharp_drop, silence")
    owner_id: int | None = None


NOTICE_TYPES = [
    NoticeType("key_account.cooling", 1, CoolingData,
               "A key account started cooling (one notice per episode, not per temperature reading).",
               {"account_id": 12, "account_name": "ООО Ромашка", "episode_id": 4, "score": 31,
                "reasons": {"cold": {"score": 31, "below": 40}}, "owner_id": 3}),
]
