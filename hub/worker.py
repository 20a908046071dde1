"""The outbox worker: claims due deliveries, hands them to their channel, records what happened.

`Worker.tick()` is one synchronous pass (tests call it directly); `EmbeddedWorker` runs the
scheduler's ticks in background threads inside `hub serve`; `run_worker` is `hub worker`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import threading
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError

from hub import clock, outbox, sending, throttle
from hub.channel import Capability, Channel, OutboundMessage, SendResult
from hub.runtime import freeze_startup_objects
from hub.scheduler import DISPATCH_JOB_ID, build_scheduler

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from hub.runtime import Hub

log = logging.getLogger("hub.worker")


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Claims and sends deliveries; one tick at a time, many workers side by side."""

    def __init__(self, hub: Hub, name: str | None = None) -> None:
        self.hub = hub
        self.name = name or default_name()
        # Claims carry a token as well as the name: two processes started with the same
        # --name must still never record each other's sends.
        self.claimant = f"{self.name}#{secrets.token_hex(4)}"
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._tick_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._tick_lock.locked()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def woken(self) -> bool:
        """A wake-up arrived that no dispatch pass has looked at yet."""
        return self._wake.is_set()

    def sending_channels(self) -> list[Channel]:

        return [c for _, c in sorted(self.hub.channels.items()) if Capability.SEND in c.capabilities and c.configured]

    def tick(self, now: datetime | None = None) -> int:
        """Claim and send one batch per sending channel; how many deliveries it handled."""
        return self._tick(now)[0]

    def dispatch_due(self) -> int:
        """Tick until nothing due is left or a stop is asked for (the `outbox.dispatch_due` job).

        When a rate limit holds deliveries back, the pass waits for the next token (not for the next
        poll), so a throttled channel sends at its rate and not in bursts once per poll.
        """
        total = 0
        poll = self.hub.settings.outbox.poll_seconds
        while not self.stopping:
            self._wake.clear()
            handled, more, wait = self._tick(None)
            total += handled
            if wait is not None:
                if self._stopping.wait(min(wait, poll)):
                    break
                continue
            if not (more or self._wake.is_set()):
                break
        return total

    def wake(self) -> None:
        """Something became due: make a running dispatch pass look again before it ends."""
        self._wake.set()

    def request_stop(self) -> None:
        """Stop claiming; the batch in flight still finishes and is recorded."""
        self._stopping.set()

    def stop(self) -> int:
        """Finish the batch in flight, then release this worker's claimed rows; how many were released."""
        self._stopping.set()
        with self._tick_lock:
            released = outbox.release_claims(self.hub, worker=self.claimant)
            self._close_loop()
        return released

    def _close_loop(self) -> None:
        with self._loop_lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is not None and thread is not None:
            _stop_loop(loop)
            thread.join()

    def _tick(self, now: datetime | None) -> tuple[int, bool, float | None]:
        """(deliveries handled, whether a full batch suggests more, seconds to wait for a rate limit or None)."""
        batch = self.hub.settings.outbox.batch_size
        handled, more = 0, False
        wait: float | None = None
        with self._tick_lock:
            for channel in self.sending_channels():
                if self.stopping:
                    break
                # Tokens first, then claim at most that many: nothing is claimed only to sit waiting.
                limits = throttle.limits_for(self.hub.settings, channel.name)
                if limits and not outbox.has_due(self.hub, channel=channel.name, now=now):
                    continue  # idle: no write transaction on the shared bucket
                grant = throttle.acquire(self.hub, limits, batch, now=now)
                if grant.granted < 1:
                    wait = grant.wait if wait is None else min(wait, grant.wait)
                    continue
                messages = outbox.claim_due(self.hub, worker=self.claimant, limit=grant.granted, now=now,
                                            channels=[channel.name])
                sent = self._deliver(channel, messages, now) if messages else 0
                throttle.refund(self.hub, limits, grant.granted - sent)
                handled += len(messages)
                if grant.granted < batch and messages and len(messages) == grant.granted:
                    wait = grant.wait if wait is None else min(wait, grant.wait)  # throttled with more due
                more = more or len(messages) == batch
        return handled, more, wait

    def _deliver(self, channel: Channel, messages: Sequence[OutboundMessage], now: datetime | None) -> int:
        """Send what the sending rules let through and record every outcome; how many were handed over."""

        messages = self._apply_rules(messages, now)
        if not messages:
            return 0

        # Give up on the batch before the lease runs out, so no other worker resends it meanwhile.
        timeout = max(1.0, self.hub.settings.outbox.lease_seconds * 0.8)
        results: list[Any]
        try:
            results = self._run(asyncio.wait_for(channel.send_many(messages), timeout))
            if len(results) != len(messages):
                raise RuntimeError(f"{channel.name}.send_many returned {len(results)} results for {len(messages)} messages")
        except Exception as exc:  # recorded below as a failure of every message in the batch
            log.error("sending %d deliveries on %s failed as a batch", len(messages), channel.name, exc_info=exc)
            results = [exc] * len(messages)
        outcomes: list[tuple[int, int | None, Any]] = []
        for message, result in zip(messages, results):
            if not isinstance(result, (SendResult, BaseException)):
                result = TypeError(f"{channel.name}.send returned {type(result).__name__}, not a SendResult")
            outcomes.append((message.delivery_id, message.attempt, result))
        try:
            # The whole batch in one transaction: one commit instead of one per message.
            outbox.record_outcomes(self.hub, outcomes, worker=self.claimant, now=now)
        except Exception:
            log.exception("could not record the outcomes of %d deliveries as a batch; recording one by one", len(outcomes))
            for delivery_id, attempt, result in outcomes:
                try:
                    outbox.record_outcomes(self.hub, [(delivery_id, attempt, result)], worker=self.claimant, now=now)
                except Exception:
                    # The store is unreachable: the claim expires and the reaper requeues the row.
                    log.exception("could not record the outcome of delivery %s", delivery_id)
        return len(messages)

    def _apply_rules(self, messages: Sequence[OutboundMessage], now: datetime | None) -> list[OutboundMessage]:
        """Hold back (defer) or drop (skip) what a sending rule objects to; the rest goes out."""
        moment = now or clock.now()
        try:
            decisions = sending.decide(self.hub, messages, now=moment)
        except Exception:
            # A rule that cannot be checked must not let a message through: retry the batch later.
            log.exception("sending rules could not be checked; %d deliveries wait for the next pass", len(messages))
            for message in messages:
                outbox.defer_claimed(self.hub, delivery_id=message.delivery_id, worker=self.claimant,
                                     until=moment + timedelta(seconds=self.hub.settings.outbox.poll_seconds * 5),
                                     reason="sending rules could not be checked", attempt=message.attempt)
            return []
        going: list[OutboundMessage] = []
        for message, decision in zip(messages, decisions):
            if decision.verdict == sending.Verdict.SEND:
                going.append(message)
            elif decision.verdict == sending.Verdict.DEFER and decision.until is not None:
                outbox.defer_claimed(self.hub, delivery_id=message.delivery_id, worker=self.claimant,
                                     until=decision.until, reason=decision.reason, attempt=message.attempt)
            else:
                outbox.skip_claimed(self.hub, delivery_id=message.delivery_id, worker=self.claimant,
                                    reason=decision.reason, attempt=message.attempt)
        return going

    def _run(self, coro: Any) -> Any:
        # The worker's event loop lives in a thread of its own, so tick() works from any caller,
        # even one already inside an event loop (the app's lifespan, a test driving a browser),
        # and adapters can keep connections open between ticks.
        with self._loop_lock:
            if self._loop is None:
                self._loop = new_event_loop()
                self._loop_thread = threading.Thread(target=_serve_loop, args=(self._loop,),
                                                     name=f"hub-worker-loop-{self.name}", daemon=True)
                self._loop_thread.start()
                # A worker dropped without stop() (a test's, say) must not leave its thread behind.
                weakref.finalize(self, _stop_loop, self._loop)
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (uvicorn[standard] brings it on Linux and macOS):
    the SMTP and HTTP clients' per-message work costs less on it; asyncio's own loop elsewhere."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _serve_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _stop_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.call_soon_threadsafe(loop.stop)
    except RuntimeError:  # already closed
        pass


