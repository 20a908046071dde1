"""Campaign runs on both stores: materialising in checkpointed batches, pause and resume without
duplicates, cancel, duplicate, recurring runs after downtime and across DST, triggered and drip
campaigns, and the results they add up to."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from campaigns import runs, service
from campaigns.models import Campaign, CampaignMessage, CampaignRun, CampaignStatus, RecipientStatus, RunStatus
from campaigns.results import campaign_results
from campaigns.scheduling import next_cron_time, run_key
from hub.ingest import IdentityRef, InboundEvent, post_event
from hub.models import DeliveryStatus, Direction, IdentityKind
from hub.worker import Worker
from tests.campaigns.helpers import (
    act,
    add_contacts,
    campaign,
    deliveries,
    email_set_up,
    envelope_recipients,
    make_campaign,
    make_segment,
    make_template,
    mark_sent,
    recipients,
    run_count,
    smtp,  # noqa: F401 - fixture
    tick,
)

UTC = timezone.utc


def send_all(hub) -> int:  # type: ignore[no-untyped-def]
    worker = Worker(hub, name="test")
    total = 0
    while handled := worker.tick():
        total += handled
    return total


# --- materialising ------------------------------------------------------------------------------

def test_a_run_reaches_every_contact_of_the_segment_once_with_personalised_mail(hub, smtp):
    hub.settings.public_base_url = "https://hub.example.com"
    ids = add_contacts(hub, 15)
    add_contacts(hub, 3, tag="other", prefix="x")  # not in the segment
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    tick(hub)
    found = deliveries(hub, cid)
    assert len(found) == 15
    assert {d.contact_id for d in found} == set(ids)
    assert all(d.idempotency_key.startswith("campaign:") and d.purpose == "marketing" for d in found)
    assert found[0].content["subject"] == "Hello C 0"
    assert found[0].content["thread_key"] == f"campaign:{cid}"
    assert found[0].content["list_unsubscribe"].startswith("https://hub.example.com/")
    assert found[0].content["list_unsubscribe_post"] is True
    assert "https://hub.example.com/" in found[0].content["html"]  # tracked links and the open pixel
    assert send_all(hub) == 15
    assert sorted(envelope_recipients(smtp)) == sorted(f"c{i}@example.org" for i in range(15))
    tick(hub)
    assert campaign(hub, cid).status == CampaignStatus.COMPLETED


def test_a_runs_messages_replay_the_templates_parse_and_match_a_full_parse(hub):
    from campaigns.message_templates.rendering import contact_context, render_message
    from campaigns.tracking import replay
    from hub.models import Contact
    from campaigns.tracking.links import instrument_html_and_text

    hub.settings.public_base_url = "https://hub.example.com"
    add_contacts(hub, 6)
    html = '<p>Hi {{ contact.first_name }}! <a href="https://shop.example.com/sale?c={{ contact.id }}">Sale</a></p>'
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub, html=html, text="")])
    replay.plan.cache_clear()
    tick(hub)
    assert replay.plan.cache_info().hits >= 5  # parsed once, replayed for the others
    for d in deliveries(hub, cid):
        with hub.session() as session:
            context = contact_context(session, session.get(Contact, d.contact_id))
        rendered = render_message({"en": {"subject": "s", "html": html}}, contact_context=context, locale="en",
                                  channel="email")["html"]
        tracked, text = instrument_html_and_text(hub.settings, rendered, delivery_key=d.idempotency_key)
        assert (d.content["html"], d.content["text"]) == (tracked, text)
        assert f"c={d.contact_id}" not in d.content["html"]  # the link itself is tracked


def test_the_campaigns_sender_is_the_from_name_and_the_address_stays_the_channels(hub, smtp):
    import email
    import email.policy

    add_contacts(hub, 2)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)],
                        sender="Новости  магазина")
    tick(hub)
    assert send_all(hub) == 2
    for _meta, raw in smtp.received():
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["From"].addresses[0].display_name == "Новости магазина"
        assert message["From"].addresses[0].addr_spec == hub.channel("email").settings.from_address
    # A sender that would add a header, or an address the channel may not send as, is refused
    # before anything is saved.
    for bad in ("Shop\r\nBcc: all@example.org", "Shop <ceo@example.org>", "Shop <not an address>", "Shop <a@b"):
        with pytest.raises(ValueError):
            make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], sender=bad)
    assert campaign(hub, cid).sender == "Новости  магазина"


def test_a_campaign_sends_from_an_address_of_its_own_only_when_the_channel_allows_it(hub, smtp):
    import email
    import email.policy

    settings = hub.channel("email").settings
    channel_address = settings.from_address
    settings.sender_addresses = ["news@shop.example", "@promo.example"]
    try:
        add_contacts(hub, 2)
        segment = make_segment(hub)
        for sender in ("Shop news <News@Shop.example>", "deals@promo.example",
                       '"Магазин, акции" <sale@promo.example>'):
            make_campaign(hub, segment_id=segment, template_ids=[make_template(hub)], sender=sender, name=sender)
        tick(hub)
        assert send_all(hub) == 6
        seen = set()
        for meta, raw in smtp.received():
            message = email.message_from_bytes(raw, policy=email.policy.default)
            [mailbox] = message["From"].addresses
            seen.add((mailbox.display_name, mailbox.addr_spec))
            # Replies still reach the polled mailbox, bounces the channel's envelope sender.
            assert message["Reply-To"].addresses[0].addr_spec == channel_address
            assert meta["mail_from"] == settings.envelope_sender
        # An address alone keeps the channel's From name.
        assert seen == {("Shop news", "news@shop.example"), (settings.from_name, "deals@promo.example"),
                        ("Магазин, акции", "sale@promo.example")}

        # Another domain, or a look-alike of an allowed one, is refused with what to do about it.
        for bad in ("Shop <news@shop.example.org>", "ceo@sub.promo.example", "x@evil-promo.example"):
            with pytest.raises(service.CampaignError, match="sender_addresses"):
                make_campaign(hub, segment_id=segment, template_ids=[make_template(hub)], sender=bad, name=bad)

        # The address leaves the allowed list after the campaign was scheduled: a message already
        # queued is not sent from it, and none is queued from it any more, each with the reason.
        queued = make_campaign(hub, segment_id=segment, template_ids=[make_template(hub)],
                               sender="Shop <news@shop.example>", name="queued")
        tick(hub)
        later = make_campaign(hub, segment_id=segment, template_ids=[make_template(hub)],
                              sender="Shop <news@shop.example>", name="later")
        settings.sender_addresses = []
        before = len(smtp.received())
        tick(hub)
        send_all(hub)
        assert len(smtp.received()) == before
        failed = deliveries(hub, queued)
        assert len(failed) == 2 and {d.status for d in failed} == {DeliveryStatus.DEAD}  # permanent: no retry
        assert all("sender_addresses" in (d.last_error or "") for d in failed)
        assert deliveries(hub, later) == []
        assert [(r.status, "sender_addresses" in (r.error or "")) for r in recipients(hub, later)] == \
            [(RecipientStatus.FAILED, True)] * 2
    finally:
        settings.sender_addresses = []


def test_materialising_again_or_after_a_partial_run_adds_no_one_twice(hub):
    add_contacts(hub, 20)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    runs.dispatch_due(hub)
    # Two batches of 7, then "the process dies": the run stays materialising with 14 recipients.
    assert runs.materialise_due(hub, batch_size=7, max_batches=2) == 14
    with hub.session(read_only=True) as s:
        run = s.scalars(select(CampaignRun).where(CampaignRun.campaign_id == cid)).one()
        assert run.status == RunStatus.MATERIALISING and run.batches == 2 and run.targeted == 14
    assert runs.materialise_due(hub, batch_size=5) == 6
    assert runs.materialise_due(hub, batch_size=5) == 0
    keys = [d.idempotency_key for d in deliveries(hub, cid)]
    assert len(keys) == len(set(keys)) == 20
    assert len(recipients(hub, cid)) == 20


def test_a_contact_without_an_email_is_targeted_but_gets_nothing(hub):
    from hub.auth import SYSTEM
    from hub.contacts import create_contact

    add_contacts(hub, 2)
    with hub.session() as s, s.begin():
        create_contact(s, actor=SYSTEM, region="US", display_name="No mail", tags=["news"])
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    tick(hub)
    statuses = sorted(r.status for r in recipients(hub, cid))
    assert statuses == ["active", "active", "no_address"] or statuses == ["done", "done", "no_address"]
    assert len(deliveries(hub, cid)) == 2


# --- pause, resume, cancel, duplicate -----------------------------------------------------------

def test_pause_holds_queued_messages_and_resume_sends_each_once(hub, smtp):
    add_contacts(hub, 12)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    runs.dispatch_due(hub)
    runs.materialise_due(hub, batch_size=5, max_batches=1)
    assert act(hub, cid, "pause") == 5
    tick(hub)  # a paused campaign adds no one
    assert len(deliveries(hub, cid)) == 5
    assert send_all(hub) == 0  # and sends nothing
    with pytest.raises(service.CampaignError):
        act(hub, cid, "pause")
    assert act(hub, cid, "resume") == 5
    tick(hub)
    assert send_all(hub) == 12
    got = envelope_recipients(smtp)
    assert len(got) == len(set(got)) == 12
    tick(hub)
    assert campaign(hub, cid).status == CampaignStatus.COMPLETED


def test_cancel_cancels_what_is_queued_and_stops_the_run(hub):
    add_contacts(hub, 10)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    runs.dispatch_due(hub)
    runs.materialise_due(hub, batch_size=4, max_batches=1)
    assert act(hub, cid, "cancel") == 4
    tick(hub)
    assert {d.status for d in deliveries(hub, cid)} == {DeliveryStatus.CANCELLED}
    assert len(deliveries(hub, cid)) == 4
    assert campaign(hub, cid).status == CampaignStatus.CANCELLED
    for action in ("pause", "resume", "cancel"):
        with pytest.raises(service.CampaignError):
            act(hub, cid, action)


def test_duplicate_copies_settings_and_steps_as_a_draft_with_no_runs(hub):
    add_contacts(hub, 2)
    t1, t2 = make_template(hub), make_template(hub, name="Reminder")
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[t1, t2], delays_days=[0, 3],
                        quiet_hours_start="09:00", quiet_hours_end="20:00", frequency_cap_max=2, frequency_cap_days=7)
    tick(hub)
    # The campaign's own sending rules travel with each delivery to the worker's send-time gates.
    rules = deliveries(hub, cid)[0].rules
    assert rules["quiet_hours"] == {"start": "09:00", "end": "20:00"}
    assert rules["frequency_cap"]["max"] == 2 and rules["frequency_cap"]["days"] == 7
    with hub.session() as s, s.begin():
        copy = service.duplicate(s, campaign=s.get(service.Campaign, cid))
        copy_id = copy.id
        data = service.as_input(s, copy)
    assert data.name == "Spring sale (copy)" and [st.template_id for st in data.steps] == [t1, t2]
    assert data.steps[1].delay_minutes == 3 * 1440 and data.quiet_hours_start == "09:00"
    assert campaign(hub, copy_id).status == CampaignStatus.DRAFT
    assert run_count(hub, copy_id) == 0


def test_bad_campaigns_are_refused_and_nothing_is_written(hub):
    segment = make_segment(hub)
    template = make_template(hub)
    bad = [
        ({"segment_id": 999_999}, "segment_id"),
        ({"schedule_kind": "cron", "cron": "every day"}, "cron"),
        ({"schedule_kind": "cron", "cron": "0 10 * * *", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"schedule_kind": "at"}, "send_at"),
        ({"schedule_kind": "trigger"}, "trigger_kind"),
        ({"quiet_hours_start": "09:00"}, "quiet_hours_end"),
        ({"channel": "nope"}, "channel"),
    ]
    for extra, field in bad:
        data = service.CampaignIn.model_validate({"name": "x", "segment_id": segment, "steps": [{"template_id": template}],
                                                  **extra})
        with hub.session() as s, pytest.raises(service.CampaignError) as caught:
            service.create_campaign(s, data=data)
        assert caught.value.field == field
    with hub.session(read_only=True) as s:
        assert service.list_campaigns(s) == []


# --- recurring: downtime and DST ----------------------------------------------------------------

def test_a_recurring_campaign_missed_during_downtime_runs_once(hub, frozen_clock):
    add_contacts(hub, 3)
    frozen_clock.current = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)], schedule_kind="cron",
                        cron="0 * * * *", time_zone="Europe/Berlin")
    assert campaign(hub, cid).next_run_at == datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    frozen_clock.advance(hours=7)  # nothing ran for seven hourly times
    tick(hub)
    tick(hub)
    assert run_count(hub, cid) == 1
    assert len(deliveries(hub, cid)) == 3
    assert campaign(hub, cid).next_run_at == datetime(2026, 5, 4, 17, 0, tzinfo=UTC)
    frozen_clock.advance(hours=1)
    tick(hub)
    assert run_count(hub, cid) == 2
    assert campaign(hub, cid).status == CampaignStatus.SCHEDULED


@pytest.mark.parametrize(("zone", "cron", "day"), [
    ("Europe/Berlin", "30 2 * * *", datetime(2026, 3, 29, tzinfo=UTC)),  # 02:30 does not exist
    ("Europe/Berlin", "30 2 * * *", datetime(2026, 10, 25, tzinfo=UTC)),  # 02:30 happens twice
    ("America/New_York", "30 1 * * *", datetime(2026, 11, 1, tzinfo=UTC)),  # 01:30 happens twice
    ("America/New_York", "30 2 * * *", datetime(2026, 3, 8, tzinfo=UTC)),  # 02:30 does not exist
])
def test_a_cron_time_a_dst_change_skips_or_repeats_runs_at_most_once_that_day(hub, frozen_clock, zone, cron, day):
    from zoneinfo import ZoneInfo

    add_contacts(hub, 2)
    frozen_clock.current = day - timedelta(days=1)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)], schedule_kind="cron",
                        cron=cron, time_zone=zone)
    # Walk through the day and the next in ten-minute ticks, as a worker would; the ticks before the
    # campaign's next time, with no run left to materialise, change nothing (a run is made only when
    # next_run_at has come), so the walk steps over them to the last one before that time.
    step, end = timedelta(minutes=10), day + timedelta(days=2)
    while frozen_clock.current < end:
        due, busy = next_time_and_busy(hub, cid)
        if not busy:
            idle = (min(due or end, end) - frozen_clock.current - timedelta(microseconds=1)) // step
            frozen_clock.advance(minutes=10 * max(0, idle))
        frozen_clock.advance(minutes=10)
        tick(hub)
    with hub.session(read_only=True) as s:
        times = s.scalars(select(CampaignRun.scheduled_for).where(CampaignRun.campaign_id == cid)).all()
    local_days = [t.astimezone(ZoneInfo(zone)).date() for t in times]
    assert len(local_days) == len(set(local_days)), local_days  # never twice on one local day
    assert len(local_days) >= 2  # and it does run (the change day at most once, the days around it once each)
    keys = [d.idempotency_key for d in deliveries(hub, cid)]
    assert len(keys) == len(set(keys))


def next_time_and_busy(hub, cid: int) -> tuple[datetime | None, bool]:  # type: ignore[no-untyped-def]
    """The campaign's next time, and whether a run of it is still to be materialised."""
    with hub.session(read_only=True) as s:
        busy = s.scalar(select(CampaignRun.id).where(
            CampaignRun.campaign_id == cid,
            CampaignRun.status.in_([RunStatus.PENDING, RunStatus.MATERIALISING])).limit(1)) is not None
    return campaign(hub, cid).next_run_at, busy


