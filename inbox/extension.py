"""What the hub loads from the `hub.extensions` entry point `inbox`: the agents' inbox of
conversations, with assignment, service levels, canned responses and out-of-hours replies.
Its settings are `[extensions.inbox]` (inbox.settings.InboxSettings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import inbox.models  # noqa: F401  - registers the tables
from hub.extensions import ContactPanel, Extension, NavEntry
from hub.web.i18n import N_
from inbox.settings import InboxSettings

if TYPE_CHECKING:
    from fastapi import APIRouter

    from hub.channel import PeriodicJob
    from hub.notices import NoticeType
    from hub.triggers import TriggerRegistry

# Outbound kinds an agent's reply can have (a logged call back answers a missed call).
REPLY_KINDS = ("message", "call")


class InboxExtension(Extension):
    name = "inbox"
    Settings = InboxSettings
    permissions = {"conversations:read": ("agent", "marketer"), "conversations:write": ("agent", "marketer")}

    def register_triggers(self, triggers: TriggerRegistry) -> None:
        from inbox.service import on_event

        kinds = {kind for _channel, kind in self.settings.answerable} | set(REPLY_KINDS)  # type: ignore[attr-defined]
        for kind in sorted(kinds):
            triggers.register(kind, on_event)

    def web_router(self) -> APIRouter:
        from inbox.views import router

        return router

    def api_router(self) -> APIRouter:
        from inbox.api import router

        return router

    def nav(self) -> list[NavEntry]:
        return [NavEntry(N_("Inbox"), "/inbox", "conversations:read", "inbox"),
                NavEntry(N_("Inbox reports"), "/inbox/reports", "conversations:read", "chart"),
                NavEntry(N_("Teams"), "/inbox/teams", "admin", "globe")]

    def notice_types(self) -> list[NoticeType]:
        from inbox.notices import NOTICE_TYPES

        return list(NOTICE_TYPES)

    def contact_panels(self) -> list[ContactPanel]:
        return [ContactPanel(N_("Conversations"), "/inbox/contacts/{contact_id}/conversations", "conversations:read",
                             script="/inbox/inbox.js", stylesheet="/inbox/inbox.css")]

    def jobs(self) -> list[PeriodicJob]:
        from hub.channel import PeriodicJob
        from inbox import jobs

        seconds = self.settings.tick_seconds  # type: ignore[attr-defined]
        return [PeriodicJob("inbox.escalate", jobs.escalate_due, seconds=seconds, once=True),
                PeriodicJob("inbox.wake_snoozed", jobs.wake_snoozed, seconds=seconds, once=True),
                PeriodicJob("inbox.missed_calls", jobs.missed_calls, seconds=seconds, once=True),
                PeriodicJob("inbox.assign_waiting", jobs.assign_waiting, seconds=seconds, once=True)]
