"""Why a campaign's messages wait: its queued deliveries counted by reason, for the campaign's page.

"0 / 20 · waiting: 20" tells a marketer nothing. Each waiting delivery is put under one reason, the
first that holds: the campaign is paused; its channel is not set up (the worker never picks those
up); it is being handed over right now; a sending rule deferred it (quiet hours in the recipient's
time zone, the frequency cap: `hub.sending`'s gates write their reason into `last_error` and move
`send_after`); a failed attempt is retried later; or it is due and waits its turn under the
channel's rate limit (or, with no limit, for the worker's next pass). Deliveries a rule dropped for
good (consent withdrawn, never given, a do-not-contact address) are counted apart, as skipped.

One grouped query per page view: the classification is a SQL CASE, so a run of 100 000 messages
costs what a run of 10 does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign, CampaignRun, of_runs
from hub import clock, throttle
from hub.models import Delivery, DeliveryStatus
from hub.web.i18n import N_

if TYPE_CHECKING:
    from hub.runtime import Hub

# How hub.sending's gates begin the reasons they record (QuietHoursGate, FrequencyCapGate, ConsentGate,
# SuppressionGate, and the email channel's SuppressionGate); tests/campaigns/test_waiting.py runs the
# real gates, so a change of wording shows.
QUIET_HOURS = "quiet hours:%"
FREQUENCY_CAP = "frequency cap:%"
CONSENT = ("the contact withdrew marketing consent%", "the contact never opted in%", "marketing needs opt-in%")
SUPPRESSED = ("% is on the do-not-contact list", "% is suppressed (%")

# In the order the page lists them; each reason's words say what holds the messages and who can help.
REASONS = {
    "paused": N_("the campaign is paused; resume it to send them"),
    "channel": N_("the %(channel)s channel is not set up: an administrator sets it up in the configuration "
                  "file, section [channels.%(name)s] (Admin → Channels shows what is missing)"),
    "sending": N_("being handed to the provider now"),
    "quiet_hours": N_("quiet hours: they go out from %(start)s in each recipient's own time zone (the first at %(first)s)"),
    "frequency_cap": N_("frequency cap: these contacts had their share of marketing messages lately "
                        "(the first goes at %(first)s)"),
    "retry": N_("a sending attempt failed; tried again from %(first)s"),
    "later": N_("due later (the first at %(first)s)"),
    "rate_limit": N_("rate limit: the channel sends at its configured pace; they go out in turn"),
    "queued": N_("in the queue; the worker sends them on its next pass"),
}
SKIPS = {
    "consent": N_("no marketing consent (withdrawn, or never given where opt-in is required)"),
    "suppressed": N_("on the do-not-contact list"),
    "cancelled": N_("cancelled"),
}


@dataclass(frozen=True)
class Reason:
    key: str
    count: int
    message: str  # a msgid of REASONS or SKIPS
    params: dict[str, Any]


def _hold_until() -> datetime:
    from campaigns.service import HOLD_UNTIL

    return HOLD_UNTIL


def waiting(session: Session, hub: Hub, *, campaign: Campaign, now: datetime | None = None,
            fmt_time: Any = None) -> tuple[list[Reason], list[Reason]]:
    """(why the campaign's queued deliveries wait, why skipped ones were dropped), in REASONS and SKIPS order.

    `fmt_time` shows a moment in the reader's zone (the page's Formatter.short_datetime)."""
    now = now or clock.now()
    show = fmt_time or (lambda moment: moment.strftime("%Y-%m-%d %H:%M"))
    d = Delivery.__table__
    runs = select(CampaignRun.id).where(CampaignRun.campaign_id == campaign.id).scalar_subquery()
    later = d.c.send_after > now
    kind = case(
        (d.c.send_after >= _hold_until(), "paused"),
        (d.c.status == DeliveryStatus.SENDING.value, "sending"),
        (and_(later, d.c.last_error.like(QUIET_HOURS)), "quiet_hours"),
        (and_(later, d.c.last_error.like(FREQUENCY_CAP)), "frequency_cap"),
        (and_(later, d.c.last_error.is_not(None), d.c.attempts > 0), "retry"),
        (later, "later"),
        else_="due",
    )
    rows = session.execute(
        select(kind, func.count(), func.min(d.c.send_after))
        .where(of_runs(runs),
               d.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value]))
        .group_by(kind)
    ).all()
    from campaigns.service import channel_can_send

    counts: dict[str, tuple[int, datetime | None]] = {}
    set_up = channel_can_send(hub, campaign.channel)
    for key, count, first in rows:
        if key == "due":
            key = "rate_limit" if throttle.limits_for(hub.settings, campaign.channel) else "queued"
        if not set_up and key not in ("paused", "sending"):
            key = "channel"  # nothing of it goes until the channel is set up, whatever else holds it
        total, earliest = counts.get(key, (0, None))
        first = _aware(first)
        counts[key] = (total + count, first if earliest is None or (first and first < earliest) else earliest)
    adapter = hub.channels.get(campaign.channel)
    window = hub.settings.sending.quiet_hours.get(campaign.channel)
    start = campaign.quiet_hours_start or (window.start if window else "")
    reasons = [Reason(key, counts[key][0], REASONS[key], {
        "channel": getattr(adapter, "label", "") or campaign.channel, "name": campaign.channel, "start": start,
        "first": show(counts[key][1]) if counts[key][1] else ""}) for key in REASONS if key in counts]
    return reasons, _skipped(session, runs)


def _skipped(session: Session, runs: Any) -> list[Reason]:
    d = Delivery.__table__
    kind = case(
        (d.c.last_error.like(CONSENT[0]), "consent"), (d.c.last_error.like(CONSENT[1]), "consent"),
        (d.c.last_error.like(CONSENT[2]), "consent"), (d.c.last_error.like(SUPPRESSED[0]), "suppressed"),
        (d.c.last_error.like(SUPPRESSED[1]), "suppressed"),
        else_="cancelled",
    )
    rows = dict(session.execute(
        select(kind, func.count()).where(of_runs(runs), d.c.status == DeliveryStatus.CANCELLED.value)
        .group_by(kind)
    ).all())
    return [Reason(key, rows[key], SKIPS[key], {}) for key in SKIPS if rows.get(key)]


def _aware(moment: Any) -> datetime | None:
    from datetime import timezone

    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


__all__ = ["REASONS", "SKIPS", "Reason", "waiting"]
