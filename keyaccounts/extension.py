"""What the hub loads from the `hub.extensions` entry point `keyaccounts`.

Accounts themselves are core (`hub.accounts`); this package computes what they are worth and helps
choose and watch the key ones. Its settings are `[extensions.keyaccounts]`."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field

import keyaccounts.models  # noqa: F401  - registers the tables
from hub.extensions import AccountPanel, CardBadge, Extension, ExtensionSettings, NavEntry
from hub.web.i18n import N_
from keyaccounts.profit import Rates
from keyaccounts.watch import Thresholds

if TYPE_CHECKING:
    from fastapi import APIRouter
    from sqlalchemy.orm import Session

    from hub.plugin import PeriodicJob
    from hub.triggers import TriggerRegistry


class KeyAccountsSettings(ExtensionSettings):
    # Figures are in this currency; orders in others are listed as not counted.
    currency: str = Field("RUB", min_length=3, max_length=3)
    # The gross margin of an order whose shop sent none: amount × this rate.
    default_margin_rate: Decimal = Field(Decimal("0.25"), ge=0, le=1)
    # What an hour of an agent's time costs (salary, taxes, seat), in `currency`.
    agent_hour_cost: Decimal = Field(Decimal("1200"), ge=0)
    minutes_per_email: Decimal = Field(Decimal("6"), ge=0, le=600)
    minutes_per_sms: Decimal = Field(Decimal("2"), ge=0, le=600)
    minutes_per_note: Decimal = Field(Decimal("3"), ge=0, le=600)
    minutes_per_task: Decimal = Field(Decimal("10"), ge=0, le=600)
    # What one marketing message costs to send, per channel, in `currency`.
    marketing_send_cost: dict[str, Decimal] = Field(default_factory=lambda: {"email": Decimal("0.30"),
                                                                             "sms": Decimal("3.50")})
    # The period the figures cover unless a page asks for another.
    period_days: int = Field(365, ge=7, le=3650)
    # Key accounts are at most this share of the base (Pareto): the suggested set's size.
    key_share: float = Field(0.2, gt=0, le=1)
    # Key accounts one manager can hold well; the managers' page marks who has more.
    max_key_accounts_per_manager: int = Field(10, ge=1, le=1000)
    # How often the scheduler takes the temperature of every key account (and looks for cooling).
    temperature_minutes: float = Field(60, ge=1, le=24 * 60)
    # How soon after new events a key account's temperature is taken again (keyaccounts.due).
    recompute_due_seconds: float = Field(60, ge=5, le=3600)
    # How often every account's profit and its band (segments select by them) are recomputed.
    figures_minutes: float = Field(360, ge=5, le=7 * 24 * 60)
    # Cooling alerts (keyaccounts.watch): below this score, a drop of this many points within
    # drop_window_days, or silent for silence_factor × the usual gap (at least min_silence_days).
    cold_below: int = Field(40, ge=0, le=100)
    sharp_drop: int = Field(20, ge=1, le=100)
    drop_window_days: int = Field(14, ge=1, le=365)
    silence_factor: float = Field(2.0, ge=1, le=20)
    min_silence_days: int = Field(7, ge=1, le=365)
    recovery_margin: int = Field(5, ge=0, le=50)

    def thresholds(self) -> Thresholds:
        return Thresholds(cold_below=self.cold_below, sharp_drop=self.sharp_drop,
                          drop_window_days=self.drop_window_days, silence_factor=self.silence_factor,
                          min_silence_days=self.min_silence_days, recovery_margin=self.recovery_margin)

    def rates(self) -> Rates:
        return Rates(currency=self.currency.upper(), default_margin_rate=self.default_margin_rate,
                     agent_hour_cost=self.agent_hour_cost, minutes_per_email=self.minutes_per_email,
                     minutes_per_sms=self.minutes_per_sms, minutes_per_note=self.minutes_per_note,
                     minutes_per_task=self.minutes_per_task, marketing_send_cost=dict(self.marketing_send_cost))


class KeyAccountsExtension(Extension):
    name = "keyaccounts"
    Settings = KeyAccountsSettings

    def notice_types(self) -> list[Any]:
        from keyaccounts.notices import NOTICE_TYPES

        return NOTICE_TYPES

    def web_router(self) -> APIRouter:
        from keyaccounts.views import router

        return router

    def api_router(self) -> APIRouter:
        from keyaccounts.api import router

        return router

    def nav(self) -> list[NavEntry]:
        return [NavEntry(N_("Key accounts"), "/key-accounts", "contacts:read", "target")]

    def account_panels(self) -> list[AccountPanel]:
        return [AccountPanel(N_("Temperature"), "/key-accounts/accounts/{account_id}/temperature", "contacts:read"),
                AccountPanel(N_("Profitability"), "/key-accounts/accounts/{account_id}/profit", "contacts:read")]

    def account_rules(self) -> list[Any]:
        """No manager gets more than `max_key_accounts_per_manager` key accounts without an override."""
        from keyaccounts.caps import cap_rule

        return [cap_rule(self.settings.max_key_accounts_per_manager)]  # type: ignore[attr-defined]

    def merge_accounts(self, session: Session, *, survivor_id: int, duplicate_id: int) -> None:
        """The duplicate's temperature history, cooling episodes and thresholds move to the survivor."""
        from keyaccounts.merging import merge_rows

        merge_rows(session, survivor_id=survivor_id, duplicate_id=duplicate_id)

    def card_badges(self, session: Session, *, contact_id: int, account_id: int | None,
                    locale: str) -> list[CardBadge]:
        """The key account's temperature on the contact card and in the screen pop."""
        from keyaccounts.glance import temperature_badge

        return temperature_badge(session, account_id=account_id, locale=locale,
                                 thresholds=self.settings.thresholds())  # type: ignore[attr-defined]

    def register_triggers(self, triggers: TriggerRegistry) -> None:
        """New events of a key account make its temperature due (keyaccounts.due)."""
        from keyaccounts import due

        due.register(triggers)

    def jobs(self) -> list[PeriodicJob]:
        from hub.plugin import PeriodicJob
        from keyaccounts import due, figures, watch

        settings = self.settings
        thresholds = settings.thresholds()  # type: ignore[attr-defined]
        return [PeriodicJob("keyaccounts.temperature", lambda hub: watch.run(hub, thresholds=thresholds),
                            seconds=settings.temperature_minutes * 60, once=True),  # type: ignore[attr-defined]
                PeriodicJob("keyaccounts.figures",
                            lambda hub: figures.refresh_figures(hub, rates=settings.rates(),  # type: ignore[attr-defined]
                                                                period_days=settings.period_days,  # type: ignore[attr-defined]
                                                                key_share=settings.key_share),  # type: ignore[attr-defined]
                            seconds=settings.figures_minutes * 60, once=True),  # type: ignore[attr-defined]
                PeriodicJob("keyaccounts.recompute_due", lambda hub: due.recompute_due(hub, thresholds=thresholds),
                            seconds=settings.recompute_due_seconds, once=True)]  # type: ignore[attr-defined]
