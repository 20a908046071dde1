"""The forms adapter: what the registry loads (its routes, limits and pages live beside it)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from hub.channel import Capability, Channel, ChannelSettings
from hub.extensions import NavEntry
from hub.notices import NoticeType, timeline_example, timeline_type
from hub.web.i18n import N_
from hub.plugin import EventKind, TimelineChannel

from channels.forms import models as _models  # noqa: F401  (registers the tables)


class FormsSettings(ChannelSettings):
    """[channels.forms] in config/hub.toml, or HUB_CHANNELS__FORMS__RATE_LIMIT and friends."""

    # A person needs a few seconds to fill a form; a bot posts at once.
    min_fill_seconds: float = Field(default=3, ge=0, le=600)
    # A page left open longer than this must be reloaded (its render stamp is too old).
    max_form_age_hours: float = Field(default=24, gt=0, le=24 * 30)
    # Submissions one client address may make within the window, across every form.
    rate_limit: int = Field(default=10, ge=1, le=10_000)
    rate_window_seconds: int = Field(default=600, ge=1, le=86_400)
    # A form is a few fields: anything bigger is abuse.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)


class FormsChannel(Channel):
    name = "forms"
    label = "Web form"
    permissions = {"forms:read": ("agent", "marketer"), "forms:write": ("marketer",)}
    timeline_channels = (TimelineChannel("forms", N_("Web form"), "form"),)
    event_kinds = (EventKind("form.submitted", N_("Form submitted")),)
    capabilities: frozenset[Capability] = frozenset()
    Settings = FormsSettings

    settings: FormsSettings

    @property
    def max_request_bytes(self) -> int | None:
        return self.settings.max_body_bytes

    def notice_types(self) -> list[NoticeType]:
        return [timeline_type("form.submitted", "A website form was submitted; data holds the answers.",
                              (("form.submitted", None),),
                              timeline_example("form.submitted", "forms", "in",
                                               {"form": "callback", "fields": {"phone": "+79161234567"}}))]

    def router(self) -> APIRouter:
        from channels.forms.public import build_router

        return build_router(self)

    def api_router(self) -> APIRouter:
        from channels.forms.api import router

        return router

    def web_router(self) -> APIRouter:
        from channels.forms.views import build_router

        return build_router(self)

    def nav(self) -> list[NavEntry]:
        return [NavEntry(N_("Forms"), "/forms", "forms:read", "form")]
