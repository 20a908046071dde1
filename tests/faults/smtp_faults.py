"""An SMTP server whose behaviour a test switches while it runs: `python -m tests.faults.smtp_faults`.

It reads the file given by --control before each command it answers, so a test can make a running
server misbehave and then recover without a restart:
  ok          accept everything                      421        "421 service not available" at MAIL FROM
  554         refuse each message after DATA          slow:<s>   wait <s> seconds before answering DATA
                                                                  (the message IS kept: the answer is what is late)
Accepted messages are written to --dir as <n>.eml; "ready" is printed once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Faulty:
    def __init__(self, folder: Path, control: Path) -> None:
        self.folder, self.control = folder, control
        self.lock = threading.Lock()
        self.count = 0

    def mode(self) -> str:
        try:
            return self.control.read_text().strip() or "ok"
        except FileNotFoundError:
            return "ok"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if self.mode() == "421":
            return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mode = self.mode()
        if mode == "554":
            return "554 5.7.1 Message rejected by policy"
        with self.lock:
            self.count += 1
            n = self.count
        (self.folder / f"{n:06d}.eml").write_bytes(envelope.original_content)
        if mode.startswith("slow:"):
            await asyncio.sleep(float(mode.split(":", 1)[1]))
        return "250 2.0.0 Queued"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--control", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(Faulty(args.dir, args.control), hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