def test_run_keys_name_the_local_wall_clock_time():
    first = next_cron_time("30 2 * * *", "Europe/Berlin", after=datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert first is not None
    second = next_cron_time("30 2 * * *", "Europe/Berlin", after=first)
    assert second is not None and second - first == timedelta(hours=1)  # APScheduler fires in both 02:30s
    assert run_key(first, "Europe/Berlin") == run_key(second, "Europe/Berlin") == "2026-10-25T02:30"


# --- triggered ----------------------------------------------------------------------------------

def test_an_order_completed_event_through_the_api_triggers_a_message_three_days_later(hub, client, api_key, frozen_clock):
    template = make_template(hub, subject="Thanks for your order")
    cid = make_campaign(hub, segment_id=None, template_ids=[template], schedule_kind="trigger",
                        trigger_kind="order.completed", trigger_delay_minutes=3 * 1440)
    assert campaign(hub, cid).status == CampaignStatus.RUNNING
    body = {"type": "order.completed", "source": "shop", "event_id": "o-1", "contact": {"email": "buyer@example.org"},
            "order": {"order_id": "o-1", "amount": "10.00", "currency": "EUR"}}
    answer = client.post("/api/v1/events", json=body, headers=api_key("events:write"))
    assert answer.status_code == 201, answer.text
    assert client.post("/api/v1/events", json=body, headers=api_key("events:write")).status_code == 200  # replay
    assert run_count(hub, cid) == 1
    frozen_clock.advance(days=2, hours=23)
    tick(hub)
    assert deliveries(hub, cid) == []
    frozen_clock.advance(hours=2)
    tick(hub)
    found = deliveries(hub, cid)
    assert [d.address for d in found] == ["buyer@example.org"]
    assert found[0].content["subject"] == "Thanks for your order"
    # Another kind of event triggers nothing.
    refund = client.post("/api/v1/events", json={**body, "type": "order.refunded", "event_id": "r-1"},
                         headers=api_key("events:write"))
    assert refund.status_code == 201, refund.text
    assert run_count(hub, cid) == 1


def test_a_triggered_campaign_with_a_segment_sends_only_to_contacts_in_it_when_due(hub, frozen_clock):
    vip = add_contacts(hub, 1, tag="vip", prefix="vip")[0]
    plain = add_contacts(hub, 1, tag="news", prefix="plain")[0]
    later = add_contacts(hub, 1, tag="news", prefix="later")[0]  # becomes VIP during the delay
    cid = make_campaign(hub, segment_id=make_segment(hub, tag="vip", name="VIP"), template_ids=[make_template(hub)],
                        schedule_kind="trigger", trigger_kind="order.completed", trigger_delay_minutes=60)
    with hub.session() as s, s.begin():
        for contact_id in (vip, plain, later):
            post_event(s, event=InboundEvent(channel="commerce", kind="order.completed", direction=Direction.IN,
                                             contact_id=contact_id, external_id=f"order-{contact_id}"))
    assert run_count(hub, cid) == 3  # every event gets its run; the audience is checked when it is due
    with hub.session() as s, s.begin():
        from hub.models import Contact

        s.get(Contact, later).tags = ["news", "vip"]
    frozen_clock.advance(minutes=61)
    tick(hub)
    assert sorted(d.contact_id for d in deliveries(hub, cid)) == sorted([vip, later])
    tick(hub)
    with hub.session(read_only=True) as s:  # their messages still wait in the outbox: not completed yet
        assert RunStatus.COMPLETED not in {r.status for r in s.scalars(select(CampaignRun).where(
            CampaignRun.campaign_id == cid, CampaignRun.contact_id.in_([vip, later])))}
    assert mark_sent(hub, cid) == 2
    tick(hub)
    with hub.session(read_only=True) as s:
        assert {r.status for r in s.scalars(select(CampaignRun).where(CampaignRun.campaign_id == cid))} == \
            {RunStatus.COMPLETED}


# --- drips --------------------------------------------------------------------------------------

def _reply(hub, address: str) -> None:  # type: ignore[no-untyped-def]
    with hub.session() as s, s.begin():
        post_event(s, event=InboundEvent(channel="email", kind="message", direction=Direction.IN,
                                         external_id=f"reply-{address}", text="Thanks, tell me more",
                                         identities=[IdentityRef(kind=IdentityKind.EMAIL, value=address)]))


def test_drip_step_two_goes_days_later_except_to_a_contact_who_replied(hub, frozen_clock):
    add_contacts(hub, 3)
    t1, t2 = make_template(hub, subject="Welcome"), make_template(hub, subject="Did you see?")
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[t1, t2], delays_days=[0, 2])
    tick(hub)
    assert len(deliveries(hub, cid)) == 3
    frozen_clock.advance(hours=5)
    _reply(hub, "c1@example.org")
    frozen_clock.advance(days=1)
    tick(hub)
    assert len(deliveries(hub, cid)) == 3  # not due yet
    frozen_clock.advance(days=1)
    tick(hub)
    second = [d for d in deliveries(hub, cid) if d.content["subject"] == "Did you see?"]
    assert sorted(d.address for d in second) == ["c0@example.org", "c2@example.org"]
    by_address = {r.address: r.status for r in recipients(hub, cid)}
    assert by_address["c1@example.org"] == RecipientStatus.REPLIED
    tick(hub)
    assert campaign(hub, cid).status == CampaignStatus.RUNNING  # step 2 still waits in the outbox
    mark_sent(hub, cid)
    tick(hub)
    assert campaign(hub, cid).status == CampaignStatus.COMPLETED
    # c0 opens step 2 (the tracking route names the delivery, not the step).
    step2 = next(d for d in second if d.address == "c0@example.org")
    with hub.session() as s, s.begin():
        post_event(s, event=InboundEvent(channel="email", kind="campaign.opened", direction=Direction.IN,
                                         contact_id=step2.contact_id, external_id=f"open:{step2.id}",
                                         thread_key=f"campaign:{cid}",
                                         data={"campaign_id": cid, "delivery_id": step2.id}))
    with hub.session(read_only=True) as s:
        results = campaign_results(s, campaign_id=cid)
    assert results.total.replied == 1 and results.total.opened == 1
    assert results.steps[1].targeted == 3 and results.steps[2].targeted == 2
    assert (results.steps[1].opened, results.steps[2].opened) == (0, 1)


