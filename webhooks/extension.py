"""What the hub loads from the `hub.extensions` entry point `webhooks`: outbound webhooks.

Other systems subscribe to the hub's notices (hub.notices, the event catalogue): an admin adds an
endpoint (UI or REST), the notice listener queues a delivery per endpoint in the cause's
transaction, and the dispatcher sends them signed per Standard Webhooks. Settings:
`[extensions.webhooks]`. See docs/webhooks.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

import webhooks.models  # noqa: F401  - registers the tables
from hub.extensions import Extension, ExtensionSettings, NavEntry
from hub.notices import NoticeData, NoticeType
from hub.web.i18n import N_

if TYPE_CHECKING:
    from fastapi import APIRouter

    from hub.channel import PeriodicJob
    from hub.notices import Catalogue
    from hub.runtime import Hub
    from webhooks.sender import Dispatcher


class WebhooksSettings(ExtensionSettings):
    # Plain http:// endpoints: for development only (a receiver on this machine), never in production.
    allow_http: bool = False
    # Hosts the hub may call although they resolve to private, loopback or link-local addresses:
    # names ("erp.internal"), addresses or networks ("10.20.0.0/16"). Empty: public addresses only.
    allowed_hosts: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(10.0, gt=0, le=60)
    connect_timeout_seconds: float = Field(5.0, gt=0, le=60)
    # An answer is read up to this size (the rest is dropped), and its first bytes kept for the log.
    max_response_bytes: int = Field(64 * 1024, ge=1024, le=10 * 1024 * 1024)
    keep_response_bytes: int = Field(500, ge=0, le=10_000)
    # Retries: base × 2^(attempt-1) with ±50% jitter, capped; a delivery is retried for this long.
    backoff_base_seconds: float = Field(30.0, gt=0, le=3600)
    backoff_max_seconds: float = Field(4 * 3600.0, gt=0, le=24 * 3600)
    retry_for_hours: float = Field(36.0, ge=24, le=14 * 24)
    # An endpoint failing without one success for this long is disabled, and its admin told.
    disable_after_hours: float = Field(72.0, gt=0, le=60 * 24)
    # After a rotation the old secret signs too for this long (receivers switch in between).
    rotation_overlap_hours: float = Field(24.0, ge=0, le=30 * 24)
    poll_seconds: float = Field(2.0, gt=0, le=300)
    batch_per_endpoint: int = Field(25, ge=1, le=1000)
    lease_seconds: float = Field(120.0, ge=10, le=3600)
    retention_days: int = Field(30, ge=1, le=3650)

    @model_validator(mode="after")
    def _lease_covers_a_send(self) -> WebhooksSettings:
        if self.lease_seconds < 2 * self.timeout_seconds:
            raise ValueError("lease_seconds must be at least twice timeout_seconds")
        return self


class TestData(NoticeData):
    endpoint_id: int
    message: str
    requested_by: str


class WebhooksExtension(Extension):
    name = "webhooks"
    Settings = WebhooksSettings

    def __init__(self, settings: ExtensionSettings, hub: Hub) -> None:
        super().__init__(settings, hub)
        self._dispatcher: Dispatcher | None = None

    def notice_types(self) -> list[NoticeType]:
        return [NoticeType("webhook.test", 1, TestData, "Sent by the “Send a test event” button to one endpoint.",
                           {"endpoint_id": 3, "message": "Test from the hub", "requested_by": "user:1"})]

    def register_notice_listeners(self, notices: Catalogue) -> None:
        from webhooks.service import on_notices

        notices.listen_many(on_notices)

    def dispatcher(self) -> Dispatcher:
        """This process's dispatcher, made on first use (only worker processes ever send)."""
        if self._dispatcher is None:
            from webhooks.sender import Dispatcher

            self._dispatcher = Dispatcher(self.hub)
        return self._dispatcher

    def api_router(self) -> APIRouter:
        from webhooks.api import router

        return router

    def web_router(self) -> APIRouter:
        from webhooks.views import router

        return router

    def nav(self) -> list[NavEntry]:
        return [NavEntry(N_("Webhooks"), "/admin/webhooks", "admin", "out")]

    def jobs(self) -> list[PeriodicJob]:
        from hub.channel import PeriodicJob
        from webhooks import delivery

        settings: Any = self.settings
        return [
            PeriodicJob("webhooks.dispatch", lambda hub: self.dispatcher().dispatch_due(), seconds=settings.poll_seconds,
                        once=False),
            PeriodicJob("webhooks.reap", lambda hub: delivery.reap(hub), seconds=max(10.0, settings.lease_seconds / 4),
                        once=False),
            PeriodicJob("webhooks.purge", lambda hub: delivery.purge(hub), seconds=3600, once=True),
        ]
