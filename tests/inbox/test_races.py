"""Races on PostgreSQL with real concurrent requests (a uvicorn server, threads of HTTP clients and
of ingesting webhooks): each ends in one consistent state, every step on the audit log."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.auth import create_api_key
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import AuditEntry, Direction, IdentityKind
from hub.runtime import Hub
from inbox import assignment
from inbox.models import AgentState, ConversationEvent, Status
from tests.inbox.conftest import conversations, one, user
from tests.web.conftest import serve

pytestmark = pytest.mark.slow


@pytest.fixture
def pg(hub: Hub) -> Hub:
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("the races are about PostgreSQL's row locks; SQLite has one writer")
    return hub


@pytest.fixture
def server(pg: Hub) -> Iterator[tuple[str, dict[str, str]]]:
    with pg.session() as s, s.begin():
        _, plain = create_api_key(s, name="races", scopes=["conversations:read", "conversations:write"])
    with serve(pg) as live:
        yield live.url, {"Authorization": f"Bearer {plain}"}


def sms_in(hub: Hub, phone: str = "+79161234567", *, contact_id: int | None = None) -> Any:
    return ingest(hub, InboundEvent(channel="sms", kind="message", direction=Direction.IN, text="Здравствуйте",
                                    identities=[] if contact_id else [IdentityRef(kind=IdentityKind.PHONE, value=phone)],
                                    contact_id=contact_id, data={"from": phone}, external_id=f"SM{uuid.uuid4().hex}"))


def sms_out(hub: Hub, *, contact_id: int, user_id: int) -> Any:
    return ingest(hub, InboundEvent(channel="sms", kind="message", direction=Direction.OUT, contact_id=contact_id,
                                    text="Отвечаю", actor_user_id=user_id, external_id=f"out-{uuid.uuid4().hex}"))


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the test looks at what each got
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def counters_are_true(hub: Hub) -> None:
    with hub.session(read_only=True) as s:
        stored = {uid: n for uid, n in s.execute(select(AgentState.user_id, AgentState.open_count)).all() if n}
        assert stored == assignment.open_counts(s)


def test_first_messages_arriving_together_open_one_conversation(pg):
    first = sms_in(pg)  # the contact exists; eight messages of it now race
    [conv] = conversations(pg)
    contact_id = first.contact.id
    from inbox import service
    from hub.auth import SYSTEM
    with pg.session() as s, s.begin():
        service.set_status(s, conv_id=conv.id, status=Status.RESOLVED, actor=SYSTEM)
    results = at_once(*[lambda: sms_in(pg, contact_id=contact_id) for _ in range(8)])
    assert not [r for r in results if isinstance(r, Exception)]
    convs = conversations(pg)
    assert len(convs) == 1 and convs[0].status == Status.OPEN and convs[0].reopened == 1
    with pg.session(read_only=True) as s:
        assert len(s.scalars(select(ConversationEvent.id)).all()) == 9


def test_two_agents_replying_at_once_make_one_first_response(pg):
    anna, boris = user(pg, "anna@example.com"), user(pg, "boris@example.com")
    contact_id = sms_in(pg).contact.id
    [conv] = conversations(pg)
    results = at_once(lambda: sms_out(pg, contact_id=contact_id, user_id=anna),
                      lambda: sms_out(pg, contact_id=contact_id, user_id=boris))
    assert not [r for r in results if isinstance(r, Exception)]
    conv = one(pg, conv.id)
    assert conv.first_response_at == min(r.event.occurred_at for r in results)
    with pg.session(read_only=True) as s:
        replies = s.scalars(select(AuditEntry).where(AuditEntry.action == "conversation.replied")).all()
    assert sorted(e.changes["first_response"] for e in replies) == [False, True]
    assert {e.actor_id for e in replies} == {str(anna), str(boris)}


def test_assignment_racing_reassignment_ends_with_one_assignee(pg, server):
    url, auth = server
    a, b, c = (user(pg, f"{n}@example.com") for n in ("a", "b", "c"))
    sms_in(pg)
    [conv] = conversations(pg)
    with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
        assert http.post(f"/api/v1/conversations/{conv.id}/assign", json={"assignee_id": a}).status_code == 200
        for _ in range(5):
            answers = at_once(lambda: http.post(f"/api/v1/conversations/{conv.id}/assign", json={"assignee_id": b}),
                              lambda: http.post(f"/api/v1/conversations/{conv.id}/assign", json={"assignee_id": c}))
            assert [r.status_code for r in answers] == [200, 200]
    final = one(pg, conv.id)
    assert final.assignee_id in (b, c)
    counters_are_true(pg)
    with pg.session(read_only=True) as s:
        chain = [e.changes["assignee_id"] for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action == "conversation.assigned").order_by(AuditEntry.id))]
    # each change starts where the one before ended: no assignment was lost or doubled
    for before, after in zip(chain, chain[1:]):
        assert after[0] == before[1]
    assert chain[-1][1] == final.assignee_id


def test_the_cap_holds_when_many_assign_to_one_agent_at_once(pg, server):
    url, auth = server
    agent = user(pg, "anna@example.com", presence=None, cap=2)
    for n in range(6):
        sms_in(pg, f"+7916333000{n}")
    ids = [c.id for c in conversations(pg)]
    with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
        answers = at_once(*[lambda i=i: http.post(f"/api/v1/conversations/{i}/assign", json={"assignee_id": agent})
                            for i in ids])
    assert sorted(r.status_code for r in answers) == [200, 200, 409, 409, 409, 409]
    assert "most open conversations" in [r for r in answers if r.status_code == 409][0].json()["detail"]
    counters_are_true(pg)


def test_a_message_arriving_while_resolving_ends_consistent(pg, server):
    url, auth = server
    agent = user(pg, "anna@example.com")
    contact_id = sms_in(pg).contact.id
    [conv] = conversations(pg)
    with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
        for _ in range(4):
            resolved, arrived = at_once(
                lambda: http.post(f"/api/v1/conversations/{conv.id}/status", json={"status": "resolved"}),
                lambda: sms_in(pg, contact_id=contact_id))
            assert resolved.status_code == 200 and not isinstance(arrived, Exception)
            convs = conversations(pg)
            assert len(convs) == 1  # the message joined or reopened it: never a second conversation
            state = convs[0]
            with pg.session(read_only=True) as s:
                linked = s.scalar(select(ConversationEvent.conversation_id)
                                  .where(ConversationEvent.event_id == arrived.event.id))
            assert linked == conv.id
            # resolved last: closed; the message last: open again with the message in it
            assert (state.status, state.open_key is None) in ((Status.RESOLVED, True), (Status.OPEN, False))
            if state.status == Status.RESOLVED:
                sms_in(pg, contact_id=contact_id)  # open it for the next round
            counters_are_true(pg)
    assert one(pg, conv.id).assignee_id == agent