# --- results ------------------------------------------------------------------------------------

def test_results_count_sending_and_engagement_per_campaign(hub, smtp):
    add_contacts(hub, 4)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    tick(hub)
    found = deliveries(hub, cid)
    send_all(hub)
    # Engagement as the tracking and unsubscribe routes post it.
    with hub.session() as s, s.begin():
        for d, kinds in zip(found, [("opened", "clicked"), ("opened",), ("opened", "opened"), ("unsubscribed",)]):
            for n, kind in enumerate(kinds):
                post_event(s, event=InboundEvent(
                    channel="email", kind=f"campaign.{kind}", direction=Direction.IN, contact_id=d.contact_id,
                    external_id=f"{kind}-{d.id}-{n}", thread_key=f"campaign:{cid}",
                    data={"campaign_id": cid, "step": 1}))
    with hub.session(read_only=True) as s:
        results = campaign_results(s, campaign_id=cid)
    figures = results.total
    assert (figures.targeted, figures.sent, figures.opened, figures.clicked, figures.unsubscribed) == (4, 4, 3, 1, 1)
    assert figures.failed == 0 and figures.bounced == 0 and figures.replied == 0
    assert sum(p["sent"] for p in results.series) == 4
    with hub.session(read_only=True) as s:
        assert s.scalars(select(CampaignMessage.step)).all() == [1, 1, 1, 1]


