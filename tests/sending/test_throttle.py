"""Rate limits as shared token buckets in the database: exact in one process with an injected clock,
and held by two real worker processes together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from hub import outbox, throttle
from hub.models import Delivery
from hub.settings import SendingSettings
from hub.worker import Worker
from tests.test_outbox import queue

REPO = Path(__file__).resolve().parents[2]
PROC_TIMEOUT = 120


def limits(rate: float, capacity: float) -> list[throttle.Limit]:
    return [throttle.Limit("channel:fake", rate, capacity)]


def test_a_bucket_refills_at_its_rate_up_to_its_capacity(hub, frozen_clock):
    lim = limits(5, 10)
    assert throttle.acquire(hub, lim, 4).granted == 4  # a new bucket starts full
    grant = throttle.acquire(hub, lim, 50)
    assert grant.granted == 6 and grant.wait == 0.2  # one token every 1/5 s
    assert throttle.acquire(hub, lim, 1) == throttle.Grant(0, 0.2)
    frozen_clock.advance(seconds=1)
    assert throttle.acquire(hub, lim, 50).granted == 5
    frozen_clock.advance(hours=1)
    assert throttle.acquire(hub, lim, 50).granted == 10  # never more than the capacity


def test_refunded_tokens_are_available_again_but_never_above_capacity(hub, frozen_clock):
    lim = limits(1, 3)
    assert throttle.acquire(hub, lim, 3).granted == 3
    throttle.refund(hub, lim, 2)
    assert throttle.acquire(hub, lim, 5).granted == 2
    throttle.refund(hub, lim, 50)
    assert throttle.level(hub, "channel:fake") == 3


def test_several_buckets_grant_what_the_emptiest_allows_and_take_it_from_each(hub, frozen_clock):
    both = [throttle.Limit("global", 2, 2), throttle.Limit("channel:fake", 10, 10)]
    assert throttle.acquire(hub, both, 5).granted == 2
    assert throttle.level(hub, "channel:fake") == 8
    assert throttle.level(hub, "global") == 0


def test_a_clock_behind_the_last_writer_adds_nothing(hub, frozen_clock):
    lim = limits(1, 5)
    throttle.acquire(hub, lim, 5)
    assert throttle.acquire(hub, lim, 5, now=frozen_clock.current - timedelta(seconds=30)).granted == 0


def test_the_worker_claims_no_more_deliveries_than_tokens(hub, frozen_clock):
    hub.settings.sending = SendingSettings(rate_per_second={"fake": 4}, burst_seconds=1)
    ids = [queue(hub, f"k{i}") for i in range(10)]
    worker = Worker(hub)
    assert worker.tick() == 4
    with hub.session(read_only=True) as s:
        # Nothing was claimed beyond the budget: the other six are untouched in the queue.
        assert sorted(s.scalars(select(Delivery.status).where(Delivery.id.in_(ids)))) == ["queued"] * 6 + ["sent"] * 4
        assert s.scalar(select(Delivery.attempts).where(Delivery.status == "queued").limit(1)) == 0
    assert worker.tick() == 0
    frozen_clock.advance(seconds=0.5)
    assert worker.tick() == 2
    frozen_clock.advance(seconds=10)
    assert worker.tick() == 4


def test_unused_tokens_are_given_back(hub, frozen_clock):
    hub.settings.sending = SendingSettings(rate_per_second={"fake": 5}, burst_seconds=1)
    queue(hub, "one")
    assert Worker(hub).tick() == 1
    assert throttle.level(hub, "channel:fake") == 4  # five taken, one used, four given back


def test_other_channels_are_not_limited_by_the_fake_channels_rate(hub):
    hub.settings.sending = SendingSettings(rate_per_second={"sms": 1})
    assert throttle.limits_for(hub.settings, "fake") == []
    assert throttle.limits_for(hub.settings, "sms") == [throttle.Limit("channel:sms", 1, 1)]


# --- two worker processes together -------------------------------------------------------------

def spawn(url: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sending.rate_proc", "--url", url, *args],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise AssertionError(f"rate process did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc


@pytest.mark.serial
def test_two_worker_processes_together_stay_within_the_rate(hub):
    rate, burst_seconds, total = 20.0, 0.5, 60
    capacity = rate * burst_seconds
    with hub.session() as s, s.begin():
        for i in range(total):
            outbox.enqueue(s, channel="fake", address=f"+7916000{i:04d}", content={"text": f"#{i}"},
                           idempotency_key=f"rate-{i}")
    url = hub.settings.database_url
    args = ("--rate", str(rate), "--burst-seconds", str(burst_seconds), "--batch", "50")
    procs = [spawn(url, *args), spawn(url, *args)]
    started = datetime.now(timezone.utc)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    handled = []
    for proc in procs:
        out, err = proc.communicate(timeout=PROC_TIMEOUT)
        assert proc.returncode == 0, err
        handled.append(json.loads(out.strip().splitlines()[-1])["handled"])

    with hub.session(read_only=True) as s:
        times = sorted(s.scalars(select(Delivery.sent_at).where(Delivery.status == "sent")))
    assert len(times) == total and sum(handled) == total
    assert all(n > 0 for n in handled), handled  # both processes sent: the limit is shared, not split
    # A send's token is taken before its sent_at is stamped, and the bucket started full at `started`
    # at the earliest, so no count may exceed rate × elapsed + capacity.
    assert total <= rate * (times[-1] - started).total_seconds() + capacity
    # Any stretch of sends: the tokens of its first send may predate its stamp by the time a batch
    # takes to send and record (generously 1 s here).
    for i in range(total):
        for j in range(i + 1, total):
            assert j - i + 1 <= rate * ((times[j] - times[i]).total_seconds() + 1.0) + capacity



def test_deliveries_a_sending_rule_holds_back_cost_no_tokens(hub, frozen_clock):
    from hub.settings import QuietHours

    frozen_clock.current = datetime(2026, 1, 15, 23, 0, tzinfo=timezone.utc)  # 02:00 in Moscow
    hub.settings.sending = SendingSettings(rate_per_second={"fake": 5},
                                           quiet_hours={"fake": QuietHours(start="09:00", end="21:00")})
    held = [queue(hub, f"m{i}", purpose="marketing") for i in range(3)]
    receipt = queue(hub, "t1")
    assert Worker(hub).tick() == 4
    with hub.session(read_only=True) as s:
        assert [s.get(Delivery, i).status for i in held] == ["queued"] * 3
        assert s.get(Delivery, receipt).status == "sent"
    assert throttle.level(hub, "channel:fake") == 4  # only the receipt spent a token
