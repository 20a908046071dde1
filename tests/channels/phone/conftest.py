from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hub.auth import create_user
from hub.models import Role, User
from hub.runtime import Hub
from tests.channels.sms.harness import World, make_world

ANNA_NUMBER = "+15005550101"


@dataclass
class Agents:
    anna: User
    boris: User


@pytest.fixture
def agents(hub: Hub) -> Agents:
    with hub.session() as s, s.begin():
        anna = create_user(s, email="anna@example.com", password="correct horse battery", role=Role.AGENT,
                           display_name="Anna")
        boris = create_user(s, email="boris@example.com", password="correct horse battery", role=Role.AGENT,
                            display_name="Boris")
    return Agents(anna, boris)


def agent_lines(agents: Agents) -> list[dict[str, object]]:
    return [
        {"user_id": agents.anna.id, "label": "Anna", "number": ANNA_NUMBER, "extension": "101"},
        {"user_id": agents.boris.id, "label": "Boris", "client": "boris", "extension": "102"},
    ]


@pytest.fixture
def world(hub: Hub, agents: Agents) -> Iterator[World]:
    """The hub (ringing Anna's phone, then Boris's browser) and the local Twilio server."""
    with make_world(hub, phone={"agents": agent_lines(agents)}) as w:
        yield w
