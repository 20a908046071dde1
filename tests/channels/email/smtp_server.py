"""A real SMTP server (aiosmtpd) in its own process: `python -m tests.channels.email.smtp_server …`.

Every accepted message is written to --dir as <n>.eml (the exact bytes received) and <n>.json
(envelope, whether the session was encrypted, who logged in). The recipient's local part picks the
answer, so tests can provoke each outcome:
  defer…@   451 4.2.0 at RCPT (transient)      reject…@  550 5.1.1 at RCPT (permanent)
  datafail…@ 554 5.6.0 after DATA (permanent)  hangup…@  the connection is dropped at RCPT
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.count = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        local = address.split("@", 1)[0].lower()
        if local.startswith("defer"):
            return "451 4.2.0 Mailbox temporarily unavailable, try again later"
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"
        if local.startswith("hangup"):
            server.transport.abort()
            return "250 OK"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(r.split("@", 1)[0].lower().startswith("datafail") for r in envelope.rcpt_tos):
            return "554 5.6.0 Message content rejected by policy"
        with self.lock:
            self.count += 1
            n = self.count
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            # session.ssl is set by STARTTLS; implicit TLS shows on the transport.
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            # The client's port: messages that share it came over one connection.
            "peer_port": session.peer[1] if session.peer else None,
            "login": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
        }
        # The .json appears last and atomically: a reader that sees it finds the message complete.
        (self.folder / f"{n:05d}.eml").write_bytes(envelope.original_content)
        tmp = self.folder / f".{n:05d}.json"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.folder / f"{n:05d}.json")
        return f"250 2.0.0 Ok: queued as Q{n:05d}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    parser.add_argument("--login", help="user:password the server accepts (AUTH required)")
    args = parser.parse_args()

    kwargs: dict[str, Any] = {}
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    if args.login:
        user, password = args.login.split(":", 1)

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
            return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=args.mode != "plain")
    controller = Controller(Recorder(args.dir), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
