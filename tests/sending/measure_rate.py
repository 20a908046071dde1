"""Measure how close two worker processes together keep to a configured rate (not a test: run by hand).

    .venv/bin/python -m tests.sending.measure_rate --backend postgres --rate 50 --seconds 20

It creates a scratch database, queues rate × seconds + burst deliveries on the fake channel, starts two
`tests.sending.rate_proc` workers, and reports the rate achieved over the measured window (from the
end of the initial burst to the last send), from the delivery rows' sent_at stamps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlmodel import SQLModel

from hub.db import Database
from hub.models import Delivery
from hub.schema import metadata
from tests.conftest import PG_ADMIN_URL, make_settings, test_registry

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    metadata()
    pg_name = None
    if args.backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='rate-')}/hub.db"
    else:
        pg_name = f"hub_rate_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{pg_name}"
    try:
        settings = make_settings(url, Path(tempfile.mkdtemp(prefix="rate-data-")))
        db = Database(settings)
        SQLModel.metadata.create_all(db.engine)
        from hub import outbox
        from hub.runtime import Hub
        from hub.triggers import TriggerRegistry

        hub = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=db, extensions=False)
        total = int(args.rate * args.seconds + args.rate)
        with hub.session() as s, s.begin():
            for i in range(total):
                outbox.enqueue(s, channel="fake", address=f"+7916{i:07d}", content={"text": "x"},
                               idempotency_key=f"m-{i}")
        procs = [subprocess.Popen([sys.executable, "-m", "tests.sending.rate_proc", "--url", url, "--rate",
                                   str(args.rate), "--batch", "50"], cwd=REPO, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
                 for _ in range(args.workers)]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        handled = [json.loads(proc.communicate()[0].strip().splitlines()[-1])["handled"] for proc in procs]
        with hub.session(read_only=True) as s:
            times = sorted(s.scalars(select(Delivery.sent_at).where(Delivery.sent_at.is_not(None))))
        burst = int(args.rate)  # burst_seconds = 1: the first `rate` sends may go at once
        window = (times[-1] - times[burst]).total_seconds()
        achieved = (len(times) - 1 - burst) / window
        print(json.dumps({
            "backend": args.backend, "workers": args.workers, "per_worker": handled, "sent": len(times),
            "configured_per_second": args.rate, "window_seconds": round(window, 2),
            "achieved_per_second": round(achieved, 2), "error_percent": round(100 * (achieved / args.rate - 1), 2),
        }))
        hub.close()
        db.dispose()
    finally:
        if pg_name:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
