"""A/B assignment under kill -9: a real worker process running an A/B campaign is killed twice while
it adds recipients and sends the test share, restarted, then killed again while it sends the winner
to the rest. Every address ends up with messages of one variant only — the one recorded for it —
and twice only what was in flight at a kill."""

from __future__ import annotations

import email
import email.policy
import os
import signal
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from campaigns.ab import decide
from campaigns.models import Campaign, CampaignRecipient
from hub import clock
from hub.auth import SYSTEM
from hub.models import DeliveryStatus
from tests.campaigns.ab_helpers import ab_campaign
from tests.campaigns.helpers import deliveries, recipients, stop
from tests.campaigns.test_campaign_crash import in_flight, spawn, wait_until
from tests.channels.email.conftest import start_smtp

N = 120


def received_subjects(server) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[str]] = defaultdict(list)
    for meta, raw in server.received():
        subject = str(email.message_from_bytes(raw, policy=email.policy.default)["subject"])
        for rcpt in meta["rcpt_tos"]:
            out[rcpt].append(subject)
    return out


def all_sent(hub, cid: int, count: int) -> bool:  # type: ignore[no-untyped-def]
    found = deliveries(hub, cid)
    return len(found) == count and all(d.status == DeliveryStatus.SENT for d in found)


@pytest.mark.slow
def test_a_worker_killed_mid_test_and_mid_winner_gives_nobody_a_second_variant(hub, tmp_path):
    cid = ab_campaign(hub, N, share=50, metric="click", wait=60)
    server = start_smtp(tmp_path / "smtp")
    url = hub.settings.database_url
    may_repeat: set[int] = set()
    try:
        for kill_after in (8, 25):  # while recipients are still being drawn and added, then while sending
            proc = spawn(url, server.port)
            wait_until(lambda: len(server.received()) >= kill_after, f"{kill_after} messages")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            may_repeat |= in_flight(hub)
        proc = spawn(url, server.port)
        wait_until(lambda: len(recipients(hub, cid)) == N, "every recipient drawn")
        tested = [r for r in recipients(hub, cid) if r.ab_role == "test"]
        wait_until(lambda: all_sent(hub, cid, len(tested)), "the test share sent")
        # The wait is over (the worker's own clock is real), and the marketer picks B.
        with hub.session() as s, s.begin():
            s.execute(update(Campaign).where(Campaign.id == cid)
                      .values(ab_decide_at=clock.now() - timedelta(minutes=1)))
        wait_until(lambda: decide_done(hub, cid), "the verdict")
        with hub.session() as s, s.begin():
            found = s.get(Campaign, cid)
            if found.ab_winner is None:  # 60 per variant may or may not tell; either way B goes
                decide.choose(s, campaign=found, label="B", actor=SYSTEM)
            winner = found.ab_winner
        wait_until(lambda: len(server.received()) >= len(tested) + 20, "the winner going out")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        may_repeat |= in_flight(hub)
        proc = spawn(url, server.port)
        try:
            wait_until(lambda: all_sent(hub, cid, N), "every delivery sent after the restarts")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        got = received_subjects(server)
    finally:
        stop(server)
    rows = recipients(hub, cid)
    assert len(rows) == N and len({r.contact_id for r in rows}) == N
    by_address = {r.address: r for r in rows}
    assert set(got) == set(by_address)  # nobody skipped
    for address, subjects in got.items():
        r = by_address[address]
        expected = f"Subject {r.variant}"
        assert r.variant == (winner if r.ab_role == "rest" else r.variant) and r.variant in ("A", "B")
        assert set(subjects) == {expected}, (address, r.ab_role, subjects)  # one variant, the recorded one
        if len(subjects) > 1:
            assert r.contact_id in may_repeat and len(subjects) <= 3  # twice only what was in flight
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(CampaignRecipient)) == N
    keys = [d.idempotency_key for d in deliveries(hub, cid)]
    assert len(keys) == len(set(keys)) == N


def decide_done(hub, cid: int) -> bool:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return s.get(Campaign, cid).ab_decided_at is not None
