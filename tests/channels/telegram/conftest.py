"""Telegram tests run when the hub-telegram distribution is installed (`make install-test` installs it);
without it they are not collected, as the rest of the suite must pass with the plug-in uninstalled."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from hub.runtime import Hub

if importlib.util.find_spec("hub_telegram") is None:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def world(hub: Hub) -> Iterator[Any]:
    from tests.channels.telegram.harness import make_world

    with make_world(hub) as w:
        yield w
