"""PostgreSQL restarted while the worker sends: the outbox drains afterwards, nothing is lost, and
only the deliveries in flight at the restart can go out twice."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from hub.models import Delivery, DeliveryStatus
from hub.runtime import Hub
from hub.settings import OutboxSettings
from hub.triggers import TriggerRegistry
from hub.worker import EmbeddedWorker
from tests.channels.email.conftest import configure
from tests.conftest import test_registry
from tests.faults.test_provider_faults import queue_emails

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow, pytest.mark.serial]


def _cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    if not versions or shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster and root (the CI machine has both)")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _restart(cluster: list[str]) -> None:
    subprocess.run([*cluster, "restart", "--", "-m", "fast"], check=True, capture_output=True, timeout=120)
    for _ in range(100):
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError("PostgreSQL did not come back")


def _counts(hub: Hub) -> dict[str, int]:
    for _ in range(50):
        try:
            with hub.session(read_only=True) as s:
                return dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        except DBAPIError:  # the pool is still finding out its connections died
            time.sleep(0.2)
    raise AssertionError("the store did not answer after the restart")


def test_postgres_restart_mid_run(hub, faulty_smtp, caplog):
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("this fault is PostgreSQL's")
    cluster = _cluster()
    # A short lease, so rows claimed by a pass whose outcome could not be recorded come back soon.
    settings = hub.settings.model_copy(update={"outbox": OutboxSettings(lease_seconds=5, poll_seconds=0.2,
                                                                        batch_size=10, backoff_base_seconds=0.5,
                                                                        backoff_max_seconds=2)})
    runtime = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db)
    configure(runtime, **faulty_smtp.settings(smtp_connections=2))
    faulty_smtp.set("slow:0.05")
    ids = queue_emails(runtime, 80, prefix="pgrestart")
    worker = EmbeddedWorker(runtime)
    try:
        with caplog.at_level(logging.WARNING):
            worker.start()
            deadline = time.monotonic() + 60
            while len(faulty_smtp.message_ids()) < 10:
                assert time.monotonic() < deadline, "sending never started"
                time.sleep(0.05)
            _restart(cluster)
            deadline = time.monotonic() + 120
            while _counts(runtime).get(DeliveryStatus.SENT, 0) < len(ids):
                assert time.monotonic() < deadline, f"the outbox did not drain: {_counts(runtime)}"
                time.sleep(0.3)
    finally:
        worker.stop()
        runtime.db.engine.dispose()  # the suite's shared engine must not keep connections from before
    arrived = faulty_smtp.message_ids()
    assert len(arrived) == len(ids)  # nothing lost
    duplicates = sum(arrived.values()) - len(arrived)
    # At most the rows in flight at the restart: one batch per channel pass.
    assert duplicates <= settings.outbox.batch_size
    assert any("terminat" in r.getMessage().lower() or "connection" in r.getMessage().lower()
               or r.exc_info for r in caplog.records), "the restart should be visible in the log"
