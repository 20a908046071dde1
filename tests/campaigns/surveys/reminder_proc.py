"""A worker process of its own for the reminder test: `python -m tests.campaigns.surveys.reminder_proc URL NOW`.

Builds a Hub on the same database with email configured, prints "ready", waits for a line on stdin
(so the test can start several at once), runs one `surveys.send_reminders` tick at NOW and prints
how many reminders it sent. The test forks it ready-imported instead (tests/forked.py:
`main([URL, NOW], ready=…, talk=…)`): "ready" through `ready`, "go" and the count through `talk`.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from campaigns.surveys.service import send_reminders
from hub.runtime import Hub
from hub.settings import load_settings
from hub.triggers import TriggerRegistry


def main(argv: list[str] | None = None, ready: Callable[[], None] | None = None, talk: Connection | None = None) -> None:
    url, now = (argv if argv is not None else sys.argv[1:])[:2]
    settings = load_settings(
        database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="hub-survey-proc-")),
        secret_key="test-secret-key-" + "x" * 32, embedded_worker=False, live_backend="memory",
        channels={"email": {"from_address": "support@hub.example.com", "smtp_host": "127.0.0.1", "smtp_port": 1}},
    )
    hub = Hub(settings, triggers=TriggerRegistry())
    if talk is None:
        print("ready", flush=True)
        sys.stdin.readline()
        print(send_reminders(hub, now=datetime.fromisoformat(now)), flush=True)
    else:
        assert ready is not None
        ready()
        talk.recv()
        talk.send(send_reminders(hub, now=datetime.fromisoformat(now)))
    hub.close()


if __name__ == "__main__":
    main()
