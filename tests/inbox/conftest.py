"""The inbox's fixtures: a runtime whose [extensions.inbox] a test can set, and plain factories
(users, teams, inbound and outbound events) in the style of tests/accounts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import hub.app  # noqa: F401 - registers every table before the test store is built
from hub import clock
from hub.auth import create_user
from hub.db import Database
from hub.ingest import IdentityRef, InboundEvent, IngestResult, ingest
from hub.models import Direction, IdentityKind, Role
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from inbox.assignment import set_presence
from inbox.models import Conversation, Presence, Team, TeamMember
from tests.conftest import _wipe, make_settings, test_registry
from tests.fakes.channel import FakeChannel
from tests.web.conftest import agent_page, browser, live_server, new_page, web  # noqa: F401

# A Monday, 10:00 in Moscow (07:00 UTC): inside the default business hours.
MONDAY_10 = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock_at() -> Iterator[clock.FrozenClock]:
    fake = clock.FrozenClock(MONDAY_10)
    clock.set_clock(fake)
    yield fake
    clock.set_clock(None)


@pytest.fixture
def make_hub(database: Database, tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    """make_hub(**inbox_settings) -> a runtime on the clean store with those [extensions.inbox] values;
    every runtime made shares the store (a second one is a restarted process)."""
    made: list[Hub] = []

    def make(**inbox: Any) -> Hub:
        settings = make_settings(str(database.settings.database_url), tmp_path, extensions={"inbox": inbox})
        runtime = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=database)
        made.append(runtime)
        return runtime

    FakeChannel.reset()
    yield make
    _wipe(database)
    for runtime in made:
        runtime.broker.stop()


# The fake channel stands for a configured SMS-like channel: it answers and it can send.
FAKE_SETTINGS: dict[str, Any] = {
    "answerable": [["email", "message"], ["sms", "message"], ["fake", "message"], ["forms", "form.submitted"],
                   ["phone", "call"]],
    "auto_reply_enabled": True,
    "auto_reply": {"fake": {"ru": "Нерабочее время", "en": "Out of hours"}},
}


@pytest.fixture
def ihub(make_hub: Callable[..., Hub]) -> Hub:
    return make_hub(**FAKE_SETTINGS)


def user(hub: Hub, email: str, *, name: str | None = None, presence: Presence | None = Presence.ONLINE,
         role: Role = Role.AGENT, cap: int | None = None) -> int:
    with hub.session() as session, session.begin():
        row = create_user(session, email=email, password=PASSWORD, role=role, display_name=name or email.split("@")[0],
                          locale="en")
        if presence is not None:
            set_presence(session, user_id=row.id, presence=presence)  # type: ignore[arg-type]
        if cap is not None:
            from inbox.assignment import ensure_state
            from inbox.models import AgentState

            ensure_state(session, row.id)  # type: ignore[arg-type]
            session.get(AgentState, row.id).cap = cap  # type: ignore[union-attr]
        return row.id  # type: ignore[return-value]


def team(hub: Hub, name: str, members: list[int], *, lead: int | None = None, **values: Any) -> int:
    with hub.session() as session, session.begin():
        row = Team(name=name, lead_id=lead, **values)
        session.add(row)
        session.flush()
        for uid in members:
            session.add(TeamMember(team_id=row.id, user_id=uid))
        return row.id  # type: ignore[return-value]


def inbound(hub: Hub, *, channel: str = "fake", phone: str = "+79161234567", email: str | None = None,
            kind: str = "message", text: str = "Здравствуйте, где мой заказ?", data: dict[str, Any] | None = None,
            contact_id: int | None = None, at: datetime | None = None, external_id: str | None = None) -> IngestResult:
    identities = [] if contact_id else [IdentityRef(kind=IdentityKind.EMAIL, value=email)] if email else \
        [IdentityRef(kind=IdentityKind.PHONE, value=phone)]
    base = {"from": email or phone}
    return ingest(hub, InboundEvent(channel=channel, kind=kind, direction=Direction.IN, identities=identities,
                                    contact_id=contact_id, text=text, data={**base, **(data or {})}, occurred_at=at,
                                    external_id=external_id or f"in-{uuid.uuid4().hex}", subject=None))


def reply(hub: Hub, *, contact_id: int, user_id: int, channel: str = "fake", text: str = "Отвечаю") -> IngestResult:
    """An agent's message as the outbox posts it: outbound, with the acting user."""
    return ingest(hub, InboundEvent(channel=channel, kind="message", direction=Direction.OUT, contact_id=contact_id,
                                    text=text, actor_user_id=user_id, external_id=f"out-{uuid.uuid4().hex}"))


def conversations(hub: Hub, contact_id: int | None = None) -> list[Conversation]:
    with hub.session(read_only=True) as session:
        query = select(Conversation).order_by(Conversation.id)
        if contact_id is not None:
            query = query.where(Conversation.contact_id == contact_id)
        return list(session.scalars(query))


def one(hub: Hub, conv_id: int) -> Conversation:
    with hub.session(read_only=True) as session:
        conv = session.get(Conversation, conv_id)
        assert conv is not None
        return conv
