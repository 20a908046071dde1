"""The hub's sending rules, checked by a real worker at send time: consent, suppression, quiet hours in
the recipient's zone (across DST), a frequency cap per contact; transactional mail is never held."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from hub.channel import OutboundMessage
from hub import outbox, sending
from hub.auth import SYSTEM
from hub.contacts import record_consent
from hub.models import ConsentStatus, Contact, Delivery, Purpose, TimelineEvent
from hub.settings import FrequencyCap, QuietHours, SendingSettings
from hub.suppression import suppress
from hub.worker import Worker
from tests.fakes.channel import FakeChannel
from tests.test_outbox import event_of, get, make_contact, queue

UTC = timezone.utc
MARKETING = Purpose.MARKETING.value


def set_zone(hub, contact_id: int, zone: str | None) -> None:  # type: ignore[no-untyped-def]
    with hub.session() as s, s.begin():
        s.get(Contact, contact_id).time_zone = zone


def consent(hub, contact_id: int, status: ConsentStatus, channel: str = "fake") -> None:  # type: ignore[no-untyped-def]
    with hub.session() as s, s.begin():
        record_consent(s, contact=s.get(Contact, contact_id), actor=SYSTEM, channel=channel, status=status,
                       source="test")


def sent_ids() -> list[int]:
    return [m.delivery_id for m in FakeChannel.sent]


# --- consent ---------------------------------------------------------------------------------

def test_consent_withdrawn_after_enqueue_skips_marketing_at_send_time_with_the_reason(hub, frozen_clock):
    contact = make_contact(hub)
    consent(hub, contact, ConsentStatus.GRANTED)
    delivery = queue(hub, "m1", contact_id=contact, purpose=MARKETING)
    frozen_clock.advance(minutes=1)
    consent(hub, contact, ConsentStatus.WITHDRAWN)

    assert Worker(hub).tick() == 1
    row = get(hub, delivery)
    assert row.status == "cancelled"
    assert "withdrew marketing consent" in row.last_error
    assert sent_ids() == []
    assert event_of(hub, delivery).data["skipped"] == row.last_error


def test_consent_granted_again_lets_marketing_through(hub, frozen_clock):
    contact = make_contact(hub)
    consent(hub, contact, ConsentStatus.WITHDRAWN)
    frozen_clock.advance(minutes=1)
    consent(hub, contact, ConsentStatus.GRANTED)
    delivery = queue(hub, "m1", contact_id=contact, purpose=MARKETING)
    Worker(hub).tick()
    assert get(hub, delivery).status == "sent"


def test_withdrawn_on_another_channel_does_not_hold_this_one(hub):
    contact = make_contact(hub)
    consent(hub, contact, ConsentStatus.WITHDRAWN, channel="email")
    delivery = queue(hub, "m1", contact_id=contact, purpose=MARKETING)
    Worker(hub).tick()
    assert get(hub, delivery).status == "sent"


def test_require_opt_in_skips_contacts_who_never_decided(hub):
    hub.settings.sending = SendingSettings(require_opt_in=True)
    undecided = make_contact(hub, "+79161110001")
    opted_in = make_contact(hub, "+79161110002")
    consent(hub, opted_in, ConsentStatus.GRANTED)
    a = queue(hub, "a", contact_id=undecided, address="+79161110001", purpose=MARKETING)
    b = queue(hub, "b", contact_id=opted_in, address="+79161110002", purpose=MARKETING)
    Worker(hub).tick()
    assert get(hub, a).status == "cancelled" and "never opted in" in get(hub, a).last_error
    assert get(hub, b).status == "sent"


def test_transactional_mail_is_never_held_by_the_marketing_rules(hub, frozen_clock):
    hub.settings.sending = SendingSettings(require_opt_in=True, frequency_cap=FrequencyCap(max=1, days=7),
                                           quiet_hours={"fake": QuietHours(start="09:00", end="21:00")})
    frozen_clock.current = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)  # 02:30 in Moscow: quiet hours
    contact = make_contact(hub)
    consent(hub, contact, ConsentStatus.WITHDRAWN)
    with hub.session() as s, s.begin():
        suppress(s, kind="phone", value="+79161234567", region="RU", reason="manual")
    ids = [queue(hub, f"t{i}", contact_id=contact, purpose=Purpose.TRANSACTIONAL.value) for i in range(3)]
    Worker(hub).tick()
    assert [get(hub, i).status for i in ids] == ["sent"] * 3


# --- suppression -----------------------------------------------------------------------------

def test_a_suppressed_address_gets_no_marketing(hub):
    contact = make_contact(hub)
    delivery = queue(hub, "m1", contact_id=contact, purpose=MARKETING)
    other = queue(hub, "m2", address="+79169998877", purpose=MARKETING)
    with hub.session() as s, s.begin():
        # Listed in another notation of the same number: matching is on the normalized address.
        suppress(s, kind="phone", value="8 (916) 123-45-67", region="RU", reason="opted_out")
    Worker(hub).tick()
    row = get(hub, delivery)
    assert row.status == "cancelled" and "do-not-contact" in row.last_error
    assert get(hub, other).status == "sent"


def test_the_email_address_kind_is_checked_for_email_addresses():
    assert sending.address_kind("email", "a@example.com") == "email"
    assert sending.address_kind("sms", "+79161234567") == "phone"


# --- quiet hours -----------------------------------------------------------------------------

def window(start: str = "09:00", end: str = "21:00") -> dict:
    return {"quiet_hours": {"start": start, "end": end}}


def test_quiet_hours_defer_to_nine_local_across_a_dst_change(hub, frozen_clock):
    # 22:00 in New York on Saturday 7 March 2026; clocks go forward at 02:00 that night (EST -> EDT).
    frozen_clock.current = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)
    contact = make_contact(hub, "+12125551234")
    set_zone(hub, contact, "America/New_York")
    delivery = queue(hub, "m1", contact_id=contact, address="+12125551234", purpose=MARKETING, rules=window())
    assert Worker(hub).tick() == 1
    row = get(hub, delivery)
    assert row.status == "queued" and row.attempts == 0
    # 09:00 EDT is 13:00 UTC (it would be 14:00 with the offset of the evening before).
    assert row.send_after == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    assert "quiet hours" in row.last_error and "America/New_York" in row.last_error
    assert sent_ids() == []

    frozen_clock.current = datetime(2026, 3, 8, 12, 59, tzinfo=UTC)
    Worker(hub).tick()
    assert get(hub, delivery).status == "queued"
    frozen_clock.current = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    Worker(hub).tick()
    assert get(hub, delivery).status == "sent"


def test_quiet_hours_across_the_autumn_change_in_europe(hub, frozen_clock):
    # 23:00 CEST on Saturday 24 October 2026 in Berlin; the clocks go back that night (CEST -> CET).
    frozen_clock.current = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)
    contact = make_contact(hub, "+4915112345678")
    set_zone(hub, contact, "Europe/Berlin")
    delivery = queue(hub, "m1", contact_id=contact, address="+4915112345678", purpose=MARKETING, rules=window())
    Worker(hub).tick()
    assert get(hub, delivery).send_after == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # 09:00 CET


def test_the_zone_is_guessed_from_the_phone_number_when_the_contact_has_none(hub, frozen_clock):
    # 20:00 UTC is 23:00 in Moscow but 03:00 in Novosibirsk; both are outside 09–21, at different openings.
    frozen_clock.current = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)
    contact = make_contact(hub, "+73832123456")  # a Novosibirsk landline
    delivery = queue(hub, "m1", contact_id=contact, address="+73832123456", purpose=MARKETING, rules=window())
    Worker(hub).tick()
    assert get(hub, delivery).send_after == datetime(2026, 1, 16, 2, 0, tzinfo=UTC)  # 09:00 in UTC+7
    assert "Asia/Novosibirsk" in get(hub, delivery).last_error


def test_inside_the_window_marketing_goes_at_once(hub, frozen_clock):
    frozen_clock.current = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 15:00 in Moscow
    contact = make_contact(hub)
    delivery = queue(hub, "m1", contact_id=contact, purpose=MARKETING, rules=window())
    Worker(hub).tick()
    assert get(hub, delivery).status == "sent"


def test_sms_has_a_default_window_and_a_campaign_may_switch_it_off(hub):
    gate = sending.QuietHoursGate(hub)
    night = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)  # 02:00 in Moscow

    def message(**kw) -> OutboundMessage:  # type: ignore[no-untyped-def]
        return OutboundMessage(delivery_id=1, channel=kw.pop("channel", "sms"), address="+74951234567",
                               content={"text": "x"}, idempotency_key="k", purpose=MARKETING, contact_id=None,
                               attempt=1, **kw)

    decision = gate.check(None, message=message(), now=night)  # type: ignore[arg-type]
    assert decision.verdict == "defer" and decision.until == datetime(2026, 1, 16, 6, 0, tzinfo=UTC)
    assert gate.check(None, message=message(rules={"quiet_hours": "off"}), now=night) is None  # type: ignore[arg-type]
    assert gate.check(None, message=message(channel="email"), now=night) is None  # type: ignore[arg-type]


def test_rules_are_read_the_same_whatever_their_form_and_a_bad_one_counts_as_none_each_time(caplog):
    """rules_of parses each distinct value once and shares it: equal rules read equal, any form."""
    def message(rules) -> OutboundMessage:  # type: ignore[no-untyped-def]
        return OutboundMessage(delivery_id=7, channel="sms", address="+74951234567", content={"text": "x"},
                               idempotency_key="k", purpose=MARKETING, contact_id=None, attempt=1, rules=rules)

    stored = {"quiet_hours": {"start": "21:00", "end": "08:00"}, "frequency_cap": {"max": 2, "days": 7}}
    reordered = {"frequency_cap": {"days": 7, "max": 2}, "quiet_hours": {"end": "08:00", "start": "21:00"}}
    parsed = sending.rules_of(message(stored))
    assert parsed == sending.DeliveryRules.model_validate(stored) == sending.rules_of(message(reordered))
    assert parsed.quiet_hours == QuietHours(start="21:00", end="08:00") and parsed.frequency_cap == FrequencyCap(max=2, days=7)
    assert sending.rules_of(message({"quiet_hours": "off"})).quiet_hours == "off"
    assert sending.rules_of(message(None)) == sending.rules_of(message({})) == sending.DeliveryRules()
    # Not JSON's own types (a caller's objects): parsed as they are.
    assert sending.rules_of(message({"frequency_cap": FrequencyCap(max=3, days=1)})).frequency_cap == FrequencyCap(max=3, days=1)
    for _ in range(2):  # a bad row is the defaults, and says so every time it is read
        assert sending.rules_of(message({"quiet_hours": "sometimes"})) == sending.DeliveryRules()
    assert caplog.text.count("delivery 7 has invalid sending rules") == 2


def test_a_window_that_wraps_midnight():
    zone = ZoneInfo("UTC")
    night = QuietHours(start="22:00", end="06:00")
    assert sending.allowed_from(datetime(2026, 1, 1, 23, 0, tzinfo=UTC), night, zone) is None
    assert sending.allowed_from(datetime(2026, 1, 1, 5, 59, tzinfo=UTC), night, zone) is None
    assert sending.allowed_from(datetime(2026, 1, 1, 6, 0, tzinfo=UTC), night, zone) == datetime(2026, 1, 1, 22, 0, tzinfo=UTC)


def test_invalid_rules_are_refused_at_enqueue_and_nothing_is_written(hub):
    contact = make_contact(hub)
    for rules in ({"quiet_hours": {"start": "25:00", "end": "21:00"}}, {"frequency_cap": {"max": 0, "days": 7}},
                  {"quiet_hours": {"start": "09:00", "end": "09:00"}}, {"surprise": 1}, ["x"]):
        with pytest.raises(ValueError), hub.session() as s, s.begin():
            outbox.enqueue(s, channel="fake", address="+79161234567", content={"text": "x"},
                           idempotency_key="bad", contact_id=contact, purpose=MARKETING, rules=rules)  # type: ignore[arg-type]
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Delivery).where(Delivery.idempotency_key == "bad")).first() is None


# --- frequency cap ---------------------------------------------------------------------------

def test_frequency_cap_defers_until_the_oldest_send_ages_out(hub, frozen_clock):
    start = frozen_clock.current
    contact = make_contact(hub)
    cap = {"frequency_cap": {"max": 2, "days": 7}}
    first = queue(hub, "m1", contact_id=contact, purpose=MARKETING, rules=cap)
    Worker(hub).tick()
    frozen_clock.advance(days=1)
    second = queue(hub, "m2", contact_id=contact, purpose=MARKETING, rules=cap)
    Worker(hub).tick()
    frozen_clock.advance(days=1)
    third = queue(hub, "m3", contact_id=contact, purpose=MARKETING, rules=cap)
    transactional = queue(hub, "t1", contact_id=contact)
    Worker(hub).tick()
    assert [get(hub, i).status for i in (first, second, transactional)] == ["sent"] * 3
    row = get(hub, third)
    assert row.status == "queued" and "frequency cap" in row.last_error
    assert row.send_after == start + timedelta(days=7)  # when the first send leaves the 7-day window

    frozen_clock.current = start + timedelta(days=7)
    Worker(hub).tick()
    assert get(hub, third).status == "sent"


def test_frequency_cap_counts_deliveries_of_the_same_batch(hub):
    hub.settings.sending = SendingSettings(frequency_cap=FrequencyCap(max=1, days=1))
    contact = make_contact(hub)
    other = make_contact(hub, "+79160000001")
    ids = [queue(hub, f"m{i}", contact_id=contact, purpose=MARKETING) for i in range(3)]
    elsewhere = queue(hub, "x", contact_id=other, address="+79160000001", purpose=MARKETING)
    Worker(hub).tick()
    assert sorted(get(hub, i).status for i in ids) == ["queued", "queued", "sent"]
    assert get(hub, elsewhere).status == "sent"
    # A campaign may switch the default cap off for its deliveries.
    free = queue(hub, "free", contact_id=contact, purpose=MARKETING, rules={"frequency_cap": "off"})
    Worker(hub).tick()
    assert get(hub, free).status == "sent"


# --- what the enqueue records for campaigns --------------------------------------------------

def test_enqueue_records_rules_event_kind_and_event_data(hub):
    contact = make_contact(hub)
    delivery = queue(hub, "c1", contact_id=contact, purpose=MARKETING,
                     rules={"quiet_hours": {"start": "10:00", "end": "20:00"}},
                     event_data={"campaign_id": 3, "campaign_run_id": 9}, event_kind="campaign.message")
    row = get(hub, delivery)
    assert row.rules == {"quiet_hours": {"start": "10:00", "end": "20:00"}}
    event = event_of(hub, delivery)
    assert event.kind == "campaign.message"
    assert event.data["campaign_id"] == 3 and event.data["delivery_id"] == delivery
    claimed = outbox.claim_due(hub, worker="w", limit=5)
    assert claimed[0].rules == row.rules


def test_event_data_cannot_overwrite_the_delivery_fields(hub):
    contact = make_contact(hub)
    delivery = queue(hub, "c1", contact_id=contact, event_data={"delivery_id": 999, "x": 1})
    assert event_of(hub, delivery).data["delivery_id"] == delivery


def test_cancel_where_can_spare_transactional_deliveries(hub):
    contact = make_contact(hub)
    marketing = queue(hub, "m", contact_id=contact, purpose=MARKETING)
    receipt = queue(hub, "t", contact_id=contact)
    with hub.session() as s, s.begin():
        assert outbox.cancel_where(s, contact_id=contact, channel="fake", purpose=MARKETING) == 1
    assert get(hub, marketing).status == "cancelled"
    assert get(hub, receipt).status == "queued"
    with hub.session(read_only=True) as s:
        assert s.get(TimelineEvent, get(hub, marketing).event_id).status == "cancelled"
