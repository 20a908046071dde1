"""What the hub loads from the `hub.extensions` entry point `surveys`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from hub.extensions import Extension, ExtensionSettings, NavEntry
from hub.notices import NoticeType, timeline_example, timeline_type
from hub.web.i18n import N_
from hub.plugin import EventKind, TimelineChannel

# Importing the models registers the tables (hub.schema.metadata() imports this module).
from campaigns.surveys import models as _models  # noqa: F401

if TYPE_CHECKING:
    from fastapi import APIRouter

    from hub.channel import PeriodicJob
    from hub.triggers import TriggerRegistry


class SurveysSettings(ExtensionSettings):
    """[extensions.surveys]"""

    send_every_seconds: float = Field(default=60, gt=0, le=3600, description="How often due invitations are sent")
    remind_every_seconds: float = Field(default=300, gt=0, le=86400, description="How often reminders are looked for")


class SurveysExtension(Extension):
    name = "surveys"
    permissions = {"surveys:read": ("marketer",), "surveys:write": ("marketer",)}
    timeline_channels = (TimelineChannel("surveys", N_("Survey"), "star"), TimelineChannel("survey", N_("Survey"), "star"))
    # Answers carry a numeric score (NPS 0–10, CSAT 1–5): the contact card shows the latest.
    event_kinds = (EventKind("survey.answered", N_("Survey answered"), score=True),
                   EventKind("survey.response", N_("Survey answered"), score=True),
                   EventKind("survey.completed", N_("Survey answered"), score=True),
                   EventKind("survey.invited", N_("Survey sent")), EventKind("survey.reminded", N_("Survey reminder")))
    Settings = SurveysSettings

    def notice_types(self) -> list[NoticeType]:
        return [timeline_type("survey.answered", "A contact answered a survey; data holds the answers and scores.",
                              (("survey.answered", None),),
                              timeline_example("survey.answered", "surveys", "in", {"survey_id": 2, "nps": 9}))]

    def register_triggers(self, triggers: TriggerRegistry) -> None:
        from campaigns.surveys.service import TRIGGER_KINDS, on_event

        for kind in TRIGGER_KINDS:
            triggers.register(kind, on_event)

    def api_router(self) -> APIRouter:
        from campaigns.surveys.api import router

        return router

    def web_router(self) -> APIRouter:
        from campaigns.surveys.web import router

        return router

    def public_router(self) -> APIRouter:
        from campaigns.surveys.public import router

        return router

    def nav(self) -> list[NavEntry]:
        return [NavEntry(N_("Surveys"), "/surveys", "surveys:read", "star")]

    def jobs(self) -> list[PeriodicJob]:
        from hub.channel import PeriodicJob
        from campaigns.surveys.service import send_due, send_reminders

        settings: SurveysSettings = self.settings  # type: ignore[assignment]
        return [
            PeriodicJob(id="surveys.send_due", func=lambda hub: send_due(hub), seconds=settings.send_every_seconds,
                        once=True),
            PeriodicJob(id="surveys.send_reminders", func=lambda hub: send_reminders(hub),
                        seconds=settings.remind_every_seconds, once=True),
        ]
