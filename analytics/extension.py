"""What the hub loads from the `hub.extensions` entry point `analytics`: the dashboards, their REST
twins, and the scheduler job that keeps the precomputed figures current. Settings: `[extensions.analytics]`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

import analytics.models  # noqa: F401  - registers the tables
from analytics.compute import Options
from hub.extensions import Extension, ExtensionSettings, NavEntry
from hub.web.i18n import N_

if TYPE_CHECKING:
    from fastapi import APIRouter

    from hub.channel import PeriodicJob


class AnalyticsSettings(ExtensionSettings):
    # Orders in this currency are counted; others are left out rather than converted at a guessed rate.
    currency: str = Field("RUB", min_length=3, max_length=3)
    # How often the scheduler recomputes the scores, the cohorts and the value model.
    recompute_minutes: float = Field(60, ge=1, le=7 * 24 * 60)
    # A customer with no order for this long has churned; an order after such a gap reactivates them.
    churn_days: int = Field(180, ge=7, le=3650)
    # The predicted value covers this many days ahead; the model's error is measured on the last holdout_days.
    horizon_days: int = Field(365, ge=7, le=3650)
    holdout_days: int = Field(180, ge=7, le=3650)
    # Channel volumes are kept for this many months back.
    activity_months: int = Field(24, ge=1, le=120)

    def options(self) -> Options:
        return Options(currency=self.currency.upper(), churn_days=self.churn_days,
                       activity_months=self.activity_months, horizon_days=self.horizon_days,
                       holdout_days=self.holdout_days)


class AnalyticsExtension(Extension):
    name = "analytics"
    # Segments from RFM cells and satisfaction from survey answers: it builds on both.
    requires = ("campaigns", "surveys")
    permissions = {"analytics:read": ("marketer",)}
    Settings = AnalyticsSettings

    def web_router(self) -> APIRouter:
        from analytics.views import router

        return router

    def api_router(self) -> APIRouter:
        from analytics.api import router

        return router

    def nav(self) -> list[NavEntry]:
        return [NavEntry(N_("Analytics"), "/analytics", "analytics:read", "pie")]

    def jobs(self) -> list[PeriodicJob]:
        from analytics import compute
        from hub.channel import PeriodicJob

        options = self.settings.options()  # type: ignore[attr-defined]
        return [PeriodicJob("analytics.recompute", lambda hub: compute.run(hub, options=options),
                            seconds=self.settings.recompute_minutes * 60, once=True)]  # type: ignore[attr-defined]
