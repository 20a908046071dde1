"""Live updates over server-sent events, within one process and across API processes (PostgreSQL NOTIFY)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.ingest import InboundEvent, IdentityRef, ingest
from hub.live import make_broker
from hub.models import IdentityKind
from hub.runtime import Hub
from hub.settings import load_settings
from hub.triggers import TriggerRegistry
from tests.conftest import test_registry
from tests.web.conftest import PASSWORD, csrf_of, serve


def _signed_in(url: str, hub: Hub, email: str = "agent@example.com", *, create: bool = True) -> httpx.Client:
    if create:
        from hub.auth import create_user
        from hub.models import Role

        with hub.session() as session, session.begin():
            create_user(session, email=email, password=PASSWORD, role=Role.AGENT)
    client = httpx.Client(base_url=url, timeout=httpx.Timeout(10.0))
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                         headers={"Origin": url})
    assert answer.status_code == 303, answer.text
    return client


class Stream:
    """Reads one SSE response in a thread and hands over each (event, data) frame."""

    def __init__(self, client: httpx.Client, path: str) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.arrived = threading.Condition()
        self.status: int | None = None
        self.response: httpx.Response | None = None
        self._context = client.stream("GET", path, timeout=httpx.Timeout(30.0))
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        try:
            with self._context as response:
                self.response = response
                self.status = response.status_code
                name = "message"
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        with self.arrived:
                            self.frames.append((name, json.loads(line[6:])))
                            self.arrived.notify_all()
                        name = "message"
        except (httpx.HTTPError, RuntimeError, ValueError):
            pass  # closed by __exit__

    def wait_for(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        with self.arrived:
            ok = self.arrived.wait_for(lambda: any(n == name for n, _ in self.frames), timeout=timeout)
            assert ok, f"no {name!r} frame within {timeout}s; got {self.frames}"
            return next(d for n, d in self.frames if n == name)

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.response is not None:
            self.response.close()  # the reader sees the stream end and returns
        self.thread.join(timeout=5)


def _contact(hub: Hub, phone: str) -> int:
    with hub.session() as session, session.begin():
        return create_contact(session, actor=SYSTEM, region="RU", display_name="Caller",
                              identities=[IdentityIn(kind=IdentityKind.PHONE, value=phone)]).id


def test_a_contact_stream_carries_its_new_events_and_every_incoming_call(live_server):
    client = _signed_in(live_server.url, live_server.hub)
    watched, other = _contact(live_server.hub, "+7 916 100-00-01"), _contact(live_server.hub, "+7 916 100-00-02")
    with Stream(client, f"/live?contact={watched}") as stream:
        stream.wait_for("ready")
        ingest(live_server.hub, InboundEvent(channel="fake", kind="message", contact_id=other, text="not for you"))
        result = ingest(live_server.hub, InboundEvent(channel="fake", kind="message", contact_id=watched, text="hi"))
        frame = stream.wait_for("timeline")
        assert frame == {"type": "event.created", "contact_id": watched, "event_id": result.event.id,
                         "channel": "fake", "kind": "message", "status": None}
        call = ingest(live_server.hub, InboundEvent(
            channel="fake", kind="call.incoming", identities=[IdentityRef(kind=IdentityKind.PHONE, value="89161000002")]))
        assert stream.wait_for("pop") == {"contact_id": other, "event_id": call.event.id}
        assert all(d.get("contact_id") != other for n, d in stream.frames if n == "timeline")
    client.close()


def test_the_stream_needs_a_signed_in_agent(live_server):
    with httpx.Client(base_url=live_server.url) as anonymous:
        assert anonymous.get("/live").status_code == 401


@pytest.fixture
def two_processes(hub: Hub, tmp_path) -> Iterator[tuple[Any, Any]]:
    """Two API "processes" on one PostgreSQL store, each with its own NOTIFY broker and server."""
    if not hub.settings.is_postgres:
        pytest.skip("fan-out across processes is PostgreSQL's LISTEN/NOTIFY")
    runtimes = []
    for n in range(2):
        settings = load_settings(database_url=str(hub.settings.database_url), data_dir=tmp_path / f"p{n}",
                                 secret_key=hub.settings.secret_key.get_secret_value(),  # type: ignore[union-attr]
                                 embedded_worker=False, live_backend="postgres")
        runtimes.append(Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db,
                            broker=make_broker("postgres", settings.sqlalchemy_url)))
    with serve(runtimes[0]) as first, serve(runtimes[1]) as second:
        yield first, second
    for runtime in runtimes:
        runtime.broker.stop()


def test_live_updates_reach_agents_on_another_api_process(two_processes):
    first, second = two_processes
    client = _signed_in(second.url, second.hub)
    contact_id = _contact(first.hub, "+7 916 200-00-01")
    with Stream(client, f"/live?contact={contact_id}") as stream:
        stream.wait_for("ready")
        # The event arrives through the first process (a webhook there) ...
        body = json.dumps({"id": "call-1", "from": "8 916 200 00 01", "type": "call.incoming"}).encode()
        answer = httpx.post(f"{first.url}/channels/fake/inbound", content=body,
                            headers={"X-Fake-Signature": first.hub.channel("fake").sign(body),
                                     "Content-Type": "application/json"})
        assert answer.status_code == 200
        # ... and the agent connected to the second one sees it and gets the screen pop.
        assert stream.wait_for("timeline")["contact_id"] == contact_id
        assert stream.wait_for("pop")["contact_id"] == contact_id
    client.close()
