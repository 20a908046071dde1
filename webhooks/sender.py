"""Sending webhook deliveries: one lane per endpoint, so a slow or dead endpoint never holds up the others.

`Dispatcher.dispatch_due()` (the `webhooks.dispatch` job, and every commit that queued something)
claims due deliveries for each endpoint that has no lane running in this process and starts a lane
for it on the dispatcher's own event loop, then returns at once: the scheduler thread, the outbox's
worker and the other endpoints never wait for an endpoint's answer. A lane sends its endpoint's
deliveries one after another, records their outcomes in batches, and claims more while there are
some. When an endpoint fails (an error status, a timeout, a refused connection) its lane stops and
hands the rest of its batch back uncounted, due when the failed one retries: a dead endpoint costs
one try per backoff step, not one per queued message.

Every request goes to an address checked just before (webhooks.safety), with the name in the Host
header and in TLS (SNI and certificate check); no redirect is followed; the answer is read up to
`max_response_bytes` and its first `keep_response_bytes` are kept for the log. Secrets never
appear in logs or errors.
"""

from __future__ import annotations

import asyncio
import atexit
import email.utils
import logging
import ssl
import threading
import time
import weakref
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx

from hub.worker import _serve_loop, _stop_loop, default_name, new_event_loop
from webhooks import delivery, safety
from webhooks.service import on_queued, policy_of
from webhooks.signing import signed_headers

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("webhooks.sender")
USER_AGENT = "hub-webhooks/1"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None if absent or garbage."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max((moment - (now or datetime.now(timezone.utc))).total_seconds(), 0.0)


