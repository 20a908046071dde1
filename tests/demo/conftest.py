"""The demo's wiring as `hub serve --demo` builds it: stand-ins started, HUB_* variables set, a hub
served on a real port (local Twilio's callbacks reach it), and a signed-in TestClient on its app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from standins.twilio_local.runner import ServerThread, bound_socket
from hub.demo_standins import StandIn, environment, start_stand_ins, stop_stand_ins
from hub.runtime import Hub
from hub.settings import load_settings
from hub.triggers import TriggerRegistry
from tests.conftest import test_registry
from tests.web.conftest import ORIGIN


@dataclass
class Demo:
    hub: Hub
    url: str
    stand_ins: list[StandIn]
    web: TestClient


@pytest.fixture
def demo(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HUB_SERVE_URL", url)  # what `hub serve` sets from --host/--port
    base = load_settings(database_url=hub.settings.database_url, data_dir=tmp_path, secret_key="s" * 48,
                         embedded_worker=False, live_backend="memory")
    assert base.public_base_url == url  # links follow the served port when public_base_url is unset
    stand_ins = start_stand_ins(base, hub_url=base.public_base_url)
    try:
        for name, value in environment(stand_ins).items():
            monkeypatch.setenv(name, value)
        settings = load_settings(database_url=hub.settings.database_url, data_dir=tmp_path, secret_key="s" * 48,
                                 embedded_worker=False, live_backend="memory")
        runtime = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db)
        from hub.app import create_app

        app = create_app(runtime, check_schema=False, start_worker=False)
        served = ServerThread(app, sock).start()
        try:
            with TestClient(app, base_url=ORIGIN) as web:
                yield Demo(runtime, url, stand_ins, web)
        finally:
            served.stop()
            runtime.broker.stop()
    finally:
        stop_stand_ins(stand_ins)


@pytest.fixture
def web(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url=ORIGIN) as client:
        yield client


def wait(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


# Chromium for the browser tests of the demo's pages (one per module, as in tests/web).
from tests.web.conftest import browser  # noqa: E402,F401
