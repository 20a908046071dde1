"""Calls through Twilio: the local server runs each call against the hub's real voice webhooks."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from channels.phone.service import DialRequest, place_call, prepare_dial
from hub.auth import SYSTEM, user_principal
from hub.contacts import IdentityIn, create_contact
from hub.live import AGENTS_TOPIC
from hub.models import Contact, Identity, IdentityKind, TimelineEvent
from tests.channels.phone.conftest import ANNA_NUMBER, Agents, agent_lines
from tests.channels.sms.harness import HUB_NUMBER, World, make_world

FIXTURES = Path(__file__).resolve().parents[3] / "channels" / "phone" / "fixtures"
CALLER = "+15005550042"


def calls(world: World) -> list[TimelineEvent]:
    with world.hub.session(read_only=True) as s:
        return list(s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "call").order_by(TimelineEvent.id)))


def count(world: World, model: Any) -> int:
    with world.hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))  # type: ignore[return-value]


def test_a_call_from_an_unknown_number_pops_a_new_contact(world: World, agents: Agents) -> None:
    world.server.answering["client:boris"] = "answer"
    result = world.server.inbound_call(CALLER, HUB_NUMBER)
    assert result.errors == []
    assert result.steps == [f"dial {ANNA_NUMBER}: no-answer", "dial client:boris: answered by client:boris", "hangup"]

    (event,) = calls(world)
    assert event.external_id == result.sid and event.direction == "in" and event.channel == "phone"
    with world.hub.session(read_only=True) as s:
        contact = s.get(Contact, event.contact_id)
        phones = s.scalars(select(Identity.value).where(Identity.contact_id == contact.id)).all()
    assert phones == [CALLER]

    (pop,) = world.broker.of_type("call.incoming")
    assert pop[0] == AGENTS_TOPIC
    assert pop[1] == {"type": "call.incoming", "contact_id": contact.id, "contact_created": True,
                      "event_id": event.id, "call_sid": result.sid, "from": CALLER, "to": HUB_NUMBER}
    # The card pops while the call rings, before any later callback touched the event.
    order = [m.get("type") for _, m in world.broker.published if m.get("event_id") == event.id]
    assert order.index("call.incoming") < order.index("event.updated")

    assert event.status == "completed"
    assert event.data["outcome"] == "answered" and event.data["agent_user_id"] == agents.boris.id
    assert event.actor_user_id == agents.boris.id
    assert event.data["talk_seconds"] == 42 and event.data["duration_seconds"] == result.duration
    assert event.text == f"Call from {CALLER}: answered by Boris, 0:42"

    again = world.server.inbound_call(CALLER, HUB_NUMBER)
    assert again.sid != result.sid and len(calls(world)) == 2
    assert world.broker.of_type("call.incoming")[-1][1]["contact_created"] is False
    assert count(world, Contact) == 1


def test_nobody_answers_so_the_caller_leaves_a_voicemail(world: World) -> None:
    result = world.server.inbound_call(CALLER, HUB_NUMBER)
    assert result.steps[:2] == [f"dial {ANNA_NUMBER}: no-answer", "dial client:boris: no-answer"]
    assert result.steps[-1] == "record: 7 s message"
    (event,) = calls(world)
    assert event.data["outcome"] == "voicemail" and event.data["voicemail_seconds"] == 7
    assert event.data["recording_url"] == result.recordings[0]
    assert [r["source"] for r in event.data["recordings"]] == ["voicemail"]
    assert "voicemail (0:07)" in (event.text or "")


def test_a_caller_who_hangs_up_without_a_message_is_a_missed_call(world: World) -> None:
    world.server.inbound_call(CALLER, HUB_NUMBER, voicemail_seconds=0)
    (event,) = calls(world)
    assert event.data["outcome"] == "missed" and "recording_url" not in event.data


def test_outside_business_hours_calls_go_straight_to_voicemail(hub: Any, agents: Agents, frozen_clock: Any) -> None:
    hours = [{"days": ["mon", "tue", "wed", "thu", "fri"], "opens": "09:00", "closes": "18:00"}]
    settings = {"agents": agent_lines(agents), "business_hours": hours, "time_zone": "Europe/Moscow"}
    with make_world(hub, phone=settings) as world:
        frozen_clock.current = datetime(2026, 1, 17, 10, 0, tzinfo=timezone.utc)  # Saturday
        closed = world.server.inbound_call(CALLER, HUB_NUMBER)
        assert closed.steps[0].startswith("say: We are closed now")
        assert not any(step.startswith("dial") for step in closed.steps)
        frozen_clock.current = datetime(2026, 1, 16, 6, 30, tzinfo=timezone.utc)  # Friday 09:30 in Moscow
        world.server.answering[ANNA_NUMBER] = "answer"
        assert world.server.inbound_call(CALLER, HUB_NUMBER).steps == [f"dial {ANNA_NUMBER}: answered by {ANNA_NUMBER}",
                                                                       "hangup"]


def _fixture(name: str) -> dict[str, str]:
    return json.loads((FIXTURES / name).read_text())


def test_callbacks_in_any_order_and_repeated_update_one_event(world: World) -> None:
    completed, ringing = _fixture("call_completed.json"), _fixture("incoming_call.json")
    recording = {"AccountSid": completed["AccountSid"], "CallSid": completed["CallSid"],
                 "RecordingSid": "RE" + "1a" * 16, "RecordingUrl": "https://api.twilio.com/recordings/RE1",
                 "RecordingStatus": "completed", "RecordingDuration": "12", "RecordingSource": "RecordVerb"}
    answers = [
        world.post("/channels/phone/status", completed),  # the end, before the start
        world.post("/channels/phone/recording", recording),
        world.post("/channels/phone/voice", ringing),
        world.post("/channels/phone/recording", recording),
        world.post("/channels/phone/status", {**completed, "CallStatus": "in-progress", "CallDuration": "3"}),
        world.post("/channels/phone/status", completed),
    ]
    assert [a.status_code for a in answers] == [200] * 6
    (event,) = calls(world)
    assert event.external_id == completed["CallSid"]
    assert event.status == "completed" and event.data["duration_seconds"] == 95
    assert event.data["outcome"] == "voicemail" and len(event.data["recordings"]) == 1
    assert event.data["recording_url"] == recording["RecordingUrl"]
    assert world.broker.of_type("call.incoming") == []  # the call was over before the hub heard it ring


def test_forged_voice_webhooks_get_403_and_store_nothing(world: World) -> None:
    ringing = _fixture("incoming_call.json")
    assert world.post("/channels/phone/voice", ringing, signature="Zm9yZ2Vk").status_code == 403
    assert world.post("/channels/phone/voice", ringing, signature=None).status_code == 403
    assert world.post("/channels/phone/status", _fixture("call_completed.json"), signature="x").status_code == 403
    assert calls(world) == [] and count(world, Contact) == 0
    assert world.broker.published == []


def test_the_voice_webhook_takes_only_inbound_calls(world: World) -> None:
    outbound = {**_fixture("incoming_call.json"), "Direction": "outbound-api"}
    answer = world.post("/channels/phone/voice", outbound)
    assert answer.status_code == 400 and calls(world) == []


def test_withheld_numbers_share_one_anonymous_contact(world: World) -> None:
    withheld = _fixture("incoming_call_withheld.json")
    assert world.post("/channels/phone/voice", withheld).status_code == 200
    assert world.post("/channels/phone/voice", {**withheld, "CallSid": "CA" + "0f" * 16}).status_code == 200
    assert len(calls(world)) == 2 and count(world, Contact) == 1


def test_click_to_call_rings_the_agent_then_the_customer(world: World, agents: Agents) -> None:
    world.server.answering[CALLER] = "answer"
    with world.hub.session() as s, s.begin():
        contact = create_contact(s, actor=SYSTEM, region="US", display_name="Caller",
                                 identities=[IdentityIn(kind=IdentityKind.PHONE, value=CALLER)])
    with world.hub.session() as s, s.begin():
        event, line, customer = prepare_dial(s, request=DialRequest(contact_id=contact.id),
                                             actor=user_principal(agents.anna))
    assert (line, customer) == (ANNA_NUMBER, CALLER)
    sid = place_call(world.hub.channel("phone"), ref=event.external_id, agent_target=line, customer=customer)
    (result,) = world.server.run_pending_calls()
    assert result.steps == [f"call {ANNA_NUMBER}: answered", f"dial {CALLER}: answered by {CALLER}", "hangup"]
    (call,) = calls(world)
    assert call.direction == "out" and call.data["call_sid"] == sid
    assert call.data["outcome"] == "answered" and call.status == "completed"
    assert call.actor_user_id == agents.anna.id
    (request,) = [s for s in world.server.seen if s.path.endswith("/Calls.json")]
    assert request.params["To"] == ANNA_NUMBER and request.params["From"] == HUB_NUMBER
    assert f"{world.url}/channels/phone/voice/bridged?ref=dial:" in request.params["Twiml"]
    assert world.server.violations == []


def test_click_to_call_needs_a_phone_line(world: World, api_key: Any) -> None:
    answer = world.http.post(f"{world.url}/channels/phone/dial", headers=api_key("timeline:write"),
                             json={"contact_id": 1})
    assert answer.status_code == 409 and answer.json()["type"] == "/problems/no-phone-line"
    assert calls(world) == []


def test_a_busy_customer_makes_a_busy_call(world: World, agents: Agents) -> None:
    world.server.answering[CALLER] = "busy"
    with world.hub.session() as s, s.begin():
        contact = create_contact(s, actor=SYSTEM, region="US", display_name="Caller",
                                 identities=[IdentityIn(kind=IdentityKind.PHONE, value=CALLER)])
    with world.hub.session() as s, s.begin():
        event, line, customer = prepare_dial(s, request=DialRequest(contact_id=contact.id),
                                             actor=user_principal(agents.boris))
    assert line == "client:boris"
    place_call(world.hub.channel("phone"), ref=event.external_id, agent_target=line, customer=customer)
    (result,) = world.server.run_pending_calls()
    assert result.steps == ["call client:boris: answered", f"dial {CALLER}: busy", "hangup"]
    (call,) = calls(world)
    assert call.data["outcome"] == "busy" and call.text == f"Call to {CALLER}: busy"
