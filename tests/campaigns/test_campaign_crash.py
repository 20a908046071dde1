"""The crash promise with real processes: a worker running a campaign is killed with SIGKILL in the
middle (twice, at different moments), restarted, and the SMTP server in its own process has then
received every recipient's message, and twice only messages that were in flight at a kill."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from campaigns.models import CampaignRecipient
from hub.models import Delivery, DeliveryStatus
from tests import forked
from tests.campaigns.helpers import add_contacts, deliveries, make_campaign, make_segment, make_template, stop
from tests.channels.email.conftest import start_smtp

N = 120
WAIT = 180.0


def spawn(url: str, port: int) -> forked.Forked:
    """A worker OS process of its own (forked ready-imported: tests/forked.py), once it is ready."""
    return forked.start("tests.campaigns.campaign_proc:main", "--url", url, "--smtp-port", str(port), "--batch", "7")


def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def in_flight(hub) -> set[int]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return set(s.scalars(select(Delivery.contact_id).where(Delivery.status == DeliveryStatus.SENDING)).all())


@pytest.mark.slow
def test_a_worker_killed_mid_run_and_restarted_skips_no_one_and_repeats_only_what_was_in_flight(hub, tmp_path):
    contacts = add_contacts(hub, N)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    server = start_smtp(tmp_path / "smtp")
    url = hub.settings.database_url
    may_repeat: set[int] = set()
    try:
        for kill_after in (15, 60):  # once early (while recipients are still being added), once later
            proc = spawn(url, server.port)
            wait_until(lambda: len(server.received()) >= kill_after, f"{kill_after} messages")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            may_repeat |= in_flight(hub)
        assert len(server.received()) < N  # the kills really came mid-run
        proc = spawn(url, server.port)
        try:
            def finished() -> bool:
                found = deliveries(hub, cid)
                return len(found) == N and all(d.status == DeliveryStatus.SENT for d in found)

            wait_until(finished, "every delivery sent after the restart")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        received = Counter(rcpt for meta, _raw in server.received() for rcpt in meta["rcpt_tos"])
    finally:
        stop(server)
    expected = {f"c{i}@example.org" for i in range(N)}
    assert set(received) == expected  # nobody skipped
    repeated = {address for address, count in received.items() if count > 1}
    by_address = {f"c{i}@example.org": contact for i, contact in enumerate(contacts)}
    assert {by_address[a] for a in repeated} <= may_repeat  # twice only what was in flight at a kill
    assert all(count <= 3 for count in received.values())
    with hub.session(read_only=True) as s:
        keys = s.scalars(select(Delivery.idempotency_key)).all()
        assert len(keys) == len(set(keys)) == N
        assert s.scalar(select(func.count()).select_from(CampaignRecipient)) == N
