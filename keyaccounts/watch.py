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

import dataclasses
import logging
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from hub import clock, notices
from hub.auth import SYSTEM
from hub.db import among, insert_ignore_many
from hub.ingest import InboundEvent, post_events
from hub.models import Account, Contact, Direction, User
from hub.tasks import NewTask, create_tasks
from hub.web.i18n import N_, package_translations
from keyaccounts.batch import long_lived_frozen, with_sort_memory
from keyaccounts.models import AccountThreshold, CoolingEpisode, TemperatureSnapshot
from keyaccounts.temperature import WARM_PART, Part, Signals, parts_json, score, signals_of, signals_of_many

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


def thresholds_for(session: Session, *, account_id: int, base: Thresholds) -> Thresholds:
    """The account's own thresholds: its override (`account_threshold`) where set, else the settings'."""
    own = session.get(AccountThreshold, account_id)
    if own is None:
        return base
    return dataclasses.replace(base, **{name: value for name in ("cold_below", "sharp_drop")
                                        if (value := getattr(own, name)) is not None})


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


# Key accounts whose signals are read together. Each of a chunk's signal queries reads its members'
# share of the timeline, and past a few hundred members the planner answers with a scan of the whole
# table (or of the whole index range): so the number of chunks, not their size, sets the cost. At full
# bench scale (4,001 key accounts, 2,000,000 events, LOADED MACHINE) the job took 18.5–19.7 s in
# chunks of 1,000, 15.0 s in chunks of 2,000 and 13.3–15.0 s in one chunk of 5,000, whose peak RSS was
# 47 MB higher (2,000: 16 MB): 2,000 accounts hold some 35,000 small rows at once, whatever the
# number of contacts.
CHUNK = 2000


