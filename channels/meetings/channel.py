"""The meetings adapter: what the registry loads (its routes, jobs and pages live beside it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import Field

from hub.channel import Capability, Channel, ChannelSettings, PeriodicJob
from channels.meetings import models  # noqa: F401 - registers the tables
from hub.extensions import NavEntry
from hub.notices import NoticeType, timeline_example, timeline_type
from hub.web.i18n import N_
from hub.plugin import EventKind, TimelineChannel

if TYPE_CHECKING:
    from hub.runtime import Hub


BOOKING_BUCKETS = "meetings.book"


class MeetingsSettings(ChannelSettings):
    """[channels.meetings]: how often due reminders are handed to the outbox; how many bookings one
    visitor address may attempt in a window (a bot filling calendars gets 429)."""

    reminder_tick_seconds: float = Field(60.0, ge=5, le=3600)
    booking_rate_limit: int = Field(10, ge=1, le=10_000)
    booking_rate_window_seconds: int = Field(600, ge=10, le=86_400)


def queue_reminders(hub: Hub) -> None:
    from channels.meetings.notify import queue_due
    from hub import throttle

    queue_due(hub)
    window = hub.channel("meetings").settings.booking_rate_window_seconds
    throttle.purge_idle(hub, BOOKING_BUCKETS, idle_seconds=window)


class MeetingsChannel(Channel):
    name = "meetings"
    label = "Meeting"
    permissions = {"meetings:read": ("agent", "marketer"), "meetings:write": ("agent", "marketer")}
    timeline_channels = (TimelineChannel("meetings", N_("Meeting"), "calendar"),)
    event_kinds = (EventKind("meeting.booked", N_("Meeting booked")), EventKind("meeting.cancelled", N_("Meeting cancelled")),
                   EventKind("meeting.rescheduled", N_("Meeting rescheduled")),
                   EventKind("meeting.completed", N_("Meeting completed")), EventKind("meeting.no_show", N_("Meeting missed")),
                   EventKind("meeting.reminder", N_("Meeting reminder")))
    capabilities: frozenset[Capability] = frozenset()
    Settings = MeetingsSettings

    def notice_types(self) -> list[NoticeType]:
        moved = {"meeting_id": 7, "starts_at": "2026-12-09T09:00:00+00:00"}
        return [
            timeline_type("meeting.booked", "A meeting was booked.", (("meeting.booked", None),),
                          timeline_example("meeting.booked", "meetings", "in",
                                           {"meeting_id": 7, "starts_at": "2026-12-08T09:00:00+00:00"})),
            timeline_type("meeting.rescheduled", "A meeting was moved.", (("meeting.rescheduled", None),),
                          timeline_example("meeting.rescheduled", "meetings", "in", moved)),
            timeline_type("meeting.cancelled", "A meeting was cancelled.", (("meeting.cancelled", None),),
                          timeline_example("meeting.cancelled", "meetings", "in", {"meeting_id": 7})),
        ]

    def router(self) -> APIRouter:
        from channels.meetings.public import build_router

        return build_router(self)

    def api_router(self) -> APIRouter:
        from channels.meetings.api import router

        return router

    def web_router(self) -> APIRouter:
        from channels.meetings.views import build_router

        return build_router(self)

    def nav(self) -> list[NavEntry]:
        return [NavEntry(N_("Meetings"), "/meetings", "meetings:write", "calendar")]

    def jobs(self) -> list[PeriodicJob]:
        seconds = getattr(self.settings, "reminder_tick_seconds", 60.0)
        return [PeriodicJob(id="meetings.queue_reminders", func=queue_reminders, seconds=seconds, once=True)]
