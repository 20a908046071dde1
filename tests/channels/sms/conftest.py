from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.runtime import Hub
from tests.channels.sms.harness import World, make_world


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    """The hub under uvicorn and the local Twilio server (callbacks held until flushed)."""
    with make_world(hub) as w:
        yield w
