"""A worker process of its own for the reminder test: `python -m tests.campaigns.surveys.reminder_proc URL NOW`.

Builds a Hub on the same database with email configured, prints "ready", waits for a line on stdin
(so the test can start several at once), runs one `surveys.send_reminders` tick at NOW and prints
how many reminders it sent.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path

from campaigns.surveys.service import send_reminders
from hub.runtime import Hub
from hub.settings import load_settings
from hub.triggers import TriggerRegistry


def main() -> None:
    url, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    settings = load_settings(
        database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="hub-survey-proc-")),
        secret_key="test-secret-key-" + "x" * 32, embedded_worker=False, live_backend="memory",
        channels={"email": {"from_address": "support@hub.example.com", "smtp_host": "127.0.0.1", "smtp_port": 1}},
    )
    hub = Hub(settings, triggers=TriggerRegistry())
    print("ready", flush=True)
    sys.stdin.readline()
    print(send_reminders(hub, now=now), flush=True)
    hub.close()


if __name__ == "__main__":
    main()
