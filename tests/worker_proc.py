"""A second OS process for the outbox and lock tests: `python -m tests.worker_proc COMMAND --url URL …`.

It builds its own Hub on the same database (with the fake channel), prints "ready", and for
`claim`/`lock` waits for a line on stdin before acting, so tests can start several at once.
Results go to stdout as one JSON line. The tests fork it ready-imported instead (tests/forked.py:
`main(argv, ready=…, talk=…)`): "ready" through `ready`, "go" and the result through `talk`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from hub.registry import ChannelRegistry
from hub.runtime import Hub
from hub.settings import load_settings
from hub.triggers import TriggerRegistry
from tests.fakes.channel import FakeChannel


def build_hub(url: str) -> Hub:
    registry = ChannelRegistry().load_entry_points()
    registry.register(FakeChannel)
    settings = load_settings(
        database_url=url,
        data_dir=Path(tempfile.mkdtemp(prefix="hub-worker-proc-")),
        secret_key="test-secret-key-" + "x" * 32,
        embedded_worker=False,
        live_backend="memory",
    )
    return Hub(settings, registry=registry, triggers=TriggerRegistry())


def _say(payload: object) -> None:
    sys.stdout.write((payload if isinstance(payload, str) else json.dumps(payload)) + "\n")
    sys.stdout.flush()


def _wait_for_go() -> None:
    sys.stdin.readline()


def main(argv: list[str] | None = None, ready: Callable[[], None] | None = None, talk: Connection | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["claim", "lock", "run"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--worker", default="proc")
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--now")
    parser.add_argument("--name", default="test.lock")
    args = parser.parse_args(argv)
    hub = build_hub(args.url)
    say, wait_for_go = (talk.send, talk.recv) if talk is not None else (_say, _wait_for_go)

    if args.command == "run":
        from hub.worker import run_worker

        (ready or (lambda: say("ready")))()
        run_worker(hub, name=args.worker)
        say("stopped")
        return

    (ready or (lambda: say("ready")))()
    wait_for_go()
    if args.command == "claim":
        from hub.outbox import claim_due

        now = datetime.fromisoformat(args.now) if args.now else None
        ids: list[int] = []
        while batch := claim_due(hub, worker=args.worker, limit=args.limit, now=now):
            ids.extend(m.delivery_id for m in batch)
        say({"ids": ids})
    else:
        from hub.locks import once_lock

        with once_lock(hub, args.name) as acquired:
            say({"acquired": acquired})
    hub.close()


if __name__ == "__main__":
    main()
