"""A worker OS process for the crash test: `python -m tests.campaigns.campaign_proc --url URL --smtp-port P`.

It builds its own Hub on the test's database with the email channel pointed at the test's SMTP
server and the campaigns tick running every fraction of a second in small batches, prints
"ready", and runs `hub worker` until it is killed. The crash tests fork it ready-imported
(tests/forked.py: `main(argv, ready=…)`), which says ready through `ready` instead.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from hub.registry import ChannelRegistry
from hub.runtime import Hub
from hub.settings import load_settings
from hub.triggers import TriggerRegistry


def main(argv: list[str] | None = None, ready: Callable[[], None] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--name", default="crash-worker")
    args = parser.parse_args(argv)
    settings = load_settings(
        database_url=args.url,
        data_dir=Path(tempfile.mkdtemp(prefix="hub-campaign-proc-")),
        secret_key="test-secret-key-" + "x" * 32,
        embedded_worker=False,
        live_backend="memory",
        outbox={"batch_size": 5, "poll_seconds": 0.1, "lease_seconds": 5},
        channels={"email": {"smtp_host": "127.0.0.1", "smtp_port": args.smtp_port, "smtp_security": "none",
                            "smtp_timeout": 10, "from_address": "news@hub.example.com", "from_name": "Hub News",
                            "message_id_domain": "hub.example.com"}},
        extensions={"campaigns": {"tick_seconds": 0.2, "batch_size": args.batch, "lock_lease_seconds": 2}},
    )
    hub = Hub(settings, registry=ChannelRegistry().load_entry_points(), triggers=TriggerRegistry())
    from hub.worker import run_worker

    if ready is None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    else:
        ready()
    run_worker(hub, name=args.name)


if __name__ == "__main__":
    main()
