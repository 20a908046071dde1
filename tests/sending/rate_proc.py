"""A worker OS process for the rate-limit tests: `python -m tests.sending.rate_proc --url URL --rate R`.

It builds its own Hub on the shared database (fake channel, the given per-channel rate), prints
"ready", waits for a line on stdin, then dispatches until no delivery is queued or in flight, and
prints {"handled": n} as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from hub.models import Delivery
from hub.registry import ChannelRegistry
from hub.runtime import Hub
from hub.settings import SendingSettings, load_settings
from hub.triggers import TriggerRegistry
from hub.worker import Worker
from tests.fakes.channel import FakeChannel


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--global-rate", type=float)
    parser.add_argument("--burst-seconds", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args(argv)
    registry = ChannelRegistry().load_entry_points()
    registry.register(FakeChannel)
    settings = load_settings(
        database_url=args.url,
        data_dir=Path(tempfile.mkdtemp(prefix="hub-rate-proc-")),
        secret_key="test-secret-key-" + "x" * 32,
        embedded_worker=False,
        live_backend="memory",
        outbox={"batch_size": args.batch, "poll_seconds": 0.2},
    )
    settings.sending = SendingSettings(rate_per_second={"fake": args.rate}, burst_seconds=args.burst_seconds,
                                       global_rate_per_second=args.global_rate)
    hub = Hub(settings, registry=registry, triggers=TriggerRegistry())
    worker = Worker(hub, name="rate-proc")
    print("ready", flush=True)
    sys.stdin.readline()
    handled = 0
    while True:
        handled += worker.dispatch_due()
        with hub.session(read_only=True) as session:
            left = session.scalar(select(func.count()).select_from(Delivery)
                                  .where(Delivery.status.in_(["queued", "sending"])))
        if not left:
            break
        time.sleep(0.05)
    worker.stop()
    print(json.dumps({"handled": handled}), flush=True)
    hub.close()


if __name__ == "__main__":
    main()
