"""The scheduler's watch over key accounts: a temperature snapshot each run, and cooling alerts.

An account is cooling when its temperature is below `cold_below`, has dropped `sharp_drop` points or
more from its best of the last `drop_window_days`, or when the customer who usually gets in touch
every N days has been silent for more than `silence_factor` × N. The first run that sees it opens an
*episode*: one task for the owner (or the deputy) with the reason and a suggested action, and an
`account.cooling` event on the account's timeline (which campaign triggers can react to). While the
episode is open nothing more is sent, however often the job runs or restarts: the episode is a row
(`account_cooling`), and its `open_account_id` unique key allows one open episode per account. It
ends when no reason holds and the score is back at `cold_below + recovery_margin` or above; the next
cooling opens a new one.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import clock, notices
from hub.accounts import member_ids
from hub.auth import SYSTEM
from hub.ingest import InboundEvent, post_event
from hub.models import Account, Direction, User
from hub.tasks import InvalidTask, create_task
from hub.web.i18n import N_, package_translations
from keyaccounts.models import CoolingEpisode, TemperatureSnapshot
from keyaccounts.temperature import WARM_PART, Part, Signals, parts_json, score, signals_of

log = logging.getLogger("keyaccounts.watch")
CHANNEL = "keyaccounts"
COOLING_KIND = "account.cooling"
TITLE = N_("Key account cooling: %(name)s")
ACTIONS = {
    "cold": N_("Call the decision maker, ask how we are doing and settle what is open."),
    "drop": N_("Look at what changed lately (a complaint, a slow answer, a lost order) and call them."),
    "silence": N_("They usually get in touch every %(rhythm)d days and have been silent for %(days)d: call them."),
}
REASONS = {"cold": N_("temperature %(score)d is below %(threshold)d"),
           "drop": N_("temperature fell %(drop)d points from %(best)d"),
           "silence": N_("silent %(days)d days against a usual %(rhythm)d")}


@dataclass(frozen=True)
class Thresholds:
    cold_below: int = 40
    sharp_drop: int = 20
    drop_window_days: int = 14
    silence_factor: float = 2.0
    min_silence_days: int = 7
    recovery_margin: int = 5


@dataclass
class RunResult:
    scored: int = 0
    opened: list[int] = field(default_factory=list)  # account ids
    recovered: list[int] = field(default_factory=list)


def reasons_for(signals: Signals, current: int, best_recent: int | None, t: Thresholds) -> dict[str, dict[str, Any]]:
    """Which cooling reasons hold, each with the figures that say so (pure)."""
    found: dict[str, dict[str, Any]] = {}
    if current < t.cold_below:
        found["cold"] = {"score": current, "threshold": t.cold_below}
    if best_recent is not None and best_recent - current >= t.sharp_drop:
        found["drop"] = {"drop": best_recent - current, "best": best_recent}
    if signals.days_since_inbound is not None and len(signals.inbound_gaps_days) >= 2:
        rhythm = max(1.0, statistics.median(signals.inbound_gaps_days))
        if signals.days_since_inbound > max(t.silence_factor * rhythm, t.min_silence_days):
            found["silence"] = {"days": int(signals.days_since_inbound), "rhythm": round(rhythm)}
    return found


def run(hub: Any, *, thresholds: Thresholds) -> RunResult:
    """Score every key account now, keep the snapshot, open or end cooling episodes (each in its own
    transaction, so one account's failure leaves the others done)."""
    result = RunResult()
    now = clock.now()
    with hub.session(read_only=True) as session:
        ids = list(session.scalars(select(Account.id).where(Account.is_key.is_(True)).order_by(Account.id)))
    for account_id in ids:
        try:
            with hub.session() as session:
                watch_one(session, account_id=account_id, now=now, thresholds=thresholds, result=result,
                          default_locale=hub.settings.default_locale)
                session.commit()
        except IntegrityError:
            # Another process opened this account's episode first: it is open, which is all we wanted.
            log.info("keyaccounts: the cooling episode of account %s was opened elsewhere", account_id)
    return result


def watch_one(session: Session, *, account_id: int, now: datetime, thresholds: Thresholds, result: RunResult,
              default_locale: str = "ru") -> TemperatureSnapshot:
    account = session.get(Account, account_id, with_for_update=True)
    assert account is not None
    signals = signals_of(session, account_id=account_id, now=now)
    current, parts, explanation = score(signals)
    since = now - timedelta(days=thresholds.drop_window_days)
    best = max(session.scalars(select(TemperatureSnapshot.score).where(
        TemperatureSnapshot.account_id == account_id, TemperatureSnapshot.computed_at >= since)), default=None)
    snapshot = TemperatureSnapshot(account_id=account_id, computed_at=now, score=current, signals=parts_json(parts),
                                   explanation=explanation)
    session.add(snapshot)
    result.scored += 1
    reasons = reasons_for(signals, current, best, thresholds)
    episode = session.scalars(select(CoolingEpisode).where(CoolingEpisode.open_account_id == account_id)).first()
    if episode is None and reasons:
        _open(session, account=account, reasons=reasons, score_now=current, parts=parts, now=now,
              default_locale=default_locale)
        result.opened.append(account_id)
    elif episode is not None and not reasons and current >= thresholds.cold_below + thresholds.recovery_margin:
        episode.ended_at = now
        episode.open_account_id = None
        result.recovered.append(account_id)
    session.flush()
    return snapshot


def _open(session: Session, *, account: Account, reasons: dict[str, dict[str, Any]], score_now: int,
          parts: list[Part], now: datetime, default_locale: str) -> CoolingEpisode:
    first = next(iter(reasons))
    episode = CoolingEpisode(account_id=account.id, open_account_id=account.id, reason=first,  # type: ignore[arg-type]
                             detail={"reasons": reasons, "score": score_now},
                             started_at=now)
    session.add(episode)
    session.flush()  # the unique open_account_id refuses a second open episode here
    assignee_id = account.owner_id or account.deputy_id
    owner = session.get(User, assignee_id) if assignee_id else None
    _ = package_translations((owner.locale if owner else None) or default_locale, "keyaccounts").gettext
    title = _(TITLE) % {"name": account.name}
    why = "; ".join(_(REASONS[r]) % figures for r, figures in reasons.items())
    action = _(ACTIONS[first]) % reasons[first] if first == "silence" else _(ACTIONS[first])
    cold = [_(p.template) % p.params for p in sorted(parts, key=lambda p: p.value) if p.template and p.value < WARM_PART]
    notes = f"{why}.\n{_('Temperature')} {score_now}: {'; '.join(cold)}\n\n{action}\n\n/accounts/{account.id}"
    members = member_ids(session, account_id=account.id)  # type: ignore[arg-type]
    contact_id = members[0] if members else None
    if contact_id is not None:
        posted = post_event(session, event=InboundEvent(
            channel=CHANNEL, kind=COOLING_KIND, direction=Direction.INTERNAL, contact_id=contact_id,
            external_id=f"keyaccounts:cooling:{episode.id}", subject=title[:1000], text=notes,
            data={"account_id": account.id, "reasons": reasons, "score": score_now, "episode_id": episode.id}))
        episode.event_id = posted.event.id
    try:
        task = create_task(session, actor=SYSTEM, title=title[:500], notes=notes, assignee_id=assignee_id,
                           contact_id=contact_id)
    except InvalidTask:  # the owner left: everyone's open tasks show it
        task = create_task(session, actor=SYSTEM, title=title[:500], notes=notes, contact_id=contact_id)
    episode.task_id = task.id
    notices.emit(session, "key_account.cooling", subject=f"account:{account.id}",
                 data={"account_id": account.id, "account_name": account.name, "episode_id": episode.id,
                       "score": score_now, "reasons": reasons, "owner_id": account.owner_id}, occurred_at=now)
    return episode
