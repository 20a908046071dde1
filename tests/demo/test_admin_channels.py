"""Admin → Channels: each channel's state, what is missing and the settings to copy, and a test send."""

from __future__ import annotations

import html
import mailbox
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.models import AuditEntry, Delivery, Role
from hub.runtime import Hub
from tests.demo.conftest import Demo
from tests.web.conftest import ORIGIN, login


def _section(page: str, name: str) -> str:
    match = re.search(rf'<section[^>]*id="channel-{name}".*?</section>', page, re.S)
    assert match, name
    return html.unescape(match.group(0))


def _test(web: TestClient, token: str, name: str, address: str):  # type: ignore[no-untyped-def]
    return web.post(f"/admin/channels/{name}/test", data={"address": address, "csrf_token": token},
                    headers={"Origin": ORIGIN}, follow_redirects=False)


def test_unconfigured_channels_say_what_is_missing_and_what_to_set(web: TestClient, hub: Hub) -> None:
    token = login(web, hub, "admin@example.com", role=Role.ADMIN)
    page = web.get("/admin/channels").text
    email = _section(page, "email")
    assert "Not configured" in email
    assert "Missing: smtp_host, from_address" in re.sub(r"</?code>", "", email)
    assert "HUB_CHANNELS__EMAIL__SMTP_HOST=smtp.example.com" in email
    assert "HUB_CHANNELS__EMAIL__FROM_ADDRESS=support@example.com" in email
    assert '[channels.email]\nsmtp_host = "smtp.example.com"\nsmtp_port = 587' in email
    sms = _section(page, "sms")
    assert "HUB_CHANNELS__SMS__ACCOUNT_SID=AC" in sms and "HUB_CHANNELS__SMS__FROM_NUMBER=" in sms
    assert 'name="address"' not in email  # nothing to test before it is configured
    refused = _test(web, token, "email", "me@example.com")
    assert refused.status_code == 409 and "not configured" in refused.text
    assert web.post("/admin/channels/fax/test", data={"address": "x", "csrf_token": token},
                    headers={"Origin": ORIGIN}).status_code == 404


def test_an_agent_cannot_send_tests(web: TestClient, hub: Hub) -> None:
    token = login(web, hub, "agent@example.com", role=Role.AGENT)
    assert _test(web, token, "email", "me@example.com").status_code in (403, 404)


def test_a_test_email_and_sms_go_out_and_the_page_says_so(demo: Demo) -> None:
    token = login(demo.web, demo.hub, "admin@example.com", role=Role.ADMIN)
    page = demo.web.get("/admin/channels").text
    for name in ("email", "sms"):
        section = _section(page, name)
        assert "Configured" in section and 'name="address"' in section, name

    bad = _test(demo.web, token, "email", "not an address")
    assert bad.status_code == 422 and "not one this channel can send to" in bad.text
    sent = _test(demo.web, token, "email", "Boss@Example.com")
    assert sent.status_code == 200, sent.text
    assert "Sent to boss@example.com." in _section(sent.text, "email")
    box = mailbox.Maildir(demo.hub.settings.demo.mailbox, create=False)
    messages = [box.get_message(key) for key in box.keys()]
    assert [m["Subject"] for m in messages] == ["A test from the hub"]
    assert messages[0]["Delivered-To"] == "boss@example.com"

    bad_number = _test(demo.web, token, "sms", "12")
    assert bad_number.status_code == 422
    texted = _test(demo.web, token, "sms", "+1 201 555 0123")
    assert texted.status_code == 200 and "Sent to +12015550123." in _section(texted.text, "sms")
    assert "SM" in _section(texted.text, "sms")  # the provider's message id
    server = next(s for s in demo.stand_ins if s.name == "twilio")
    import httpx

    state = httpx.get(server.url + "_local/state").json()
    assert [m["body"] for m in state["messages"]] == ["A test from the hub: SMS works."]
    with demo.hub.session(read_only=True) as session:
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.action == "channel.test")).all() == [
            "channel.test", "channel.test"]


def test_a_channel_whose_last_send_failed_shows_an_error(demo: Demo) -> None:
    login(demo.web, demo.hub, "admin@example.com", role=Role.ADMIN)
    with demo.hub.session() as session, session.begin():
        session.add(Delivery(channel="email", address="x@example.com", content={"subject": "s", "text": "t"},
                             idempotency_key="broken-1", status="dead", last_error="535 5.7.8 authentication failed"))
    section = _section(demo.web.get("/admin/channels").text, "email")
    assert "Error" in section and "535 5.7.8 authentication failed" in section