class Dispatcher:
    """The webhook lanes of one process."""

    def __init__(self, hub: Hub, name: str | None = None) -> None:
        self.hub = hub
        self.settings = hub.extensions["webhooks"].settings
        self.claimant = f"{name or default_name()}#webhooks#{id(self):x}"
        self._lanes: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[int, httpx.AsyncClient] = {}
        self._tls: ssl.SSLContext | None = None
        self._stopping = False
        self._dispatching = threading.Lock()
        self._wake_pending = False
        on_queued(hub, self.wake)
        # A worker stopping normally (SIGTERM) finishes the sends in flight and hands the rest back.
        atexit.register(_stop_at_exit, weakref.ref(self))

    # --- scheduling ------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = new_event_loop()
                self._thread = threading.Thread(target=_serve_loop, args=(self._loop,), daemon=True,
                                                name="hub-webhooks-loop")
                self._thread.start()
            return self._loop

    def wake(self) -> None:
        """Something was queued (after its commit): dispatch soon, off the committing thread, once."""
        if self._stopping or self._wake_pending:
            return
        self._wake_pending = True
        loop = self._ensure_loop()
        loop.call_soon_threadsafe(lambda: loop.run_in_executor(None, self._woken))

    def _woken(self) -> None:
        self._wake_pending = False
        try:
            self.dispatch_due()
        except Exception:  # the next scheduled pass retries
            log.exception("webhook dispatch after a wake-up failed")

    def dispatch_due(self) -> int:
        """Start a lane for every endpoint with due deliveries and none running here; how many started."""
        if self._stopping:
            return 0
        with self._dispatching:
            return self._dispatch()

    def _dispatch(self) -> int:
        with self._lock:
            busy = list(self._lanes)
        jobs, endpoints = delivery.claim(self.hub, worker=self.claimant, per_endpoint=self.settings.batch_per_endpoint,
                                         skip=busy)
        by_endpoint: dict[int, list[delivery.Job]] = {}
        for job in jobs:
            by_endpoint.setdefault(job.endpoint_id, []).append(job)
        loop = self._ensure_loop()
        for endpoint_id, batch in by_endpoint.items():
            with self._lock:
                if endpoint_id in self._lanes:  # started meanwhile by a wake-up: hand these back
                    delivery.record(self.hub, [], worker=self.claimant,
                                    released=[(j.delivery_id, j.attempt) for j in batch])
                    continue
                future = asyncio.run_coroutine_threadsafe(self._lane(endpoints[endpoint_id], batch), loop)
                self._lanes[endpoint_id] = future
            future.add_done_callback(lambda f, e=endpoint_id: self._lane_done(e, f))
        return len(by_endpoint)

    def _lane_done(self, endpoint_id: int, future: Any) -> None:
        with self._lock:
            self._lanes.pop(endpoint_id, None)
        if not future.cancelled() and future.exception() is not None:
            log.error("webhook lane of endpoint %s failed", endpoint_id, exc_info=future.exception())

    def drain(self, timeout: float = 60.0) -> None:
        """Dispatch and wait until no lane runs and nothing is due (tests, the benchmark, the CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.dispatch_due()
            with self._lock:
                running = list(self._lanes.values())
            if not running:
                return
            for future in running:
                try:
                    future.result(timeout=max(deadline - time.monotonic(), 0.01))
                except Exception:  # logged by _lane_done
                    pass
        raise TimeoutError("webhook lanes still running after the timeout")

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._lanes)

    def stop(self) -> None:
        """Stop starting lanes, let running ones end (their claims expire if they hang), close the loop."""
        if self._stopping and self._loop is None:
            return
        self._stopping = True
        with self._lock:
            running = list(self._lanes.values())
            loop, thread = self._loop, self._thread
        for future in running:
            try:
                future.result(timeout=self.settings.timeout_seconds + 5)
            except Exception:
                pass
        if loop is not None and thread is not None:
            asyncio.run_coroutine_threadsafe(self._close_clients(), loop).result(timeout=5)
            _stop_loop(loop)
            thread.join(timeout=5)
        self._loop = self._thread = None

    async def _close_clients(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    # --- one endpoint's lane --------------------------------------------------------------

    async def _lane(self, endpoint: delivery.EndpointInfo, batch: list[delivery.Job]) -> None:
        while batch and not self._stopping:
            healthy = await self._send_batch(endpoint, batch)
            if not healthy:
                return
            # More for this endpoint? (claimed off the loop: the store may be slow)
            jobs, endpoints = await asyncio.to_thread(
                delivery.claim, self.hub, worker=self.claimant, per_endpoint=self.settings.batch_per_endpoint,
                only=endpoint.id)
            batch, endpoint = jobs, endpoints.get(endpoint.id, endpoint)

    async def _send_batch(self, endpoint: delivery.EndpointInfo, batch: Sequence[delivery.Job]) -> bool:
        """Send in order until one fails; record everything; whether the endpoint answered well."""
        outcomes: list[delivery.Outcome] = []
        last_flush = time.monotonic()
        try:
            target = await safety.check_url_async(endpoint.url, policy_of(self.hub))
        except safety.UnsafeUrl as exc:
            # The host now resolves somewhere it must not (DNS changed): a failed try, not a send.
            first = batch[0]
            outcome = delivery.Outcome(first.delivery_id, first.attempt, error=str(exc)[:500])
            await self._flush([outcome], released=batch[1:], failed=outcome)
            return False
        recording: asyncio.Future[None] | None = None  # the previous outcomes' record, written while we send on
        for index, job in enumerate(batch):
            if self._stopping:  # shutting down: hand the untried rest back at once, not at lease expiry
                await _settled(recording)
                await self._flush(outcomes, released=batch[index:])
                return False
            outcome = await self._send_one(endpoint, target, job)
            outcomes.append(outcome)
            if not outcome.ok:
                await _settled(recording)
                await self._flush(outcomes, released=batch[index + 1:], failed=outcome)
                return False
            # Record as we go, so a slow endpoint's lease never runs out with outcomes unrecorded; in
            # the background, one record in flight per lane: the lane does not wait for the store.
            if len(outcomes) >= 25 or time.monotonic() - last_flush > 1.0:
                await _settled(recording)
                recording = asyncio.ensure_future(self._flush(outcomes))
                outcomes, last_flush = [], time.monotonic()
        await _settled(recording)  # every outcome is recorded before the lane claims more
        if outcomes:
            await self._flush(outcomes)
        return True

    async def _flush(self, outcomes: Sequence[delivery.Outcome], *, released: Sequence[delivery.Job] = (),
                     failed: delivery.Outcome | None = None) -> None:
        """Record outcomes (and hand back the untried rest of a batch after `failed`), off the loop."""
        try:
            await asyncio.to_thread(delivery.record, self.hub, list(outcomes), worker=self.claimant,
                                    released=[(j.delivery_id, j.attempt) for j in released])
        except Exception:
            # The store is unreachable: the claims expire and the reaper requeues them (sent again).
            log.exception("could not record %d webhook outcomes", len(outcomes))

    def _client(self, endpoint_id: int) -> httpx.AsyncClient:
        client = self._clients.get(endpoint_id)
        if client is None:
            s = self.settings
            if self._tls is None:  # one context for every lane: building one loads the CA bundle (~20 ms)
                self._tls = httpx.create_ssl_context(trust_env=False)
            client = httpx.AsyncClient(
                verify=self._tls, follow_redirects=False, trust_env=False,  # no redirects, no proxy from the env
                timeout=httpx.Timeout(s.timeout_seconds, connect=s.connect_timeout_seconds),
                limits=httpx.Limits(max_connections=2, max_keepalive_connections=2))
            self._clients[endpoint_id] = client
        return client

    async def _send_one(self, endpoint: delivery.EndpointInfo, target: safety.Target, job: delivery.Job) -> delivery.Outcome:
        s = self.settings
        headers = {**signed_headers(list(endpoint.secrets), message_id=job.message_id, body=job.body),
                   "content-type": "application/json", "user-agent": USER_AGENT, "host": target.host_header()}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        started = time.monotonic()
        try:
            async with asyncio.timeout(s.timeout_seconds):
                request = self._client(endpoint.id).build_request("POST", target.connect_url(), content=job.body,
                                                                  headers=headers, extensions=extensions)
                response = await self._client(endpoint.id).send(request, stream=True)
                try:
                    head = bytearray()
                    async for chunk in response.aiter_raw():
                        head += chunk
                        if len(head) >= s.max_response_bytes:
                            break  # the cap: the rest is never read
                finally:
                    await response.aclose()
        except TimeoutError:
            return delivery.Outcome(job.delivery_id, job.attempt, latency_ms=_ms(started),
                                    error=f"no answer within {s.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return delivery.Outcome(job.delivery_id, job.attempt, latency_ms=_ms(started),
                                    error=f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__)
        retry_after = None
        if response.status_code in (429, 503) or response.status_code >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        text = bytes(head[: s.keep_response_bytes]).decode("utf-8", "replace")
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            error = f"HTTP {response.status_code}: redirects are not followed"
        return delivery.Outcome(job.delivery_id, job.attempt, status_code=response.status_code,
                                latency_ms=_ms(started), response=text, error=error, retry_after=retry_after)


async def _settled(recording: asyncio.Future[None] | None) -> None:
    if recording is not None:
        await recording  # _flush logs its own failure and never raises


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _stop_at_exit(ref: weakref.ReferenceType[Dispatcher]) -> None:
    dispatcher = ref()
    if dispatcher is not None:
        dispatcher.stop()
