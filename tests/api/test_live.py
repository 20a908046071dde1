"""GET /api/v1/live: Server-Sent Events from a real uvicorn server, read with httpx as a browser would."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from hub.api import live as live_api
from hub.app import create_app
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import IdentityKind
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.conftest import test_registry

# Generous bounds for a stream that should answer at once; they only stop a broken test from hanging.
READ_TIMEOUT = 15.0


def wait_until(condition: Callable[[], bool], what: str, *, seconds: float = READ_TIMEOUT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serve(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Run the app under uvicorn on a free port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def message(external_id: str, phone: str = "+79161234567") -> InboundEvent:
    return InboundEvent(channel="fake", kind="message", external_id=external_id, text="Здравствуйте",
                        identities=[IdentityRef(kind=IdentityKind.PHONE, value=phone)])


def next_event(lines: Iterator[str]) -> tuple[str, dict]:
    """The next SSE event (name, data) on the stream, skipping comments."""
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            assert name is not None, "data without an event name"
            return name, json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


def until_comment(lines: Iterator[str], comment: str) -> None:
    for line in lines:
        if line == f": {comment}":
            return
    raise AssertionError(f"the stream ended before ': {comment}'")


def subscribers(hub: Hub) -> int:
    return len(hub.broker._subscribers)  # the broker has no public count; this is what a leak would grow


def test_an_ingested_event_reaches_the_stream(hub, app, api_key):
    contact = ingest(hub, message("SM1")).contact
    headers = api_key("timeline:read")
    with serve(app) as base, httpx.Client(base_url=base, headers=headers, timeout=READ_TIMEOUT) as http:
        with http.stream("GET", "/api/v1/live", params={"contact_id": contact.id}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            lines = response.iter_lines()
            until_comment(lines, "connected")
            assert subscribers(hub) == 1
            other = ingest(hub, message("SM-other", phone="+79160000000"))  # someone else: not for this stream
            posted = ingest(hub, message("SM2"))
            name, data = next_event(lines)
        assert other.contact.id != contact.id
        assert name == "event.created"
        assert data["topic"] == f"contact:{contact.id}"
        assert (data["contact_id"], data["event_id"], data["channel"]) == (contact.id, posted.event.id, "fake")
        # The client has gone: the server ends the response and drops the subscription.
        wait_until(lambda: subscribers(hub) == 0, "the subscription to end after the client left")


def test_agents_topic_and_keep_alive_comments(hub, app, api_key, monkeypatch):
    monkeypatch.setattr(live_api, "KEEPALIVE_SECONDS", 0.05)
    with serve(app) as base, httpx.Client(base_url=base, headers=api_key("timeline:read"), timeout=READ_TIMEOUT) as http:
        with http.stream("GET", "/api/v1/live", params={"agents": "true"}) as response:
            lines = response.iter_lines()
            until_comment(lines, "connected")
            until_comment(lines, "keep-alive")
            hub.broker.publish("agents", {"type": "call.incoming", "contact_id": 7})
            name, data = next_event(lines)
    assert (name, data) == ("call.incoming", {"topic": "agents", "type": "call.incoming", "contact_id": 7})
    wait_until(lambda: subscribers(hub) == 0, "the subscription to end after the client left")


def test_a_merged_contact_streams_its_survivor(hub, app, api_key):
    from hub.models import Contact

    survivor = ingest(hub, message("SM1")).contact
    merged = ingest(hub, message("SM2", phone="+79160000000")).contact
    with hub.session() as s, s.begin():
        s.get(Contact, merged.id).merged_into = survivor.id
    with serve(app) as base, httpx.Client(base_url=base, headers=api_key("timeline:read"), timeout=READ_TIMEOUT) as http:
        with http.stream("GET", "/api/v1/live", params={"contact_id": merged.id}) as response:
            lines = response.iter_lines()
            until_comment(lines, "connected")
            posted = ingest(hub, message("SM3"))
            _, data = next_event(lines)
    assert data["event_id"] == posted.event.id and data["contact_id"] == survivor.id


def test_refusals_come_before_the_stream(hub, client, api_key):
    for params, headers, status in (
        ({"agents": "true"}, {}, 401),
        ({"agents": "true"}, api_key("contacts:read"), 403),
        ({}, api_key("timeline:read"), 422),
        ({"contact_id": "abc"}, api_key("timeline:read"), 422),
        ({"contact_id": 999999}, api_key("timeline:read"), 404),
    ):
        response = client.get("/api/v1/live", params=params, headers=headers)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert subscribers(hub) == 0


@pytest.fixture
def postgres_hubs(hub: Hub, tmp_path: Path) -> Iterator[tuple[Hub, Hub]]:
    """Two runtimes on one PostgreSQL database, each with its own NOTIFY broker, like two processes."""
    if not hub.settings.is_postgres:
        pytest.skip("cross-process fan-out goes through PostgreSQL LISTEN/NOTIFY")
    runtimes = []
    for name in ("a", "b"):
        settings = hub.settings.model_copy(update={"live_backend": "postgres", "data_dir": tmp_path / name})
        runtimes.append(Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db))
    yield runtimes[0], runtimes[1]
    for runtime in runtimes:
        runtime.broker.stop()


def listeners(hub: Hub) -> int:
    with hub.db.engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN hub_live'"
        )).scalar_one()


def test_postgres_fans_out_between_processes(postgres_hubs, api_key):
    publisher, receiver = postgres_hubs
    contact = ingest(publisher, message("SM1")).contact
    app = create_app(receiver, check_schema=False, start_worker=False)  # its lifespan starts the listener
    with serve(app) as base, httpx.Client(base_url=base, headers=api_key("timeline:read"), timeout=READ_TIMEOUT) as http:
        wait_until(lambda: listeners(receiver) >= 1, "the receiving process to LISTEN")
        with http.stream("GET", "/api/v1/live", params={"contact_id": contact.id}) as response:
            lines = response.iter_lines()
            until_comment(lines, "connected")
            posted = ingest(publisher, message("SM2"))  # published by the other runtime's broker
            name, data = next_event(lines)
    assert name == "event.created"
    assert (data["event_id"], data["contact_id"]) == (posted.event.id, contact.id)
