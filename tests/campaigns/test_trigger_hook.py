"""The campaigns' trigger hook asks for running triggered campaigns once per transaction, not once per
event, and never keeps the answer past it: a campaign started or paused elsewhere, or earlier in the
same transaction, is seen by the next event."""

from __future__ import annotations

from sqlalchemy import event

from campaigns import service
from campaigns.models import Campaign
from hub.ingest import IdentityRef, InboundEvent, post_event
from hub.models import Direction, IdentityKind
from tests.campaigns.helpers import act, email_set_up, make_campaign, make_template, run_count


def _form(n: int) -> InboundEvent:
    return InboundEvent(channel="forms", kind="form.submitted", direction=Direction.IN, external_id=f"form-{n}",
                        identities=[IdentityRef(kind=IdentityKind.EMAIL, value=f"f{n}@example.org")])


def test_events_of_one_transaction_ask_for_triggered_campaigns_once(hub):
    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted")
    asked = []

    def count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM campaign" in statement and "trigger_kind" in statement:
            asked.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", count)
    try:
        with hub.session() as s, s.begin():
            for n in range(3):
                post_event(s, event=_form(n))
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", count)
    # One read of the kinds, one of the matching campaigns (ids, then rows) per event that matched.
    kinds_reads = [q for q in asked if "DISTINCT" in q]
    assert len(kinds_reads) == 1
    assert run_count(hub, cid) == 3


def test_a_campaign_started_or_paused_between_transactions_is_seen_by_the_next_event(hub):
    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted", schedule=False)
    email_set_up(hub)
    with hub.session() as s:  # one session across transactions, as a worker holds one
        with s.begin():
            post_event(s, event=_form(1))
        assert run_count(hub, cid) == 0
        with hub.session() as other, other.begin():  # started by another session (another process alike)
            service.schedule(other, campaign=other.get(Campaign, cid))
        with s.begin():
            post_event(s, event=_form(2))
        assert run_count(hub, cid) == 1
        act(hub, cid, "pause")
        with s.begin():
            post_event(s, event=_form(3))
        assert run_count(hub, cid) == 1


def test_a_campaign_started_earlier_in_the_same_transaction_is_seen(hub):
    cid = make_campaign(hub, segment_id=None, template_ids=[make_template(hub)], schedule_kind="trigger",
                        trigger_kind="form.submitted", schedule=False)
    email_set_up(hub)
    with hub.session() as s, s.begin():
        post_event(s, event=_form(1))  # reads the kinds: none yet
        service.schedule(s, campaign=s.get(Campaign, cid))
        post_event(s, event=_form(2))
    assert run_count(hub, cid) == 1
