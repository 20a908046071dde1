"""A run is not "Completed" while its messages wait, and the campaign's page says why they wait,
counted by reason — with the real sending rules deciding (hub.sending's gates through the worker)."""

from __future__ import annotations

from datetime import datetime, timezone

from campaigns.models import Campaign, CampaignRun
from campaigns.waiting import waiting
from hub.models import ConsentRecord, Role
from hub.worker import Worker
from tests.campaigns.helpers import (
    add_contacts,
    deliveries,
    email_set_up,
    make_campaign,
    make_segment,
    make_template,
    smtp,  # noqa: F401 - fixture
    tick,
)
from tests.channels.email.conftest import configure
from tests.web.conftest import login, web  # noqa: F401 - fixture


def reasons(hub, campaign_id: int) -> tuple[dict[str, int], dict[str, int], list]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        waits, skips = waiting(s, hub, campaign=s.get(Campaign, campaign_id))
    return {w.key: w.count for w in waits}, {w.key: w.count for w in skips}, waits


def statuses(hub, campaign_id: int) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        runs = s.query(CampaignRun).filter(CampaignRun.campaign_id == campaign_id).all()
        return s.get(Campaign, campaign_id).status, [r.status for r in runs]


def test_messages_held_by_a_channel_that_is_not_set_up_keep_the_run_open_and_say_so(hub, web):
    email_set_up(hub)
    add_contacts(hub, 3)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    configure(hub, smtp_host="")  # the administrator took the settings away meanwhile
    tick(hub)
    tick(hub)
    assert [d.status for d in deliveries(hub, cid)] == ["queued"] * 3
    assert statuses(hub, cid) == ("running", ["sending"])  # not "completed" with 3 messages waiting
    counts, _skips, _ = reasons(hub, cid)
    assert counts == {"channel": 3}
    login(web, hub, "mk@example.com", role=Role.MARKETER)
    page = web.get(f"/campaigns/{cid}").text
    assert 'id="campaign-waiting"' in page and "the Email channel is not set up" in page and "[channels.email]" in page


def test_quiet_hours_and_consent_are_counted_apart_and_the_run_completes_when_all_went(hub, smtp, frozen_clock, web):  # noqa: F811
    frozen_clock.current = datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)  # night in UTC and in Moscow
    ids = add_contacts(hub, 4)
    with hub.session() as s, s.begin():
        s.add(ConsentRecord(contact_id=ids[0], channel="email", status="withdrawn", occurred_at=frozen_clock.current))
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)],
                        quiet_hours_start="09:00", quiet_hours_end="21:00")
    tick(hub)
    Worker(hub).tick()
    tick(hub)
    counts, skips, waits = reasons(hub, cid)
    assert counts == {"quiet_hours": 3} and skips == {"consent": 1}
    assert waits[0].params["start"] == "09:00" and waits[0].params["first"]
    assert statuses(hub, cid) == ("running", ["sending"])
    login(web, hub, "mk@example.com", role=Role.MARKETER, locale="ru")
    page = web.get(f"/campaigns/{cid}").text
    assert "тихие часы" in page.lower() and "09:00" in page and "нет согласия" in page.lower()

    frozen_clock.current = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)  # 12:00 UTC: inside the window
    Worker(hub).tick()
    tick(hub)
    assert reasons(hub, cid)[0] == {}
    assert statuses(hub, cid) == ("completed", ["completed"])
    assert len(smtp.received()) == 3


def test_a_frequency_cap_holds_the_second_campaign_and_says_so(hub, smtp, frozen_clock):  # noqa: F811
    frozen_clock.current = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
    add_contacts(hub, 3)
    segment = make_segment(hub)
    first = make_campaign(hub, segment_id=segment, template_ids=[make_template(hub)], name="First")
    tick(hub)
    Worker(hub).tick()
    assert len(smtp.received()) == 3
    second = make_campaign(hub, segment_id=segment, template_ids=[make_template(hub)], name="Second",
                           frequency_cap_max=1, frequency_cap_days=7)
    tick(hub)
    Worker(hub).tick()
    tick(hub)
    counts, _skips, waits = reasons(hub, second)
    assert counts == {"frequency_cap": 3} and waits[0].params["first"]
    assert statuses(hub, second) == ("running", ["sending"]) and statuses(hub, first)[0] == "completed"
    assert len(smtp.received()) == 3


def test_due_messages_wait_for_the_worker_or_for_the_rate_limit(hub):
    email_set_up(hub)
    add_contacts(hub, 2)
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    tick(hub)
    assert reasons(hub, cid)[0] == {"queued": 2}
    hub.settings.sending.rate_per_second["email"] = 0.5
    try:
        assert reasons(hub, cid)[0] == {"rate_limit": 2}
    finally:
        del hub.settings.sending.rate_per_second["email"]
    with hub.session() as s, s.begin():
        from campaigns import service

        service.pause(s, campaign=s.get(Campaign, cid))
    assert reasons(hub, cid)[0] == {"paused": 2}


def test_a_bounced_address_is_skipped_once_at_send_time_and_counted_as_suppressed(hub, smtp):  # noqa: F811
    """The email channel's own list (a hard bounce) is a send gate the worker runs with the hub's: the
    message is skipped before any SMTP conversation, and the run completes."""
    from channels.email.suppression import suppress

    add_contacts(hub, 3)
    with hub.session() as s, s.begin():
        suppress(s, address="c1@example.org", reason="hard_bounce", source="test")
    cid = make_campaign(hub, segment_id=make_segment(hub), template_ids=[make_template(hub)])
    tick(hub)
    Worker(hub).tick()
    tick(hub)
    by_address = {d.address: d for d in deliveries(hub, cid)}
    assert by_address["c1@example.org"].status == "cancelled"
    assert "is suppressed (hard_bounce since" in by_address["c1@example.org"].last_error
    assert sorted(r for meta, _ in smtp.received() for r in meta["rcpt_tos"]) == ["c0@example.org", "c2@example.org"]
    assert reasons(hub, cid)[1] == {"suppressed": 1}
    assert statuses(hub, cid) == ("completed", ["completed"])
