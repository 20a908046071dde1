"""Real servers for the email tests: aiosmtpd in its own process, and a private Dovecot instance.

Dovecot is required when CI=true (scripts/test-services.sh installs it); elsewhere its tests skip,
saying why. Each IMAP test logs in as a user of its own, so tests never see each other's mail.
"""

from __future__ import annotations

import imaplib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channels.email import EmailChannel
from channels.email.settings import EmailSettings
from hub.runtime import Hub
from tests.conftest import IN_CI

from tests.servers import REPO, START_TIMEOUT, free_port, start_server, stop_server, wait_for_port  # noqa: F401 (imported from here by others)

CORPUS = REPO.parent / "shared" / "corpora" / "eml"
FIXTURES = REPO / "channels" / "email" / "fixtures"


def configure(hub: Hub, **overrides: Any) -> EmailChannel:
    """Give the hub's email adapter (the one the registry built) validated settings for a test."""
    channel = hub.channel("email")
    assert isinstance(channel, EmailChannel)
    base = {"from_address": "support@hub.example.com", "from_name": "Hub Support",
            "message_id_domain": "hub.example.com"}
    channel.settings = EmailSettings.model_validate({**base, **overrides})
    return channel


# --- SMTP ------------------------------------------------------------------------------------

@dataclass
class SmtpServer:
    port: int
    folder: Path
    mode: str
    proc: subprocess.Popen[str]

    def received(self) -> list[tuple[dict[str, Any], bytes]]:
        """Messages accepted so far, oldest first: (envelope and session facts, exact bytes)."""
        out = []
        for meta in sorted(self.folder.glob("[0-9]*.json")):
            out.append((json.loads(meta.read_text()), meta.with_suffix(".eml").read_bytes()))
        return out

    def settings(self, **extra: Any) -> dict[str, Any]:
        security = {"plain": "none", "starttls": "starttls", "tls": "tls"}[self.mode]
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_security": security, "smtp_timeout": 10, **extra}


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (openssl), and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed; TLS tests need it to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def start_smtp(folder: Path, *, mode: str = "plain", tls: tuple[Path, Path] | None = None,
               login: str | None = None) -> SmtpServer:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    args = ["--dir", str(folder), "--mode", mode]
    if tls:
        args += ["--cert", str(tls[0]), "--key", str(tls[1])]
    if login:
        args += ["--login", login]
    proc = start_server("tests.channels.email.smtp_server", port, *args)
    return SmtpServer(port, folder, mode, proc)


def stop_smtp(server: SmtpServer) -> None:
    stop_server(server.proc)


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback (security "none")."""
    server = start_smtp(tmp_path / "smtp")
    yield server
    stop_smtp(server)


@pytest.fixture
def smtp_factory(tmp_path: Path) -> Iterator[Any]:
    """start(mode=…, tls=…, login=…) -> SmtpServer; all stopped at the end."""
    started: list[SmtpServer] = []

    def start(**kwargs: Any) -> SmtpServer:
        server = start_smtp(tmp_path / f"smtp-{len(started)}", **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_smtp(server)


# --- Dovecot ---------------------------------------------------------------------------------

DOVECOT_PASSWORD = "imap-test-password"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot-info.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/home/%u/Maildir
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass
class Dovecot:
    port: int
    root: Path

    def user(self) -> str:
        """A fresh mailbox owner, so each test has its own empty INBOX."""
        return f"u{uuid.uuid4().hex[:12]}"

    def connect(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        conn.login(user, DOVECOT_PASSWORD)
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> int:
        """APPEND a message; returns the UID Dovecot gave it (from APPENDUID)."""
        conn = self.connect(user)
        try:
            typ, data = conn.append(folder, None, None, raw)
            assert typ == "OK", data
            code = conn.untagged_responses.get("APPENDUID") or []
            text = data[0].decode() if data and isinstance(data[0], bytes) else ""
            if "APPENDUID" in text:
                return int(text.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])
            return int(code[-1].split()[1]) if code else 0
        finally:
            conn.logout()

    def mailbox(self, user: str, **extra: Any) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "security": "none", "username": user,
                "password": DOVECOT_PASSWORD, "timeout": 30, **extra}


def _dovecot_missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason + "; CI requires Dovecot (scripts/test-services.sh installs dovecot-imapd)")
    pytest.skip(reason + "; run scripts/test-services.sh (as root) to install dovecot-imapd")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A private Dovecot on a free loopback port for this test session (see ../shared/NOTES.md)."""
    binary = shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.path.exists(p)), None)
    if binary is None:
        _dovecot_missing("dovecot is not installed")
    if os.geteuid() != 0:
        _dovecot_missing("a private Dovecot needs root here (its mail is owned by the dovecot user)")
    root = Path(tempfile.mkdtemp(prefix="hub-dovecot-"))
    root.chmod(0o755)
    home = root / "home"
    home.mkdir()
    shutil.chown(home, "dovecot", "dovecot")
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(_CONFIG.format(root=root, port=port, password=DOVECOT_PASSWORD))
    # -F keeps the master in the foreground as our child, so it is stopped even if a test run dies.
    log = (root / "master.log").open("wb")
    proc = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        try:
            wait_for_port(port, proc)
        except (RuntimeError, TimeoutError) as exc:
            _dovecot_missing(f"dovecot did not start ({exc}): {(root / 'master.log').read_text()[-2000:]}")
        yield Dovecot(port, root)
    finally:
        subprocess.run([binary, "-c", str(config), "stop"], capture_output=True, timeout=30)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
