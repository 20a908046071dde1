"""A worker process for the crash test: `python -m tests.webhooks.worker_main URL SETTINGS_JSON`.

It builds a hub on the test's database with the given [extensions.webhooks] settings and runs the
real worker (hub.worker.run_worker: the scheduler, the outbox, the webhooks dispatcher). The crash
test forks it ready-imported (tests/forked.py: `main([URL, SETTINGS_JSON], ready=…)`)."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from hub.runtime import Hub
from hub.settings import load_settings
from hub.triggers import TriggerRegistry
from hub.worker import run_worker


def main(argv: list[str] | None = None, ready: Callable[[], None] | None = None) -> None:
    url, raw = argv or sys.argv[1:3]
    webhooks = json.loads(raw)
    settings = load_settings(database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="hub-webhooks-worker-")),
                             secret_key="test-secret-key-" + "x" * 32, embedded_worker=False, live_backend="memory",
                             extensions={"webhooks": webhooks})
    hub = Hub(settings, triggers=TriggerRegistry())
    if ready is None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    else:
        ready()
    run_worker(hub, name="webhooks-crash-test")


if __name__ == "__main__":
    main()