def test_the_demo_campaign_is_created_once(hub):
    from campaigns.demo import demo

    email_set_up(hub)
    first = demo(hub, seed=1)
    assert "scheduled" in first
    assert "already there" in demo(hub, seed=1)
    with hub.session(read_only=True) as s:
        found = service.list_campaigns(s)
    assert len(found) == 1 and found[0].status == CampaignStatus.SCHEDULED and found[0].cron == "0 10 * * 1"


def test_the_demo_campaign_stays_a_draft_while_email_is_not_set_up(hub):
    from campaigns.demo import demo

    assert "draft" in demo(hub, seed=1)
    with hub.session(read_only=True) as s:
        [found] = service.list_campaigns(s)
    assert found.status == CampaignStatus.DRAFT


def test_a_paused_triggered_campaign_ignores_events_until_resumed(hub):
    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted")

    def submit(n: int) -> None:
        with hub.session() as s, s.begin():
            post_event(s, event=InboundEvent(channel="forms", kind="form.submitted", direction=Direction.IN,
                                             external_id=f"form-{n}",
                                             identities=[IdentityRef(kind=IdentityKind.EMAIL, value=f"f{n}@example.org")]))

    act(hub, cid, "pause")
    submit(1)
    assert run_count(hub, cid) == 0
    act(hub, cid, "resume")
    assert campaign(hub, cid).status == CampaignStatus.RUNNING
    submit(2)
    tick(hub)
    assert [d.address for d in deliveries(hub, cid)] == ["f2@example.org"]
