"""The memo's listener when its database cannot be reached: it says so once per outage and backs
off, instead of a warning every second for as long as the process lives (a dropped test database,
a moved server)."""

from __future__ import annotations

import logging
import time

from hub import memo as memo_module
from hub.memo import ProcessMemo


def test_an_unreachable_listener_warns_once_and_backs_off(monkeypatch, caplog):
    monkeypatch.setattr(memo_module, "_RETRY_FIRST", 0.01)
    monkeypatch.setattr(memo_module, "_RETRY_MAX", 0.04)
    memo = ProcessMemo("postgresql://127.0.0.1:1/nothing_listens_here?connect_timeout=1")
    caplog.set_level(logging.DEBUG, logger="hub.memo")
    memo._ensure_listener()
    try:
        deadline = time.monotonic() + 20
        while sum(r.levelno == logging.DEBUG for r in caplog.records) < 4:
            assert time.monotonic() < deadline, "the listener stopped retrying"
            time.sleep(0.01)
    finally:
        memo.stop()
        memo._thread.join(5)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "lost its connection" in warnings[0].getMessage()
    waits = [float(r.getMessage().rsplit("in ", 1)[1].split()[0]) for r in caplog.records if r.levelno == logging.DEBUG]
    assert waits == sorted(waits) and not memo.listening and not memo._thread.is_alive()
