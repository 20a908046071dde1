"""Invitations as due rows: triggers schedule them, ticks send them, the N-day rule and the one reminder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from campaigns.surveys.models import InvitationStatus, Survey, SurveyInvitation
from campaigns.surveys.service import SurveyIn, send_due, send_reminders, send_to_contacts
from hub.auth import SYSTEM
from hub.contacts import record_consent
from hub.events import BusinessEvent, record_business_event
from hub.models import ConsentStatus, Contact, Delivery, Purpose, TimelineEvent
from hub.runtime import Hub
from hub.tasks import complete_task, create_task
from hub.triggers import TriggerRegistry
from tests import forked
from tests.campaigns.surveys.conftest import invitations, make_contact, make_survey, survey_data
from tests.conftest import test_registry


def order(hub: Hub, *, event_id: str = "o-1", email: str = "anna@example.com", amount: str = "1500.00") -> None:
    with hub.session() as session, session.begin():
        record_business_event(session, actor=SYSTEM, event=BusinessEvent.model_validate({
            "event_id": event_id, "type": "order.completed", "source": "shop",
            "contact": {"email": email, "name": "Анна"},
            "order": {"order_id": event_id, "amount": amount, "currency": "RUB",
                      "items": [{"name": "Чайник", "quantity": "1", "unit_price": amount}]},
        }))


def deliveries(hub: Hub) -> list[Delivery]:
    with hub.session(read_only=True) as session:
        rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
        session.expunge_all()
    return rows


def kinds(hub: Hub) -> list[str]:
    with hub.session(read_only=True) as session:
        return list(session.scalars(select(TimelineEvent.kind).where(TimelineEvent.kind.like("survey.%"))
                                    .order_by(TimelineEvent.id)))


def test_a_sale_schedules_an_invitation_after_the_delay_and_a_replay_adds_none(hub, frozen_clock, email_ready):
    make_survey(hub)
    order(hub)
    order(hub)  # the shop retries the same event
    [invitation] = invitations(hub)
    assert invitation.status == InvitationStatus.SCHEDULED
    assert invitation.send_at == frozen_clock.current + timedelta(days=3)
    assert invitation.context["amount"] == "1500.00" and invitation.context["source"] == "shop"
    assert send_due(hub) == 0  # not due yet
    frozen_clock.advance(days=3)
    assert send_due(hub) == 1
    assert send_due(hub) == 0  # a second tick finds nothing to do
    [delivery] = deliveries(hub)
    assert delivery.channel == "email" and delivery.address == "anna@example.com"
    assert delivery.purpose == Purpose.MARKETING
    assert "/s/" in delivery.content["text"] and "Как прошла покупка?" in delivery.content["subject"]
    # The first NPS question is in the email, one link per score.
    assert delivery.content["html"].count("?score=") == 11
    assert invitations(hub)[0].status == InvitationStatus.SENT
    assert "survey.invited" in kinds(hub)


def test_draft_and_closed_surveys_schedule_nothing(hub, email_ready):
    make_survey(hub, status="draft")
    make_survey(hub, name="closed", status="closed")
    order(hub)
    assert invitations(hub) == []


def test_no_contact_is_surveyed_twice_within_n_days(hub, frozen_clock, email_ready):
    make_survey(hub, delay_minutes=0, cooldown_days=30)
    order(hub, event_id="o-1")
    send_due(hub)
    frozen_clock.advance(days=10)
    order(hub, event_id="o-2")  # within 30 days of the first survey: no new invitation
    assert len(invitations(hub)) == 1
    frozen_clock.advance(days=21)
    order(hub, event_id="o-3")  # 31 days later: surveyed again
    assert send_due(hub) == 1
    assert [i.status for i in invitations(hub)] == [InvitationStatus.SENT, InvitationStatus.SENT]
    assert len(deliveries(hub)) == 2


def test_the_n_day_rule_holds_at_send_time_too(hub, frozen_clock, email_ready):
    # Two triggers that committed side by side each saw no earlier invitation: both rows exist.
    # At send time the first one due goes, and the other is skipped.
    survey = make_survey(hub, delay_minutes=0, cooldown_days=14)
    contact = make_contact(hub)
    with hub.session() as session, session.begin():
        for n in range(2):
            session.add(SurveyInvitation(survey_id=survey.id, contact_id=contact.id, cause=f"race:{n}",
                                         nonce=f"nonce-{n}", send_at=frozen_clock.current))
    assert send_due(hub) == 2
    assert sorted(i.status for i in invitations(hub)) == [InvitationStatus.SENT, InvitationStatus.SKIPPED]
    assert len(deliveries(hub)) == 1


def test_channel_follows_consent_and_identities(hub, email_ready):
    survey = make_survey(hub, delay_minutes=0, channels=["email", "sms"])
    no_email = make_contact(hub, None, phone="+79161234567", name="Без почты")
    withdrawn = make_contact(hub, "petr@example.com", name="Пётр")
    with hub.session() as session, session.begin():
        record_consent(session, contact=session.get(Contact, withdrawn.id), actor=SYSTEM, channel="email",
                       status=ConsentStatus.WITHDRAWN, purpose=Purpose.MARKETING, source="test")
        send_to_contacts(session, survey=session.get(Survey, survey.id), contact_ids=[no_email.id, withdrawn.id],
                         batch="x")
    send_due(hub)
    by_contact = {i.contact_id: i for i in invitations(hub)}
    # SMS is not configured here, so neither can be reached: skipped, with the reason, and no delivery.
    assert by_contact[no_email.id].status == InvitationStatus.SKIPPED
    assert by_contact[withdrawn.id].status == InvitationStatus.SKIPPED
    assert "consent" in by_contact[withdrawn.id].skip_reason
    assert deliveries(hub) == []


def test_a_reminder_is_sent_once_even_across_a_worker_restart(hub, frozen_clock, email_ready):
    survey = make_survey(hub, delay_minutes=0, reminder_days=2)
    contact = make_contact(hub)
    with hub.session() as session, session.begin():
        send_to_contacts(session, survey=session.get(Survey, survey.id), contact_ids=[contact.id], batch="r")
    send_due(hub)
    assert send_reminders(hub) == 0  # not yet
    frozen_clock.advance(days=2, minutes=1)
    assert send_reminders(hub) == 1
    # A restarted worker is a new runtime on the same store: the due row says it is done.
    restarted = Hub(hub.settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db)
    restarted.channel("email").settings = hub.channel("email").settings
    assert send_reminders(restarted) == 0
    frozen_clock.advance(days=3)
    assert send_reminders(restarted) == 0 and send_reminders(hub) == 0
    keys = [d.idempotency_key for d in deliveries(hub)]
    assert keys == [f"survey:{invitations(hub)[0].id}:invitation", f"survey:{invitations(hub)[0].id}:reminder"]
    assert kinds(hub).count("survey.reminded") == 1


def test_a_closed_task_and_a_completed_meeting_trigger_their_surveys(hub, frozen_clock, email_ready):
    make_survey(hub, name="task", trigger_kind="task.completed", delay_minutes=60, cooldown_days=0)
    contact = make_contact(hub)
    with hub.session() as session, session.begin():
        task = create_task(session, actor=SYSTEM, title="Перезвонить", contact_id=contact.id)
        complete_task(session, task=task, actor=SYSTEM)
    [invitation] = invitations(hub)
    assert invitation.context["kind"] == "task.completed"
    assert invitation.send_at == frozen_clock.current + timedelta(hours=1)


@pytest.mark.parametrize("bad", [
    {"questions": []},
    {"questions": [{"key": "a", "kind": "single", "text": {"en": "Pick"}, "options": [{"key": "x", "text": {"en": "X"}}]}]},
    {"questions": [{"key": "t", "kind": "text", "text": {"en": "Why?"}, "show_if": {"question": "nps", "max": 6}}]},
    {"questions": [{"key": "a", "kind": "nps", "text": {"en": "A"}}, {"key": "a", "kind": "text", "text": {"en": "B"}}]},
    {"questions": [{"key": "a", "kind": "nps", "text": {"en": "", "ru": ""}}]},
    {"trigger_kind": "order.shipped"},
    {"channels": ["fax"]},
    {"expiry_days": 0},
])
def test_invalid_definitions_are_refused(bad):
    with pytest.raises(ValidationError):
        SurveyIn.model_validate(survey_data(**bad))


def test_a_contact_with_only_a_phone_is_invited_by_sms_in_their_language(hub, email_ready):
    from tests.channels.sms.harness import channel_settings

    sms = hub.channel("sms")
    sms.settings = type(sms.settings).model_validate(channel_settings("http://127.0.0.1:9")["sms"])
    assert sms.configured
    survey = make_survey(hub, delay_minutes=0, channels=["email", "sms"])
    english = make_contact(hub, None, phone="+79161234567", locale="en", name="John")
    with hub.session() as session, session.begin():
        send_to_contacts(session, survey=session.get(Survey, survey.id), contact_ids=[english.id], batch="s")
    assert send_due(hub) == 1
    [delivery] = deliveries(hub)
    assert delivery.channel == "sms" and delivery.address == "+79161234567"
    assert delivery.content["text"].startswith("How was your purchase? Please tell us how we did: http")
    assert "/s/" in delivery.content["text"]
    assert invitations(hub)[0].channel == "sms"


def test_an_old_sale_imported_late_is_not_surveyed_and_a_recent_one_goes_at_once(hub, frozen_clock, email_ready):
    make_survey(hub, delay_minutes=3 * 24 * 60, expiry_days=7)
    with hub.session() as session, session.begin():
        for event_id, days_ago in (("old", 30), ("recent", 5)):
            record_business_event(session, actor=SYSTEM, event=BusinessEvent.model_validate({
                "event_id": event_id, "type": "order.completed", "source": "import",
                "occurred_at": (frozen_clock.current - timedelta(days=days_ago)).isoformat(),
                "contact": {"email": f"{event_id}@example.com"},
                "order": {"order_id": event_id, "amount": "10.00", "currency": "EUR"},
            }))
    [invitation] = invitations(hub)
    assert invitation.context["order_id"] == "recent" and invitation.send_at == frozen_clock.current


@pytest.mark.slow
def test_worker_processes_racing_send_the_reminder_once(hub, frozen_clock, email_ready):
    survey = make_survey(hub, delay_minutes=0, reminder_days=1)
    contacts = [make_contact(hub, f"r{n}@example.com", name=f"R{n}").id for n in range(5)]
    with hub.session() as session, session.begin():
        send_to_contacts(session, survey=session.get(Survey, survey.id), contact_ids=contacts, batch="race")
    send_due(hub)
    later = (frozen_clock.current + timedelta(days=1, minutes=1)).isoformat()
    # Worker processes of their own, forked ready-imported (tests/forked.py); each is ready once started.
    procs = [forked.start("tests.campaigns.surveys.reminder_proc:main", hub.settings.database_url, later, talk=True,
                          log=Path(hub.settings.data_dir) / f"reminder-{n}.log") for n in range(3)]
    for proc in procs:  # all three are ready: let them race
        proc.go()
    sent = [proc.answer(timeout=120) for proc in procs]
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0, 0]
    assert sum(sent) == 5
    keys = [d.idempotency_key for d in deliveries(hub) if d.idempotency_key.endswith(":reminder")]
    assert len(keys) == len(set(keys)) == 5
    assert kinds(hub).count("survey.reminded") == 5
