"""A sale end to end: POST /api/v1/events → a scheduled invitation → the email at a real SMTP server
→ the link taken from that email and followed → the answer stored and on the timeline."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.surveys.models import InvitationStatus, SurveyInvitation, SurveyResponse
from campaigns.surveys.service import send_due
from hub.auth import SYSTEM
from hub.contacts import record_consent
from hub.models import ConsentStatus, Contact, Delivery, Purpose, TimelineEvent
from hub.worker import Worker
from tests.campaigns.surveys.conftest import configure, link_in, make_survey, start_smtp, stop_smtp


@pytest.fixture
def smtp(tmp_path):  # type: ignore[no-untyped-def]
    server = start_smtp(tmp_path / "smtp")
    yield server
    stop_smtp(server)


def test_a_sale_ends_in_an_answer_taken_from_the_received_email(hub, client, api_key, smtp, frozen_clock):
    configure(hub, **smtp.settings())
    make_survey(hub, delay_minutes=3 * 24 * 60)
    shop = api_key("events:write")
    sale = client.post("/api/v1/events", headers=shop, json={
        "event_id": "order-5521", "type": "order.completed",
        "contact": {"email": "Olga@Example.com", "name": "Ольга"},
        "order": {"order_id": "5521", "amount": "2490.00", "currency": "RUB",
                  "items": [{"name": "Кофемолка", "quantity": 1, "unit_price": "2490.00"}]},
    })
    assert sale.status_code == 201, sale.text
    contact_id = sale.json()["contact_id"]
    with hub.session() as session, session.begin():
        contact = session.get(Contact, contact_id)
        contact.locale = "ru"
        record_consent(session, contact=contact, actor=SYSTEM, channel="email", status=ConsentStatus.GRANTED,
                       purpose=Purpose.MARKETING, source="checkout")

    with hub.session(read_only=True) as session:
        invitation = session.scalars(select(SurveyInvitation)).one()
    assert invitation.status == InvitationStatus.SCHEDULED
    assert invitation.send_at == frozen_clock.current + timedelta(days=3)

    frozen_clock.advance(days=3)
    assert send_due(hub) == 1
    assert Worker(hub).tick() == 1
    with hub.session(read_only=True) as session:
        assert session.scalars(select(Delivery.status)).one() == "sent"

    ((meta, raw),) = smtp.received()
    assert meta["rcpt_tos"] == ["olga@example.com"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Как прошла покупка?" in message["subject"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Здравствуйте, Ольга!" in text
    assert html.count("score=") == 11  # the NPS question is in the email, one link per score
    token = link_in(text)

    # The customer taps "3" in the email: the page opens with 3 filled in, nothing is saved yet.
    page = client.get(f"/s/{token}?score=3")
    assert page.status_code == 200 and 'value="3" checked' in page.text
    answer = client.post(f"/s/{token}", data={"q_nps": "3", "q_wrong": "Долго ждали доставку", "action": "submit"},
                         follow_redirects=False)
    assert answer.status_code == 303
    with hub.session(read_only=True) as session:
        response = session.scalars(select(SurveyResponse)).one()
        answered = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.answered")).one()
        invited = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "survey.invited")).one()
    assert response.contact_id == contact_id and response.nps == 3 and response.completed
    assert response.answers["wrong"] == "Долго ждали доставку"
    assert answered.contact_id == contact_id and answered.data["nps"] == 3
    assert invited.contact_id == contact_id
    results = client.get(f"/api/v1/surveys/{response.survey_id}/results", headers=api_key("surveys:read"))
    assert results.status_code == 200
    body = results.json()
    assert body["responded"] == 1 and body["response_rate"] == 100.0 and body["nps"]["score"] == -100.0
    assert body["by_order"]["source"][0]["label"] == "test-key"
