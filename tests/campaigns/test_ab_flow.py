"""A/B tests end to end on both stores, with an injected clock: the split written before anything is
sent and stable when materialisation runs again, the winner picked after the wait and sent to the
rest (only it, once each, under the campaign's sending rules), and the tests that cannot tell."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import update

from campaigns import runs
from campaigns.ab import decide
from campaigns.ab.results import ab_results
from campaigns.ab.split import assign
from campaigns.models import Campaign, CampaignRecipient, CampaignRun, CampaignStatus, RecipientStatus, RunStatus
from hub.auth import SYSTEM
from tests.campaigns.ab_helpers import ab_campaign, by_variant, click, subjects
from tests.campaigns.helpers import act, campaign, deliveries, mark_sent, recipients, tick


def start(frozen_clock) -> None:  # type: ignore[no-untyped-def]
    frozen_clock.current = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def test_the_split_is_recorded_per_recipient_before_sending_and_a_rerun_changes_nothing(hub, frozen_clock):
    start(frozen_clock)
    cid = ab_campaign(hub, 60, share=50, variants=[{"subject": "Subject A"}, {"subject": "Subject B"},
                                                    {"subject": "Subject C"}])
    runs.dispatch_due(hub)
    runs.materialise_due(hub, batch_size=7, max_batches=3)  # stopped part-way, like a crash between batches
    first = {r.contact_id: (r.ab_role, r.variant) for r in recipients(hub, cid)}
    assert len(first) == 21
    # Every recipient row already says what its contact gets; only the test share has a message queued.
    queued = subjects(hub, cid)
    for contact, (role, label) in first.items():
        assert (role, label) == (("test", assign(42, contact, share_percent=50, labels="ABC")) if role == "test"
                                 else ("rest", None))
        assert queued.get(contact) == ([f"Subject {label}"] if role == "test" else None)
    # A second materialiser starts the run again from the top: nobody is drawn or queued twice.
    with hub.session() as s, s.begin():
        s.execute(update(CampaignRun).where(CampaignRun.campaign_id == cid).values(status=RunStatus.MATERIALISING))
    runs.materialise_due(hub, batch_size=7)
    runs.materialise_due(hub, batch_size=7)
    after = {r.contact_id: (r.ab_role, r.variant) for r in recipients(hub, cid)}
    assert len(after) == 60 and all(after[c] == first[c] for c in first)
    assert all(len(s) == 1 for s in subjects(hub, cid).values())
    groups = by_variant(hub, cid)
    assert sum(len(v) for k, v in groups.items() if k) == len(deliveries(hub, cid))
    assert {r.status for r in recipients(hub, cid) if r.ab_role == "rest"} == {RecipientStatus.HELD}


def test_a_clear_winner_goes_to_the_rest_and_only_it(hub, frozen_clock):
    start(frozen_clock)
    cid = ab_campaign(hub, 240, share=50, metric="click", wait=60, quiet_hours_start="08:00",
                      quiet_hours_end="21:00")
    tick(hub)
    groups = by_variant(hub, cid)
    assert len(groups["A"]) >= 30 and len(groups["B"]) >= 30 and len(groups[None]) > 80
    mark_sent(hub, cid)
    assert click(hub, cid, set(groups["B"][: len(groups["B"]) // 2]) | set(groups["A"][:2])) > 0
    frozen_clock.advance(minutes=59)
    tick(hub)
    assert campaign(hub, cid).ab_decided_at is None  # the wait is not over
    assert {r.status for r in recipients(hub, cid) if r.ab_role == "rest"} == {RecipientStatus.HELD}
    frozen_clock.advance(minutes=2)
    tick(hub)
    decided = campaign(hub, cid)
    assert (decided.ab_outcome, decided.ab_winner, decided.ab_winner_by) == ("winner", "B", "test")
    assert decided.ab_p_value is not None and decided.ab_p_value < 0.001
    # The rest got B — only B, once each — through the outbox with the campaign's sending rules.
    sent = subjects(hub, cid)
    assert all(sent[c] == ["Subject B"] for c in groups[None])
    assert all(sent[c] == [f"Subject {label}"] for label in "AB" for c in groups[label])
    rest_ids = set(groups[None])
    for d in deliveries(hub, cid):
        assert d.purpose == "marketing"
        if d.contact_id in rest_ids:
            assert d.rules == {"quiet_hours": {"start": "08:00", "end": "21:00"}}
    assert {r.variant for r in recipients(hub, cid) if r.ab_role == "rest"} == {"B"}
    # Engagement after the decision does not move the test's figures; it shows on the rest's line.
    with hub.session(read_only=True) as s:
        before = ab_results(s, campaign=s.get(Campaign, cid))
    mark_sent(hub, cid)
    frozen_clock.advance(minutes=5)
    click(hub, cid, {groups["A"][-1], groups[None][0]})
    with hub.session(read_only=True) as s:
        found = ab_results(s, campaign=s.get(Campaign, cid))
    assert [f.clicked for f in found.variants] == [f.clicked for f in before.variants]
    assert found.variants[1].clicked == len(groups["B"]) // 2 and found.variants[0].clicked == 2
    assert found.rest.clicked == 1 and found.rest.sent == len(groups[None])
    tick(hub)
    assert campaign(hub, cid).status == CampaignStatus.COMPLETED


def test_too_few_recipients_says_so_and_picks_nothing_until_the_default(hub, frozen_clock):
    start(frozen_clock)
    cid = ab_campaign(hub, 40, share=50, metric="click", wait=60)
    tick(hub)
    groups = by_variant(hub, cid)
    mark_sent(hub, cid)
    click(hub, cid, set(groups["B"]))  # B looks far better, on a handful of recipients
    frozen_clock.advance(minutes=61)
    tick(hub)
    found = campaign(hub, cid)
    assert (found.ab_outcome, found.ab_winner) == ("too_few", None)
    assert {r.status for r in recipients(hub, cid) if r.ab_role == "rest"} == {RecipientStatus.HELD}
    assert found.status == CampaignStatus.RUNNING  # the rest waits for the marketer
    frozen_clock.advance(hours=23)
    tick(hub)
    assert campaign(hub, cid).ab_winner is None
    frozen_clock.advance(hours=1, minutes=1)
    tick(hub)  # nobody chose within a day: the control goes
    found = campaign(hub, cid)
    assert (found.ab_outcome, found.ab_winner, found.ab_winner_by) == ("too_few", "A", "default")
    sent = subjects(hub, cid)
    assert all(sent[c] == ["Subject A"] for c in groups[None])


def test_no_significant_difference_waits_for_the_marketers_choice_and_a_pause_holds_the_rest(hub, frozen_clock):
    start(frozen_clock)
    cid = ab_campaign(hub, 240, share=50, metric="click", wait=60)
    tick(hub)
    groups = by_variant(hub, cid)
    mark_sent(hub, cid)
    click(hub, cid, set(groups["A"][::3]) | set(groups["B"][::3]))  # the same rate in both
    frozen_clock.advance(minutes=61)
    tick(hub)
    found = campaign(hub, cid)
    assert found.ab_outcome == "no_difference" and found.ab_winner is None and found.ab_p_value > 0.05
    act(hub, cid, "pause")
    with hub.session() as s, s.begin():
        decide.choose(s, campaign=s.get(Campaign, cid), label="B", actor=SYSTEM)
    tick(hub)
    assert all(c not in subjects(hub, cid) for c in groups[None])  # paused: the rest still waits
    act(hub, cid, "resume")
    tick(hub)
    found = campaign(hub, cid)
    assert (found.ab_winner, found.ab_winner_by) == ("B", "marketer")
    sent = subjects(hub, cid)
    assert all(sent[c] == ["Subject B"] for c in groups[None])
    with hub.session(read_only=True) as s:
        held = s.query(CampaignRecipient).filter(CampaignRecipient.status == RecipientStatus.HELD).count()
    assert held == 0


def test_variants_with_their_own_template_and_send_time(hub, frozen_clock):
    from tests.campaigns.helpers import email_set_up, make_template

    start(frozen_clock)  # 09:00 UTC = 12:00 in Moscow
    email_set_up(hub)
    cid = ab_campaign(hub, 30, share=90, wait=120, schedule=False, time_zone="Europe/Moscow",
                      variants=[{}, {"send_time": "18:30"}])
    other = make_template(hub, subject="Other {{ contact.name }}")
    with hub.session() as s, s.begin():
        from campaigns import service

        c = s.get(Campaign, cid)
        data = service.as_input(s, c)
        data.ab_test.variants[0].template_id = other  # type: ignore[union-attr]
        service.update_campaign(s, campaign=c, data=data)
        service.schedule(s, campaign=c)
    tick(hub)
    groups = by_variant(hub, cid)
    late = datetime(2026, 3, 2, 15, 30, tzinfo=timezone.utc)  # 18:30 Moscow
    for d in deliveries(hub, cid):
        if d.contact_id in groups["A"]:
            assert d.content["subject"].startswith("Other ") and d.send_after <= frozen_clock.current
        else:
            assert d.content["subject"].startswith("Hello ") and d.send_after == late
    # The wait counts from the last variant's send time.
    assert campaign(hub, cid).ab_decide_at == datetime(2026, 3, 2, 17, 30, tzinfo=timezone.utc)


def test_a_pause_before_the_decision_holds_it_and_the_wait_restarts_on_resume(hub, frozen_clock):
    from datetime import timedelta

    start(frozen_clock)
    cid = ab_campaign(hub, 20, share=50, wait=60)
    tick(hub)
    assert campaign(hub, cid).ab_decide_at == frozen_clock.current + timedelta(minutes=60)
    act(hub, cid, "pause")
    frozen_clock.advance(minutes=90)
    tick(hub)
    assert campaign(hub, cid).ab_decided_at is None  # its messages were held: nothing to judge yet
    act(hub, cid, "resume")
    assert campaign(hub, cid).ab_decide_at == frozen_clock.current + timedelta(minutes=60)
    frozen_clock.advance(minutes=61)
    tick(hub)
    assert campaign(hub, cid).ab_outcome == "too_few"
