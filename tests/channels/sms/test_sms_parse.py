"""Parsing Twilio's messaging webhooks (pure), and the opt-out keywords."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels.sms import SmsChannel
from channels.twilio_common.keywords import Keyword, keyword
from channels.sms.parsing import parse_message, parse_status, webhook_kind
from hub.models import DeliveryStatus, IdentityKind

FIXTURES = Path(__file__).resolve().parents[3] / "channels" / "sms" / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_inbound_sms_is_one_event_threaded_by_the_pair_of_numbers() -> None:
    (event,) = SmsChannel.parse(load("inbound_sms.json"))
    assert event.channel == "sms" and event.kind == "message" and event.direction == "in"
    assert event.external_id == "SM5b2f1c7e9a0d4c3b8e6f1a2b3c4d5e6f"
    assert event.identities[0].kind == IdentityKind.PHONE and event.identities[0].value == "+79161234567"
    assert event.thread_key == "sms:+79587654321:+79161234567"
    assert event.text.startswith("Здравствуйте")
    assert event.data["keyword"] is None and event.data["media"] == []


def test_mms_records_every_media_url_and_type() -> None:
    (event,) = SmsChannel.parse(load("inbound_mms.json"))
    assert [m["content_type"] for m in event.data["media"]] == ["image/jpeg", "image/png"]
    assert all(m["url"].startswith("https://api.twilio.com/") for m in event.data["media"])


def test_messaging_service_threads_by_the_service_and_reports_opt_out() -> None:
    (event,) = SmsChannel.parse(load("inbound_stop_messaging_service.json"))
    assert event.thread_key == "sms:MG0123456789abcdef0123456789abcdef:+12125550143"
    assert event.data["keyword"] == "opt_out"


@pytest.mark.parametrize("body", ["STOP", "stop", "  Stop  ", "\tunsubscribe\n", "StopAll", "quit", "REVOKE", "optout"])
def test_opt_out_keywords_in_any_case_with_spaces(body: str) -> None:
    assert keyword(body) == Keyword.OPT_OUT


@pytest.mark.parametrize(("body", "word"), [("start", Keyword.OPT_IN), (" YES ", Keyword.OPT_IN),
                                            ("Unstop", Keyword.OPT_IN), ("help", Keyword.HELP), ("INFO ", Keyword.HELP)])
def test_opt_in_and_help_keywords(body: str, word: Keyword) -> None:
    assert keyword(body) == word


@pytest.mark.parametrize("body", ["STOP PLEASE", "please stop", "stopp", "", "S T O P", "стоп"])
def test_other_text_is_not_a_keyword(body: str) -> None:
    assert keyword(body) is None


def test_status_callbacks_map_onto_the_forward_only_ladder() -> None:
    assert parse_status(load("status/delivered.json")).status == DeliveryStatus.DELIVERED
    undelivered = parse_status(load("status/undelivered.json"))
    assert undelivered.status == DeliveryStatus.UNDELIVERED
    assert undelivered.detail == "Twilio error 30003"
    queued = {**load("status/delivered.json"), "MessageStatus": "queued", "SmsStatus": "queued"}
    assert parse_status(queued).status == DeliveryStatus.SENT


def test_the_two_kinds_are_not_confused() -> None:
    assert webhook_kind(load("inbound_sms.json")) == "message"
    assert webhook_kind(load("status/delivered.json")) == "status"
    with pytest.raises(ValueError, match="status callback"):
        parse_message(load("status/delivered.json"))
    with pytest.raises(ValueError, match="inbound message"):
        parse_status(load("inbound_sms.json"))


@pytest.mark.parametrize("change", [
    {"MessageSid": "not-a-sid", "SmsMessageSid": "x", "SmsSid": "x"},
    {"NumMedia": "2"},  # no MediaUrl0
    {"NumMedia": "many"},
    {"SmsStatus": "exploded"},
])
def test_malformed_payloads_are_refused(change: dict) -> None:
    with pytest.raises(ValueError):
        parse_message({**load("inbound_sms.json"), **change})