class EmbeddedWorker:
    """A worker plus the scheduler in background threads (inside `hub serve`, or `hub worker`)."""

    def __init__(self, hub: Hub, name: str | None = None, *, freeze_after_start: bool = False) -> None:
        self.hub = hub
        self.worker = Worker(hub, name)
        self.scheduler: BackgroundScheduler | None = None
        self._unsubscribe: Any = None
        self._freeze_after_start = freeze_after_start
        self._first_runs: set[str] = set()  # jobs whose first run (at start) has not ended yet
        self._first_runs_lock = threading.Lock()

    def start(self) -> None:
        """Start the scheduler; due work left from before a restart is dispatched at once."""
        self.scheduler = build_scheduler(self.hub, worker=self.worker)
        self.scheduler.add_listener(self._after_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        if self._freeze_after_start:
            self._first_runs = {job.id for job in self.scheduler.get_jobs() if getattr(job, "next_run_time", None)}
        self._unsubscribe = outbox.on_enqueued(self.hub, self._poke)
        self.scheduler.start()
        log.info("worker %s started with jobs %s", self.worker.claimant,
                 ", ".join(job.id for job in self.scheduler.get_jobs()))

    def stop(self) -> None:
        """Stop claiming, let running ticks and in-flight sends finish, release claimed rows."""
        self.worker.request_stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        released = self.worker.stop()
        log.info("worker %s stopped (%d claimed deliveries released)", self.worker.claimant, released)

    def _poke(self) -> None:
        """Run the dispatch job now instead of at the next poll (an agent's reply should not wait)."""
        self.worker.wake()
        if not self.worker.busy:  # a running pass sees the wake flag and looks again
            self._dispatch_now()

    def _after_job(self, event: Any) -> None:
        # A wake-up that came just as a pass was ending was skipped by max_instances: run it now.
        if event.job_id == DISPATCH_JOB_ID and self.worker.woken:
            self._dispatch_now()
        if self._first_runs:
            with self._first_runs_lock:
                waiting = bool(self._first_runs)
                self._first_runs.discard(event.job_id)
                done = waiting and not self._first_runs
            if done:
                # Every job has run once: what they imported and cached (templates, compiled
                # statements, lazily loaded modules) lives as long as the process, like its start-up.
                freeze_startup_objects()

    def _dispatch_now(self) -> None:
        if self.worker.stopping or self.scheduler is None:
            return
        try:
            self.scheduler.modify_job(DISPATCH_JOB_ID, next_run_time=datetime.now(timezone.utc))
        except (JobLookupError, SchedulerNotRunningError):  # shutting down: the next start dispatches it
            pass


def run_worker(hub: Hub, name: str | None = None) -> None:
    """Run a worker and the scheduler until SIGTERM or SIGINT, then stop gracefully. The process's
    long-lived heap is frozen out of the collector's full passes, as served processes do: once
    built, and again when every job has run once."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s; finishing in-flight sends", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    freeze_startup_objects()
    embedded = EmbeddedWorker(hub, name, freeze_after_start=True)
    try:
        embedded.start()
        while not stop.wait(1.0):
            pass
    finally:
        # A second signal during the graceful stop ends the process the default way.
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        embedded.stop()
