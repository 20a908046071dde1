"""Fixtures of the webhook tests: a real receiver in its own process, and a hub whose settings
allow calling it (plain http and 127.0.0.1 allow-listed: the explicit development settings)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.db import Database
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.servers import free_port, start_server, stop_server
from tests.conftest import _wipe, make_settings, test_registry

# Timeouts leave room for a loaded machine (a local answer can take a second there).
WEBHOOK_SETTINGS = {"allow_http": True, "allowed_hosts": ["127.0.0.1"], "timeout_seconds": 3.0,
                    "connect_timeout_seconds": 2.0, "lease_seconds": 10.0, "backoff_base_seconds": 30.0}


@dataclass
class Receiver:
    port: int
    folder: Path
    proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = start_server("tests.webhooks.receiver", self.port, "--dir", str(self.folder))

    def stop(self) -> None:
        stop_server(self.proc)
        self.proc = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, path: str, mode: str = "ok", *, secrets: list[str] | None = None, **extra: Any) -> None:
        control_path = self.folder / "control.json"
        control = json.loads(control_path.read_text()) if control_path.exists() else {"paths": {}}
        rule = control["paths"].get(path, {})
        rule.update(mode=mode, **extra)
        if secrets is not None:
            rule["secrets"] = secrets
        control["paths"][path] = rule
        control_path.write_text(json.dumps(control))

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        log_path = self.folder / "received.jsonl"
        if not log_path.exists():
            return []
        entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        return [e for e in entries if path is None or e["path"] == path]

    def clear(self) -> None:
        (self.folder / "received.jsonl").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    server = Receiver(free_port(), tmp_path_factory.mktemp("receiver"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_receiver(receiver: Receiver) -> Receiver:
    """The shared receiver with its log and rules cleared."""
    receiver.clear()
    (receiver.folder / "control.json").unlink(missing_ok=True)
    return receiver


def make_hub(database: Database, tmp_path: Path, **webhooks: Any) -> Hub:
    settings = make_settings(str(database.settings.database_url), tmp_path,
                             extensions={"webhooks": {**WEBHOOK_SETTINGS, **webhooks}})
    return Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=database)


@pytest.fixture
def whub(database: Database, tmp_path: Path) -> Iterator[Hub]:
    """A runtime with the webhooks extension allowed to call the local receiver."""
    runtime = make_hub(database, tmp_path)
    yield runtime
    extension = runtime.extensions["webhooks"]
    if extension._dispatcher is not None:  # type: ignore[attr-defined]
        extension._dispatcher.stop()  # type: ignore[attr-defined]
    _wipe(database)
    runtime.broker.stop()


@pytest.fixture
def wclient(whub: Hub) -> Iterator[Any]:
    """An HTTP client of an app on `whub`."""
    from fastapi.testclient import TestClient

    from hub.app import create_app

    with TestClient(create_app(whub, check_schema=False, start_worker=False)) as client:
        yield client


@pytest.fixture
def wkey(whub: Hub) -> Any:
    """make(*scopes) -> headers with a fresh API key (default: admin)."""
    from hub.auth import create_api_key

    def make(*scopes: str) -> dict[str, str]:
        with whub.session() as session, session.begin():
            _, plain = create_api_key(session, name="test key", scopes=list(scopes or ("admin",)))
        return {"Authorization": f"Bearer {plain}"}

    return make
