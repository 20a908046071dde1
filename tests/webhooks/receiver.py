"""A webhook receiver in its own process: `python -m tests.webhooks.receiver --port P --dir D`.

It verifies every request's Standard Webhooks signature with the `standardwebhooks` library against
the secrets the test gave for that path, and appends what it saw to D/received.jsonl. How it
answers each path is read from D/control.json on every request, so a test changes it on the fly:
  {"paths": {"/a": {"mode": "ok" | "500" | "hang" | "slow" | "retry-after" | "big" | "redirect",
                    "seconds": 2, "secrets": ["whsec_…"]}}}
Requests are recorded when they arrive (before answering), so a hung answer is still seen.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook

LOCK = threading.Lock()


def make_handler(folder: Path) -> type[BaseHTTPRequestHandler]:
    control_path, log_path = folder / "control.json", folder / "received.jsonl"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                control = json.loads(control_path.read_text())
            except (OSError, ValueError):
                control = {}
            rule = control.get("paths", {}).get(self.path, {})
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = []
            for index, secret in enumerate(rule.get("secrets", [])):
                try:
                    Webhook(secret).verify(body, headers)
                    verified.append(index)
                except Exception:
                    pass
            entry = {"path": self.path, "id": headers.get("webhook-id"), "verified": verified,
                     "signatures": len(headers.get("webhook-signature", "").split()), "host": headers.get("host"),
                     "body": json.loads(body or b"null"), "at": time.time()}
            with LOCK, log_path.open("a") as handle:
                handle.write(json.dumps(entry) + "\n")
            mode = rule.get("mode", "ok")
            if mode == "hang":
                time.sleep(rule.get("seconds", 3600))
                return
            if mode == "slow":
                time.sleep(rule.get("seconds", 1))
            if mode == "500":
                self._answer(500, b"internal error: the receiver is down")
            elif mode == "retry-after":
                self._answer(503, b"busy", {"Retry-After": str(rule.get("seconds", 120))})
            elif mode == "big":
                self._answer(200, b"x" * (5 * 1024 * 1024))
            elif mode == "redirect":
                self._answer(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
            elif mode == "unsigned-ok" or verified or not rule.get("secrets"):
                self._answer(200, b'{"ok":true}')
            else:
                self._answer(401, b"bad signature")

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Path(args.dir)))
    server.daemon_threads = True
    server.request_queue_size = 128
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
