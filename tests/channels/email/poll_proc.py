"""A poller that dies mid-message: `python -m tests.channels.email.poll_proc --url … --data-dir … --settings JSON`.

It builds its own Hub on the test database and polls the configured mailbox once. A trigger ends
the process with os._exit(3) while the message whose subject is --crash-on is being recorded:
after the IMAP fetch, inside the open transaction, before the commit. No exception handler, no
rollback and no logout run, as when the machine loses power. The test forks it ready-imported
(tests/forked.py: `main(argv, ready=…)`), which says ready through `ready` before it polls.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from hub.registry import ChannelRegistry
from hub.runtime import Hub
from hub.settings import load_settings
from hub.triggers import TriggerRegistry


def main(argv: list[str] | None = None, ready: Callable[[], None] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--settings", required=True, help="the [channels.email] section as JSON")
    parser.add_argument("--crash-on", required=True, help="the subject of the message to die on")
    args = parser.parse_args(argv)
    settings = load_settings(
        database_url=args.url, data_dir=Path(args.data_dir), secret_key="test-secret-key-" + "x" * 32,
        embedded_worker=False, live_backend="memory", channels={"email": json.loads(args.settings)},
    )
    triggers = TriggerRegistry()

    def die(session, *, event, contact):  # type: ignore[no-untyped-def]
        if event.subject == args.crash_on:
            os._exit(3)

    triggers.register("message", die)
    hub = Hub(settings, registry=ChannelRegistry().load_entry_points(), triggers=triggers)
    if ready is not None:
        ready()
    print(json.dumps([r.__dict__ for r in hub.channel("email").poll()]), flush=True)


if __name__ == "__main__":
    main()
