"""A local SMTP server for the demo: mail the hub sends is kept in a Maildir the test mailbox shows.

It accepts any sender and recipient and relays nothing. Each recipient gets its own copy with
`Delivered-To` and `Return-Path` in front, as a mail server's local delivery writes them.
"""

from __future__ import annotations

import logging
import mailbox
import secrets
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller

if TYPE_CHECKING:
    from hub.demo_standins import StandIn
    from hub.settings import Settings

log = logging.getLogger("standins.smtp_local")

DEMO_FROM = "support@example.com"
DEMO_FROM_NAME = "Demo shop"


class MaildirDelivery:
    """aiosmtpd's handler: write each accepted message into the Maildir, once per recipient."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(folder, create=True)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or b""
        sender = envelope.mail_from or ""
        with self._lock:
            for recipient in envelope.rcpt_tos:
                trace = f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode()
                self.maildir.add(trace + content)
        return "250 2.0.0 Ok: kept in the test mailbox"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalSmtp:
    """aiosmtpd on a free port of this machine, delivering into `folder` (a Maildir)."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.folder = Path(folder)
        self.host = host
        self.port = port or free_port(host)
        self.handler = MaildirDelivery(self.folder)
        # SMTPUTF8: the hub sends internationalised addresses that way.
        self.controller = Controller(self.handler, hostname=host, port=self.port, enable_SMTPUTF8=True,
                                     ready_timeout=10)

    def start(self) -> LocalSmtp:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def stand_in(settings: Settings, *, hub_url: str) -> StandIn:
    """The `hub.stand_ins` entry point: the local SMTP server and the email settings that use it."""
    from hub.demo_standins import StandIn

    folder = (Path(settings.data_dir) / "demo" / "mailbox").resolve()
    server = LocalSmtp(folder).start()
    env = {
        "HUB_CHANNELS__EMAIL__SMTP_HOST": server.host,
        "HUB_CHANNELS__EMAIL__SMTP_PORT": str(server.port),
        "HUB_CHANNELS__EMAIL__SMTP_SECURITY": "none",
        "HUB_CHANNELS__EMAIL__FROM_ADDRESS": DEMO_FROM,
        "HUB_CHANNELS__EMAIL__FROM_NAME": DEMO_FROM_NAME,
        # The HTTP pipe works in the demo too (POST /channels/email/inbound with this bearer token).
        "HUB_CHANNELS__EMAIL__INBOUND_TOKEN": secrets.token_urlsafe(24),
        "HUB_DEMO__MAILBOX": str(folder),
    }
    return StandIn(name="email", label="Local SMTP server", url=f"smtp://{server.host}:{server.port}",
                   env=env, stop=server.stop,
                   note=f"mail the hub sends is kept in {folder}; read it under Admin → Test mailbox")