def chunks(ids: list[int], size: int = CHUNK) -> list[list[int]]:
    """`ids` in about `len(ids) / size` chunks of even length: a remainder under half a chunk is
    spread over the others instead of paying a chunk's reads alone (4,001 key accounts were chunks of
    2,000, 2,000 and 1, the last one's timeline pass costing as much as a full chunk's)."""
    count = max(1, round(len(ids) / size))
    step, extra = divmod(len(ids), count)
    bounds = [i * step + min(i, extra) for i in range(count + 1)]
    return [ids[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


@long_lived_frozen()
def run(hub: Any, *, thresholds: Thresholds) -> RunResult:
    """Score every key account now, keep the snapshot, open or end cooling episodes (each in its own
    transaction, so one account's failure leaves the others done). Signals are read a chunk of
    accounts at a time (three queries per chunk), so the run's memory and query count stay bounded."""
    result = RunResult()
    now = clock.now()
    with hub.session(read_only=True) as session:
        ids = list(session.scalars(select(Account.id).where(Account.is_key.is_(True)).order_by(Account.id)))
    for chunk in chunks(ids):
        with hub.session(read_only=True) as session:
            with_sort_memory(session)
            signals = signals_of_many(session, account_ids=chunk, now=now)
        # One transaction per chunk, its rows locked in id order and its writes batched: a commit and
        # a handful of statements per account cost far more than the scoring itself.
        with hub.session() as session:
            _watch_chunk(session, chunk=chunk, signals=signals, now=now, thresholds=thresholds, result=result,
                         default_locale=hub.settings.default_locale)
            session.commit()
    return result


def _watch_chunk(session: Session, *, chunk: list[int], signals: dict[int, Signals], now: datetime,
                 thresholds: Thresholds, result: RunResult, default_locale: str) -> None:
    """watch_one for a chunk of accounts, with its reads and writes done once for the chunk."""
    accounts = list(session.scalars(select(Account).where(among(session, Account.id, chunk), Account.is_key.is_(True))
                                    .order_by(Account.id).with_for_update()))
    ids = [a.id for a in accounts]
    best = dict(session.execute(
        select(TemperatureSnapshot.account_id, func.max(TemperatureSnapshot.score))
        .where(among(session, TemperatureSnapshot.account_id, ids),
               TemperatureSnapshot.computed_at >= now - timedelta(days=thresholds.drop_window_days))
        .group_by(TemperatureSnapshot.account_id)).all())
    newest = (select(TemperatureSnapshot.account_id, func.max(TemperatureSnapshot.computed_at).label("at"))
              .where(among(session, TemperatureSnapshot.account_id, ids))
              .group_by(TemperatureSnapshot.account_id).subquery())
    latest = {account_id: (snapshot_id, at) for account_id, snapshot_id, at in session.execute(
        select(TemperatureSnapshot.account_id, func.max(TemperatureSnapshot.id), newest.c.at)
        .join(newest, (newest.c.account_id == TemperatureSnapshot.account_id)
              & (newest.c.at == TemperatureSnapshot.computed_at))
        .group_by(TemperatureSnapshot.account_id, newest.c.at))}
    episodes = {e.open_account_id: e for e in session.scalars(
        select(CoolingEpisode).where(among(session, CoolingEpisode.open_account_id, ids)))}
    own = {t.account_id: t for t in session.scalars(
        select(AccountThreshold).where(among(session, AccountThreshold.account_id, ids)))}
    hour = now.replace(minute=0, second=0, microsecond=0)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    to_open = []
    for account in accounts:
        current, parts, explanation = score(signals[account.id])  # type: ignore[index]
        values = {"computed_at": now, "score": current, "signals": parts_json(parts), "explanation": explanation}
        account.temperature = current
        previous = latest.get(account.id)
        if previous is not None and hour <= previous[1] <= now:
            updates.append({"id": previous[0], **values})
        else:
            inserts.append({"account_id": account.id, **values})
        result.scored += 1
        row = own.get(account.id)  # type: ignore[arg-type]
        mine = thresholds if row is None else dataclasses.replace(thresholds, **{
            name: value for name in ("cold_below", "sharp_drop") if (value := getattr(row, name)) is not None})
        reasons = reasons_for(signals[account.id], current, best.get(account.id), mine)  # type: ignore[index]
        episode = episodes.get(account.id)
        if episode is None and reasons:
            to_open.append((account, reasons, current, parts))
        elif episode is not None and not reasons and current >= mine.cold_below + mine.recovery_margin:
            episode.ended_at, episode.open_account_id = now, None
            result.recovered.append(account.id)  # type: ignore[arg-type]
    if inserts:
        session.execute(insert(TemperatureSnapshot), inserts)
    if updates:
        session.execute(update(TemperatureSnapshot), updates)
    session.flush()
    result.opened.extend(_open_many(session, openings=to_open, now=now, default_locale=default_locale))


WATCHING = "keyaccounts.watching"  # session.info key: the accounts whose alerts are being written


def watch_one(session: Session, *, account_id: int, now: datetime, thresholds: Thresholds, result: RunResult,
              default_locale: str = "ru", signals: Signals | None = None) -> TemperatureSnapshot:
    """Take one key account's temperature under its row lock, and open or end its cooling episode
    (`signals` read beforehand by the caller for a chunk of accounts, else here)."""
    session.info[WATCHING] = {account_id}  # the alert's own event and task do not make it due again
    try:
        return _watch_one(session, account_id=account_id, now=now, thresholds=thresholds, result=result,
                          default_locale=default_locale, signals=signals)
    finally:
        session.info.pop(WATCHING, None)


def _watch_one(session: Session, *, account_id: int, now: datetime, thresholds: Thresholds, result: RunResult,
               default_locale: str, signals: Signals | None) -> TemperatureSnapshot:
    account = session.get(Account, account_id, with_for_update=True)
    assert account is not None
    if signals is None:
        signals = signals_of(session, account_id=account_id, now=now)
    current, parts, explanation = score(signals)
    since = now - timedelta(days=thresholds.drop_window_days)
    best = max(session.scalars(select(TemperatureSnapshot.score).where(
        TemperatureSnapshot.account_id == account_id, TemperatureSnapshot.computed_at >= since)), default=None)
    account.temperature = current  # what segments select by (hub.models.Account)
    snapshot = _snapshot(session, account_id=account_id, now=now)
    snapshot.computed_at, snapshot.score, snapshot.signals, snapshot.explanation = (
        now, current, parts_json(parts), explanation)
    result.scored += 1
    thresholds = thresholds_for(session, account_id=account_id, base=thresholds)
    reasons = reasons_for(signals, current, best, thresholds)
    episode = session.scalars(select(CoolingEpisode).where(CoolingEpisode.open_account_id == account_id)).first()
    if episode is None and reasons:
        result.opened.extend(_open_many(session, openings=[(account, reasons, current, parts)], now=now,
                                        default_locale=default_locale))
    elif episode is not None and not reasons and current >= thresholds.cold_below + thresholds.recovery_margin:
        episode.ended_at = now
        episode.open_account_id = None
        result.recovered.append(account_id)
    session.flush()
    return snapshot


def _snapshot(session: Session, *, account_id: int, now: datetime) -> TemperatureSnapshot:
    """The snapshot to write: the account's latest when it is of the same hour (recomputes on new
    events then refresh one point instead of adding dozens), else a new one. The caller holds the
    account's row lock, so two concurrent recomputes write one row, the second after the first."""
    latest = session.scalars(select(TemperatureSnapshot).where(TemperatureSnapshot.account_id == account_id)
                             .order_by(TemperatureSnapshot.computed_at.desc(), TemperatureSnapshot.id.desc())
                             .limit(1)).first()
    hour = now.replace(minute=0, second=0, microsecond=0)
    if latest is not None and hour <= latest.computed_at <= now:
        return latest
    snapshot = TemperatureSnapshot(account_id=account_id, computed_at=now, score=0)
    session.add(snapshot)
    return snapshot


def _open_many(session: Session, *, openings: list[tuple[Account, dict[str, dict[str, Any]], int, list[Part]]],
               now: datetime, default_locale: str) -> list[int]:
    """Open the episodes of these cooling accounts, each with its `account.cooling` event and its
    owner's task; the ids of the accounts whose episode this call opened.

    Written as a batch whatever their number: one insert of the episodes (ON CONFLICT on the open
    account: an episode another process opened first stays the only one, and that account gets
    nothing more here), one read of their first members and owners, one batch of events through the
    one write path (post_events), one of tasks (create_tasks), one update of the episodes."""
    if not openings:
        return []
    rows = [{"account_id": account.id, "open_account_id": account.id, "reason": next(iter(reasons)),
             "detail": {"reasons": reasons, "score": score_now}, "started_at": now}
            for account, reasons, score_now, _parts in openings]
    opened = {e.account_id: e for e in insert_ignore_many(session, CoolingEpisode, rows, ["open_account_id"],
                                                          CoolingEpisode)}
    openings = [o for o in openings if o[0].id in opened]
    if not openings:
        return []
    ids = [account.id for account, *_ in openings]
    first_member = dict(session.execute(
        select(Contact.account_id, func.min(Contact.id)).where(
            among(session, Contact.account_id, ids), Contact.merged_into.is_(None))
        .group_by(Contact.account_id)).all())
    wanted = {a.owner_id or a.deputy_id for a, *_ in openings} - {None}
    users = {u.id: u for u in session.scalars(select(User).where(among(session, User.id, wanted)))} if wanted else {}
    events, tasks = [], []
    for account, reasons, score_now, parts in openings:
        assignee = users.get(account.owner_id or account.deputy_id)  # type: ignore[arg-type]
        _ = package_translations((assignee.locale if assignee else None) or default_locale, "keyaccounts").gettext
        first = next(iter(reasons))
        title = _(TITLE) % {"name": account.name}
        why = "; ".join(_(REASONS[r]) % figures for r, figures in reasons.items())
        action = _(ACTIONS[first]) % reasons[first] if first == "silence" else _(ACTIONS[first])
        cold = [_(p.template) % p.params for p in sorted(parts, key=lambda p: p.value)
                if p.template and p.value < WARM_PART]
        notes = f"{why}.\n{_('Temperature')} {score_now}: {'; '.join(cold)}\n\n{action}\n\n/accounts/{account.id}"
        episode, contact_id = opened[account.id], first_member.get(account.id)
        if contact_id is not None:
            events.append((episode, InboundEvent(
                channel=CHANNEL, kind=COOLING_KIND, direction=Direction.INTERNAL, contact_id=contact_id,
                external_id=f"keyaccounts:cooling:{episode.id}", subject=title[:1000], text=notes,
                data={"account_id": account.id, "reasons": reasons, "score": score_now, "episode_id": episode.id})))
        # An owner who left (deactivated) gets no task: it is unassigned, so everyone's open tasks show it.
        tasks.append(NewTask(title=title[:500], notes=notes, contact_id=contact_id,
                             assignee_id=assignee.id if assignee is not None and assignee.is_active else None))
    # The alerts' own events and tasks say nothing new about the accounts: they do not make them due.
    watching = session.info.get(WATCHING)
    session.info[WATCHING] = set(ids)
    try:
        event_ids = post_events(session, events=[event for _episode, event in events]) if events else []
        task_ids = create_tasks(session, actor=SYSTEM, tasks=tasks)
    finally:
        if watching is None:
            session.info.pop(WATCHING, None)
        else:
            session.info[WATCHING] = watching
    for (episode, _event), event_id in zip(events, event_ids):
        episode.event_id = event_id
    for (account, reasons, score_now, _parts), task_id in zip(openings, task_ids):
        opened[account.id].task_id = task_id
        notices.emit(session, "key_account.cooling", subject=f"account:{account.id}",
                     data={"account_id": account.id, "account_name": account.name,
                           "episode_id": opened[account.id].id, "score": score_now, "reasons": reasons,
                           "owner_id": account.owner_id}, occurred_at=now)
    session.flush()
    return ids
