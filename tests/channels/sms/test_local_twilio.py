"""The local Twilio-compatible server itself: the real SDK talks to it, and both sides of every API
call are checked against Twilio's OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from standins.twilio_local import LocalTwilio
from standins.twilio_local.contract import DEFAULT_CONTRACT

ACCOUNT = "AC" + "fedcba9876543210" * 2
TOKEN = "local-server-test-token"
CONTRACT = Path(__file__).resolve().parents[3].parent / "shared" / "contracts" / "twilio" / "twilio_api_v2010.json"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalTwilio]:
    local = LocalTwilio(account_sid=ACCOUNT, auth_token=TOKEN, callback_mode="manual").start()
    local.add_number("+15005550006")
    yield local
    local.stop()


@pytest.fixture
def client(server: LocalTwilio) -> Client:
    client = Client(ACCOUNT, TOKEN)
    client.api.base_url = server.url
    server.violations.clear()
    return client


def test_the_contract_is_the_shared_document() -> None:
    assert DEFAULT_CONTRACT == CONTRACT and CONTRACT.exists()


def test_the_sdk_sends_and_fetches_messages(server: LocalTwilio, client: Client) -> None:
    message = client.messages.create(to="+15005550009", from_="+15005550006", body="Hello 👋",
                                     status_callback="https://hub.example.com/channels/sms/status")
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued" and message.num_segments == "1"
    assert client.messages(message.sid).fetch().body == "Hello 👋"
    assert [c.params["MessageStatus"] for c in server.pending] == ["queued", "sent", "delivered"]
    server.pending.clear()
    assert server.violations == []


def test_calls_are_created_and_answered_per_the_document(server: LocalTwilio, client: Client) -> None:
    call = client.calls.create(to="+15005550011", from_="+15005550006", twiml="<Response><Say>Hi</Say></Response>",
                               status_callback_event=["initiated", "completed"])
    assert call.sid.startswith("CA") and call.status == "queued"
    (result,) = server.run_pending_calls()
    assert result.steps == ["call +15005550011: answered", "say: Hi"] and result.status == "completed"
    assert client.calls(call.sid).fetch().status == "completed"
    assert server.violations == []


def test_requests_the_document_does_not_allow_are_refused_and_recorded(server: LocalTwilio) -> None:
    url = f"{server.url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    missing_to = httpx.post(url, data={"Body": "hi", "From": "+15005550006"}, auth=(ACCOUNT, TOKEN))
    assert missing_to.status_code == 400 and missing_to.json()["code"] == 21604
    not_a_number = httpx.post(url, data={"To": "+15005550009", "Body": "hi", "From": "+15005550006",
                                         "ValidityPeriod": "soon"}, auth=(ACCOUNT, TOKEN))
    assert not_a_number.status_code == 400
    unknown = httpx.post(url, data={"To": "+15005550009", "Body": "hi", "From": "+15005550006", "Colour": "red"},
                         auth=(ACCOUNT, TOKEN))
    assert unknown.status_code == 400
    assert len(server.violations) == 3
    assert "'To' is a required property" in server.violations[0]
    assert "Colour" in server.violations[2]
    server.violations.clear()


def test_wrong_credentials_get_twilios_401(server: LocalTwilio) -> None:
    client = Client(ACCOUNT, "wrong-token")
    client.api.base_url = server.url
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+15005550009", from_="+15005550006", body="hi")
    assert caught.value.status == 401 and caught.value.code == 20003


def test_twilio_errors_the_hub_handles(server: LocalTwilio, client: Client) -> None:
    server.opted_out.add("+15005550010")
    with pytest.raises(TwilioRestException) as opted_out:
        client.messages.create(to="+15005550010", from_="+15005550006", body="hi")
    assert (opted_out.value.status, opted_out.value.code) == (400, 21610)
    with pytest.raises(TwilioRestException) as too_long:
        client.messages.create(to="+15005550009", from_="+15005550006", body="x" * 1601)
    assert too_long.value.code == 21617
    server.fail_next(429, retry_after="3")
    with pytest.raises(TwilioRestException) as throttled:
        client.messages.create(to="+15005550009", from_="+15005550006", body="hi")
    assert throttled.value.status == 429
    assert server.violations == []
