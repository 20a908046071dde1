"""`hub serve --demo` wiring: the stand-ins start, the channels are pointed at them through the same
HUB_* variables serve sets, an email and an SMS from a contact page are delivered to them, the test
mailbox shows both, and a reply written as the customer lands on the contact's timeline, threaded."""

from __future__ import annotations

from importlib.metadata import entry_points

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.models import Delivery, Role, TimelineEvent
from hub.runtime import Hub
from hub.worker import Worker
from tests.demo.conftest import Demo, wait
from tests.web.conftest import ORIGIN, login
from tests.web.test_pages import HX, _contact, _post


def test_the_demo_sends_email_and_sms_to_its_stand_ins_and_the_customer_answers(demo: Demo) -> None:
    # The core's stand-ins, plus those of installed plug-in distributions (hub-telegram's local Bot API).
    plugins = {ep.name for ep in entry_points(group="hub.stand_ins") if ep.dist and ep.dist.name != "hub"}
    assert sorted(s.name for s in demo.stand_ins) == sorted(["email", "twilio", *plugins])
    for name in ("email", "sms", "phone", *plugins):
        assert demo.hub.channel(name).configured, name
    assert demo.hub.settings.demo.active

    token = login(demo.web, demo.hub, "admin@example.com", role=Role.ADMIN)
    contact_id = _contact(demo.hub, "Olga Orlova", email="olga@example.com", phone="+1 201 555 0123")
    sent = _post(demo.web, token, f"/contacts/{contact_id}/compose/email",
                 {"to": "olga@example.com", "subject": "Your order", "text": "It ships today.", "client_id": "e1"}, **HX)
    assert sent.status_code == 200, sent.text
    sms = _post(demo.web, token, f"/contacts/{contact_id}/compose/sms",
                {"text": "Your order ships today", "client_id": "s1"}, **HX)
    assert sms.status_code == 200, sms.text
    assert Worker(demo.hub).tick() == 2

    with demo.hub.session(read_only=True) as session:
        statuses = dict(session.execute(select(Delivery.channel, Delivery.status)).all())
    assert statuses["email"] == "sent"
    # Local Twilio's status callbacks reach the hub on its served port, signed for that URL.
    wait(lambda: _delivery_status(demo.hub, "sms") == "delivered")

    mailbox = demo.web.get("/admin/test-mailbox")
    assert mailbox.status_code == 200
    assert "Your order" in mailbox.text and "olga@example.com" in mailbox.text
    assert "Your order ships today" in mailbox.text and "+12015550123" in mailbox.text
    key = re.search(r'href="/admin/test-mailbox/([^"/]+)"', mailbox.text).group(1)  # type: ignore[union-attr]
    message = demo.web.get(f"/admin/test-mailbox/{key}")
    assert "It ships today." in message.text and 'id="reply-as-customer"' in message.text

    empty = demo.web.post(f"/admin/test-mailbox/{key}/reply", data={"body": " ", "csrf_token": token},
                          headers={"Origin": ORIGIN}, follow_redirects=False)
    assert empty.status_code == 422 and "Write the customer" in empty.text
    answered = demo.web.post(f"/admin/test-mailbox/{key}/reply",
                             data={"body": "Thank you, I will be home.", "csrf_token": token},
                             headers={"Origin": ORIGIN}, follow_redirects=False)
    assert answered.status_code == 303 and answered.headers["location"] == f"/contacts/{contact_id}"
    with demo.hub.session(read_only=True) as session:
        events = list(session.scalars(select(TimelineEvent).where(TimelineEvent.channel == "email")
                                      .order_by(TimelineEvent.id)))
    outbound, reply = events
    assert reply.direction == "in" and reply.contact_id == contact_id
    assert "Thank you, I will be home." in (reply.text or "")
    assert reply.thread_key == outbound.thread_key  # threaded by In-Reply-To


def test_the_test_mailbox_is_not_there_outside_the_demo(web: TestClient, hub: Hub) -> None:
    login(web, hub, "admin@example.com", role=Role.ADMIN)
    assert not hub.settings.demo.active
    assert web.get("/admin/test-mailbox").status_code == 404
    assert "/admin/test-mailbox" not in web.get("/admin/channels").text


def test_the_test_mailbox_is_for_admins(demo: Demo) -> None:
    login(demo.web, demo.hub, "agent@example.com", role=Role.AGENT)
    assert demo.web.get("/admin/test-mailbox", follow_redirects=False).status_code in (403, 404)
    assert demo.web.get("/admin/test-mailbox/../../etc/passwd", follow_redirects=False).status_code in (403, 404)


def _delivery_status(hub: Hub, channel: str) -> str | None:
    with hub.session(read_only=True) as session:
        return session.scalars(select(Delivery.status).where(Delivery.channel == channel)).first()
