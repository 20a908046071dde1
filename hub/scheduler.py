"""The clock, not the memory: APScheduler 3 fires idempotent ticks over due rows.

What is due lives in database rows (outbox `send_after`, campaign `next_run_at`, …), so the
scheduler keeps nothing: each process builds the same in-memory schedule from the registered
jobs, and a restart loses nothing. Ticks marked `once` run under a cluster-wide lock
(hub.locks), so any number of worker processes can run side by side.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hub.plugin import PeriodicJob, PluginLoadError, load_group
from hub import outbox
from hub.locks import once_lock

if TYPE_CHECKING:
    from hub.runtime import Hub
    from hub.worker import Worker

log = logging.getLogger("hub.scheduler")

ENTRY_POINT_GROUP = "hub.jobs"
DISPATCH_JOB_ID = "outbox.dispatch_due"
REAP_JOB_ID = "outbox.reap_expired"
# Status callbacks that found no delivery within this long were never ours (or their send was lost).
PENDING_STATUS_TTL = timedelta(days=7)
# After downtime or a stall a tick runs once (not once per missed time), however late; and never
# twice at once in one process (other processes are kept out by once_lock or SKIP LOCKED).
JOB_OPTIONS = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}
_JOB_ID = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


class JobError(RuntimeError):
    """A job that cannot be scheduled (a bad id, a clash, no trigger) stops start-up, naming it."""


def outbox_jobs(hub: Hub, worker: Worker) -> list[PeriodicJob]:
    """The hub's own ticks: dispatch due deliveries, and requeue ones whose worker died."""
    settings = hub.settings.outbox

    def reap(hub: Hub) -> None:
        outbox.reap_expired(hub)
        outbox.purge_pending(hub, older_than=PENDING_STATUS_TTL)

    return [
        # Every worker dispatches (SKIP LOCKED shares the rows out), so no lock.
        PeriodicJob(DISPATCH_JOB_ID, lambda _hub: worker.dispatch_due(), seconds=settings.poll_seconds, once=False),
        # Requeuing expired claims is one conditional UPDATE: safe to run in every process.
        PeriodicJob(REAP_JOB_ID, reap, seconds=max(settings.poll_seconds, min(60.0, settings.lease_seconds / 4)),
                    once=False),
    ]


def entry_point_jobs() -> list[PeriodicJob]:
    """Jobs of installed packages: each `hub.jobs` entry point is a callable returning PeriodicJobs."""
    jobs: list[PeriodicJob] = []
    try:
        factories = load_group(ENTRY_POINT_GROUP, what="job package")
    except PluginLoadError as exc:
        raise JobError(str(exc)) from exc
    for name, factory in factories.items():
        try:
            found = list(factory())
        except Exception as exc:
            raise JobError(f"job package {name!r} failed to list its jobs: {exc}") from exc
        for job in found:
            if not isinstance(job, PeriodicJob):
                raise JobError(f"job package {name!r} returned {job!r}, not a hub.plugin.PeriodicJob")
        jobs.extend(found)
    return jobs


def collect_jobs(hub: Hub, *, worker: Worker, extra: Iterable[PeriodicJob] = ()) -> list[PeriodicJob]:
    """Every periodic job of this process: the outbox's, each channel's, and installed packages'."""
    jobs = [*outbox_jobs(hub, worker)]
    for name, channel in sorted(hub.channels.items()):
        if channel.configured:  # an unconfigured channel's poll would only fail every tick
            jobs.extend(channel.jobs())
        elif channel.jobs():
            log.info("channel %s is not configured; its jobs are not scheduled", name)
    for _name, extension in sorted(hub.extensions.items()):
        jobs.extend(extension.jobs())
    jobs.extend(entry_point_jobs())
    jobs.extend(extra)
    return validate_jobs(jobs)


def validate_jobs(jobs: Iterable[PeriodicJob]) -> list[PeriodicJob]:
    """The jobs, if every id is dotted and unique and each has one schedule; JobError otherwise."""
    jobs = list(jobs)
    seen: set[str] = set()
    for job in jobs:
        if not _JOB_ID.fullmatch(job.id):
            raise JobError(f"job id {job.id!r} must be dotted lowercase, like 'email.poll_imap'")
        if job.id in seen:
            raise JobError(f"two jobs have the id {job.id!r}")
        if (job.seconds is None) == (job.cron is None):
            raise JobError(f"job {job.id!r} needs exactly one of seconds or cron")
        seen.add(job.id)
    return jobs


def make_trigger(job: PeriodicJob, *, zone: str) -> BaseTrigger:
    """An interval trigger, or a crontab expression read in `zone` (the hub's default time zone)."""
    if job.cron is not None:
        try:
            return CronTrigger.from_crontab(job.cron, timezone=ZoneInfo(zone))
        except ValueError as exc:
            raise JobError(f"job {job.id!r} has an invalid cron expression {job.cron!r}: {exc}") from None
    if job.seconds is None or job.seconds <= 0:
        raise JobError(f"job {job.id!r} needs a positive interval")
    return IntervalTrigger(seconds=job.seconds, timezone=timezone.utc)


def run_job(hub: Hub, job: PeriodicJob) -> bool:
    """Run one tick of `job` (under its cluster-wide lock if `once`); whether it ran here."""
    try:
        if not job.once:
            job.func(hub)
            return True
        with once_lock(hub, f"job:{job.id}") as acquired:
            if not acquired:
                log.debug("job %s is running elsewhere; skipped here", job.id)
                return False
            job.func(hub)
            return True
    except Exception:
        # The tick failed; the rows it was working on are still due, so the next tick retries.
        log.exception("job %s failed", job.id)
        return False


def build_scheduler(
    hub: Hub,
    *,
    worker: Worker,
    jobs: Iterable[PeriodicJob] | None = None,
    max_threads: int = 8,
) -> BackgroundScheduler:
    """A scheduler (not started) with every job registered under its fixed id."""
    scheduler = BackgroundScheduler(
        timezone=ZoneInfo(hub.settings.default_timezone),
        executors={"default": ThreadPoolExecutor(max_workers=max_threads)},
        job_defaults=JOB_OPTIONS,
    )
    now = datetime.now(timezone.utc)
    for job in collect_jobs(hub, worker=worker) if jobs is None else validate_jobs(jobs):
        scheduler.add_job(
            run_job,
            make_trigger(job, zone=hub.settings.default_timezone),
            args=(hub, job),
            id=job.id,
            name=job.id,
            **JOB_OPTIONS,
            # Interval ticks run at start, so work that fell due while nothing ran goes out at once.
            **({"next_run_time": now} if job.cron is None else {}),
        )
    return scheduler

