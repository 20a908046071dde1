"""A key account's temperature at a glance, for the agent's contact card and the incoming-call screen
pop (through `Extension.card_badges`): the latest score, coloured against the account's own cooling
threshold, with the reasons of the cold signals as its hint. Two indexed queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.extensions import CardBadge
from hub.models import Account
from hub.web.i18n import N_, package_translations
from keyaccounts.models import CoolingEpisode, TemperatureSnapshot
from keyaccounts.temperature import WARM_PART
from keyaccounts.watch import Thresholds, thresholds_for

LABEL = N_("Temperature")
COOLING = N_("cooling")
WARM_MARGIN = 20  # up to this many points above the threshold the badge is amber


def temperature_badge(session: Session, *, account_id: int | None, locale: str,
                      thresholds: Thresholds) -> list[CardBadge]:
    """The badge of the contact's key account, or none (no account, not key, not measured yet)."""
    if account_id is None:
        return []
    account = session.get(Account, account_id)
    if account is None or not account.is_key:
        return []
    latest = session.scalars(select(TemperatureSnapshot).where(TemperatureSnapshot.account_id == account_id)
                             .order_by(TemperatureSnapshot.computed_at.desc(), TemperatureSnapshot.id.desc())
                             .limit(1)).first()
    if latest is None:
        return []
    own = thresholds_for(session, account_id=account_id, base=thresholds)
    cooling = session.scalars(select(CoolingEpisode.id).where(CoolingEpisode.open_account_id == account_id)).first()
    _ = package_translations(locale, "keyaccounts").gettext
    reasons = [_(part["template"]) % part["params"]
               for part in sorted(latest.signals.values(), key=lambda p: p["value"])
               if part.get("template") and part["value"] < WARM_PART]
    if cooling is not None:
        reasons.insert(0, _(COOLING))
    tone = ("bad" if latest.score < own.cold_below or cooling is not None
            else "warn" if latest.score < own.cold_below + WARM_MARGIN else "ok")
    return [CardBadge(label=_(LABEL), value=str(latest.score), tone=tone, hint="; ".join(reasons),
                      href=f"/accounts/{account_id}")]
