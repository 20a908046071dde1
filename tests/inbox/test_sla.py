"""Service levels: business hours in the team's zone, due times, near-breach and breach escalated
exactly once each by the tick (also across a restart), snoozes that end while the process is down,
and the out-of-hours reply sent once a day."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from hub.auth import SYSTEM
from hub.models import AuditEntry, Delivery, Task
from inbox import jobs, service
from inbox.hours import Calendar
from inbox.models import Escalation, Priority, Status
from tests.inbox.conftest import FAKE_SETTINGS, MONDAY_10, conversations, inbound, one, team, user

UTC = timezone.utc


@pytest.mark.any_store
def test_business_minutes_skip_nights_weekends_and_holidays():
    cal = Calendar.of(time_zone="Europe/Moscow", hours={"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]],
                                                        "fri": [["09:00", "13:00"], ["14:00", "18:00"]]},
                      holidays=["2026-12-08"])
    friday_5pm = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)  # 17:00 Moscow
    # one hour left on Friday, then Monday 09:00 Moscow (06:00 UTC) + 60 minutes
    assert cal.add(friday_5pm, 120) == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    # Monday evening + 2 h: Tuesday is a holiday, Wednesday closed, so the next Friday
    monday_5pm = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert cal.add(monday_5pm, 120) == datetime(2026, 12, 11, 7, 0, tzinfo=UTC)
    # the lunch break is not counted
    assert cal.add(datetime(2026, 12, 11, 9, 30, tzinfo=UTC), 60) == datetime(2026, 12, 11, 11, 30, tzinfo=UTC)
    assert cal.between(friday_5pm, datetime(2026, 12, 7, 7, 0, tzinfo=UTC)) == 120
    assert not cal.is_open(datetime(2026, 12, 5, 9, 0, tzinfo=UTC)) and cal.is_open(monday_5pm)
    assert date(2026, 12, 8) in cal.holidays


@pytest.mark.any_store
def test_a_time_zone_across_daylight_saving_keeps_local_hours():
    cal = Calendar.of(time_zone="Europe/Berlin", hours={"sun": [["09:00", "17:00"]]}, holidays=[])
    # 2026-03-29 Berlin moves to summer time: 09:00 local is 07:00 UTC that day
    assert cal.add(datetime(2026, 3, 29, 0, 0, tzinfo=UTC), 0.5) == datetime(2026, 3, 29, 7, 0, 30, tzinfo=UTC)


def test_due_times_follow_the_team_hours_and_the_matching_policy(make_hub, clock_at):
    hub = make_hub(**FAKE_SETTINGS, policies=[
        {"name": "all", "first_response_minutes": 60, "resolution_minutes": 600},
        {"name": "fake urgent", "channel": "fake", "priority": "urgent", "first_response_minutes": 10},
        {"name": "key", "key_account": True, "first_response_minutes": 15},
    ])
    team(hub, "Night owls", [], time_zone="Asia/Vladivostok", hours={"mon": [["09:00", "10:00"]], "tue": [["09:00", "18:00"]]})
    inbound(hub)  # Monday 17:00 in Vladivostok: closed, so Tuesday 09:00 local (Monday 23:00 UTC) + 60 min
    [conv] = conversations(hub)
    assert conv.policy == "all" and conv.team_id is not None
    assert conv.first_response_due_at == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
    assert conv.due_at == conv.first_response_due_at


def _policy_hub(make_hub):
    return make_hub(**FAKE_SETTINGS, hours={}, policies=[
        {"name": "fast", "first_response_minutes": 30, "resolution_minutes": 240, "warn_minutes_before": 10}])


def test_near_breach_and_breach_escalate_exactly_once_each(make_hub, clock_at):
    hub = _policy_hub(make_hub)
    lead = user(hub, "lead@example.com", presence=None)
    agent = user(hub, "anna@example.com")
    team(hub, "Support", [agent], lead=lead)
    inbound(hub)
    [conv] = conversations(hub)
    assert conv.assignee_id == agent and conv.check_at == MONDAY_10 + timedelta(minutes=20)
    assert jobs.escalate_due(hub) == 0
    clock_at.advance(minutes=21)
    assert jobs.escalate_due(hub) == 1  # the warning
    assert jobs.escalate_due(hub) == 0
    with hub.session() as s, s.begin():  # the agent goes away: the breach hands it on
        service.assignment.set_presence(s, user_id=agent, presence=service.assignment.Presence.AWAY)
    other = user(hub, "boris@example.com")
    with hub.session() as s, s.begin():
        from inbox.models import TeamMember
        s.add(TeamMember(team_id=conv.team_id, user_id=other))
    clock_at.advance(minutes=10)
    restarted = _policy_hub(make_hub)  # a new process: all it knows is in the store
    assert jobs.escalate_due(restarted) == 1
    assert jobs.escalate_due(restarted) == jobs.escalate_due(hub) == 0
    conv = one(hub, conv.id)
    assert conv.breached and conv.priority == Priority.HIGH and conv.assignee_id == other
    with hub.session(read_only=True) as s:
        levels = s.execute(select(Escalation.target, Escalation.level).order_by(Escalation.id)).all()
        tasks = s.scalars(select(Task.assignee_id).where(Task.created_by == "inbox")).all()
        audited = s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("conversation.sla_%"))).all()
    assert [tuple(r) for r in levels] == [("first_response", "warning"), ("first_response", "breach")]
    assert tasks == [lead, lead] and sorted(audited) == ["conversation.sla_breach", "conversation.sla_warning"]
    # the resolution target is still to come, once
    assert one(hub, conv.id).check_at == MONDAY_10 + timedelta(minutes=230)


def test_a_snooze_that_ends_while_the_process_is_down_wakes_on_the_next_tick(make_hub, clock_at):
    hub = make_hub(**FAKE_SETTINGS)
    inbound(hub)
    [conv] = conversations(hub)
    with hub.session() as s, s.begin():
        service.set_status(s, conv_id=conv.id, status=Status.SNOOZED, until=clock_at() + timedelta(hours=2), actor=SYSTEM)
    assert one(hub, conv.id).due_at > clock_at() + timedelta(days=300) or one(hub, conv.id).resolution_due_at
    clock_at.advance(hours=1)
    assert jobs.wake_snoozed(hub) == 0
    hub.broker.stop()
    clock_at.advance(hours=3)  # the snooze ended while nothing ran
    restarted = make_hub(**FAKE_SETTINGS)
    assert jobs.wake_snoozed(restarted) == 1 and jobs.wake_snoozed(restarted) == 0
    woke = one(restarted, conv.id)
    assert woke.status == Status.OPEN and woke.snoozed_until is None


def test_a_customer_message_wakes_a_snoozed_or_waiting_conversation(ihub, clock_at):
    result = inbound(ihub)
    [conv] = conversations(ihub)
    with ihub.session() as s, s.begin():
        service.set_status(s, conv_id=conv.id, status=Status.WAITING, actor=SYSTEM)
    assert one(ihub, conv.id).first_response_due_at is not None and one(ihub, conv.id).check_at is not None
    inbound(ihub, contact_id=result.contact.id)
    assert one(ihub, conv.id).status == Status.OPEN


def test_the_out_of_hours_reply_goes_once_a_day_and_never_in_hours(make_hub, clock_at):
    hub = make_hub(**FAKE_SETTINGS)
    inbound(hub)  # Monday 10:00 Moscow: open, no reply
    clock_at.advance(hours=10)  # 20:00 Moscow: closed
    inbound(hub)
    inbound(hub)
    clock_at.advance(hours=1)
    inbound(hub)
    with hub.session(read_only=True) as s:
        keys = s.scalars(select(Delivery.idempotency_key).where(Delivery.channel == "fake")).all()
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "conversation.auto_reply")) == 1
    [conv] = conversations(hub)
    assert keys == [f"inbox.out_of_hours:{conv.id}:2026-12-07"]
    # the reply is not an agent's: the first response is still awaited
    assert one(hub, conv.id).first_response_at is None
    clock_at.advance(days=1)  # Tuesday 21:00: another day, another reply
    inbound(hub)
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 2


def test_out_of_hours_auto_replies_are_never_answered(make_hub, clock_at):
    hub = make_hub(**FAKE_SETTINGS)
    clock_at.advance(hours=10)
    inbound(hub, data={"auto_reply": True})
    inbound(hub, data={"keyword": "opt_out"})
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0


def test_conversations_waiting_for_an_agent_go_to_the_owner_when_they_come_online(ihub, clock_at):
    owner = user(ihub, "owner@example.com", presence=None)
    result = inbound(ihub)
    with ihub.session() as s, s.begin():
        from hub.models import Contact
        s.get(Contact, result.contact.id).owner_id = owner
    inbound(ihub, phone="+79998887766")
    assert [c.assignee_id for c in conversations(ihub)] == [None, None]
    assert jobs.assign_waiting(ihub) == 0  # nobody is online
    with ihub.session() as s, s.begin():
        service.assignment.set_presence(s, user_id=owner, presence=service.assignment.Presence.ONLINE)
    assert jobs.assign_waiting(ihub) == 2 and jobs.assign_waiting(ihub) == 0
    assert [c.assignee_id for c in conversations(ihub)] == [owner, owner]


def test_a_call_that_rang_out_unanswered_is_swept_into_a_conversation_once(ihub, clock_at):
    from hub.models import TimelineEvent

    ringing = inbound(ihub, channel="phone", kind="call", data={"call_status": "ringing"})
    assert conversations(ihub) == []  # while it rings nobody knows it will be missed
    with ihub.session() as s, s.begin():  # what the voice callbacks do (channels.phone.calls.record_facts)
        event = s.get(TimelineEvent, ringing.event.id)
        event.data = {**event.data, "call_status": "no-answer", "outcome": "missed"}
        event.status = "no-answer"
    answered = inbound(ihub, channel="phone", kind="call", phone="+79160009999", data={"call_status": "ringing"})
    with ihub.session() as s, s.begin():
        event = s.get(TimelineEvent, answered.event.id)
        event.data = {**event.data, "answered": True, "outcome": "answered"}
    assert jobs.missed_calls(ihub) == 1 and jobs.missed_calls(ihub) == 0
    [conv] = conversations(ihub)
    assert conv.channel == "phone" and conv.contact_id == ringing.contact.id
