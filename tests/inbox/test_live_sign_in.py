"""/inbox/live re-reads its session on the heartbeat: a stream opened before the agent's sessions
were revoked (a password change) or the user was disabled ends with a `signed-out` frame and
carries no more conversation changes. The heartbeat and the re-read interval are shortened."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from hub.auth import change_password
from hub.models import User
from hub.web import sessions
from inbox import views
from tests.inbox.conftest import inbound
from tests.web.test_live import Stream, _signed_in


@pytest.fixture
def quick_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(sessions, "RECHECK_SECONDS", 0.0)


def _change(hub, email: str, how: str) -> None:  # type: ignore[no-untyped-def]
    with hub.session() as session, session.begin():
        user = session.scalars(select(User).where(User.email == email)).one()
        if how == "password":
            change_password(session, user, "another correct horse battery")
        else:
            user.is_active = False
            user.session_version += 1


@pytest.mark.parametrize("how", ["password", "disabled"])
def test_a_revoked_session_ends_the_inbox_stream(live_server, quick_recheck, how):
    client = _signed_in(live_server.url, live_server.hub)
    with Stream(client, "/inbox/live") as stream:
        stream.wait_for("ready")
        inbound(live_server.hub, channel="sms")
        stream.wait_for("conversation")
        _change(live_server.hub, "agent@example.com", how)
        stream.wait_for("signed-out")
        stream.thread.join(timeout=5)
        assert not stream.thread.is_alive()  # the server ended the response
        seen = len(stream.frames)
        inbound(live_server.hub, channel="sms", phone="+79161234568")
        assert len(stream.frames) == seen
    assert client.get("/inbox/live").status_code in (303, 401)
    client.close()


def test_a_signed_in_agent_keeps_the_stream_across_rechecks(live_server, quick_recheck):
    client = _signed_in(live_server.url, live_server.hub)
    with Stream(client, "/inbox/live") as stream:
        stream.wait_for("ready")
        time.sleep(1.0)  # several heartbeats, each re-reading the session
        inbound(live_server.hub, channel="sms")
        stream.wait_for("conversation")
        assert all(name != "signed-out" for name, _ in stream.frames)
    client.close()
