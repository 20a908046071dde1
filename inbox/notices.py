"""The conversation notices this package adds to the hub's event catalogue (hub.notices), so
outbound webhooks can carry them: opened, assigned, resolved and SLA breached."""

from __future__ import annotations

from pydantic import Field

from hub.notices import NoticeData, NoticeType


class ConversationData(NoticeData):
    conversation_id: int
    contact_id: int
    channel: str
    status: str = Field(description="open, waiting, snoozed or resolved")
    priority: str
    assignee_id: int | None = None
    team_id: int | None = None
    reopened: bool | None = Field(default=None, description="conversation.opened: a resolved one came back")
    previous_assignee_id: int | None = Field(default=None, description="conversation.assigned")
    rule: str | None = Field(default=None, description="conversation.assigned: owner, key_account, round_robin, "
                                                        "manual …")
    target: str | None = Field(default=None, description="conversation.sla_breached: first_response, "
                                                          "next_response or resolution")
    due_at: str | None = Field(default=None, description="conversation.sla_breached: when it was due (ISO 8601)")


_EXAMPLE = {"conversation_id": 51, "contact_id": 42, "channel": "email", "status": "open", "priority": "normal",
            "assignee_id": 3, "team_id": 1}

NOTICE_TYPES = [
    NoticeType("conversation.opened", 1, ConversationData,
               "An inbound message that expects an answer opened a conversation (or reopened a resolved one).",
               {**_EXAMPLE, "assignee_id": None, "reopened": False}),
    NoticeType("conversation.assigned", 1, ConversationData,
               "A conversation got an assignee (by a rule or by hand), or lost one.",
               {**_EXAMPLE, "previous_assignee_id": None, "rule": "round_robin"}),
    NoticeType("conversation.resolved", 1, ConversationData, "A conversation was resolved.",
               {**_EXAMPLE, "status": "resolved"}),
    NoticeType("conversation.sla_breached", 1, ConversationData,
               "A conversation missed a service-level target (once per target).",
               {**_EXAMPLE, "target": "first_response", "due_at": "2026-12-07T10:00:00+03:00"}),
]
