"""Fault injection: services that go away, answer late or answer with errors, while the hub works."""

from __future__ import annotations

import email
import email.policy
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.channels.email.conftest import dovecot  # noqa: F401 (a fixture)
from tests.servers import free_port, start_server, stop_server

pytestmark = pytest.mark.faults


@dataclass
class FaultySmtp:
    port: int
    folder: Path
    control: Path
    proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = start_server("tests.faults.smtp_faults", self.port, "--dir", str(self.folder),
                                 "--control", str(self.control))

    def stop(self) -> None:
        stop_server(self.proc)
        self.proc = None

    def set(self, mode: str) -> None:
        self.control.write_text(mode)

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        seen: Counter[str] = Counter()
        for path in self.folder.glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            seen[str(message["Message-ID"])] += 1
        return seen

    def settings(self, **extra: object) -> dict[str, object]:
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_security": "none", "smtp_timeout": 2, **extra}


@pytest.fixture
def faulty_smtp(tmp_path: Path) -> Iterator[FaultySmtp]:
    server = FaultySmtp(free_port(), tmp_path / "received", tmp_path / "mode")
    server.folder.mkdir()
    server.start()
    yield server
    server.stop()
