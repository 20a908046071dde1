"""NPS and CSAT by month, channel, RFM cell and segment, against hand-computed figures."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from analytics import processes
from analytics.compute import Options, recompute_scores
from campaigns.segments.compiler import contact_ids_query
from tests.analytics.factories import customer, order, survey_answer

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
MAY, JUN = 2026 * 12 + 4, 2026 * 12 + 5


def test_nps_and_csat_by_month_channel_cell_and_segment(hub):
    buyer, other, third = customer(hub, "Buyer", tags=["vip"]), customer(hub, "Other"), customer(hub, "Third")
    order(hub, buyer, NOW - timedelta(days=3), "100.00", "B1")
    may, june = datetime(2026, 5, 10, tzinfo=timezone.utc), datetime(2026, 6, 2, tzinfo=timezone.utc)
    sid = survey_answer(hub, buyer, channel="email", at=may, nps=10, csat=5)
    survey_answer(hub, other, channel="email", at=may, nps=3, survey_id=sid)
    survey_answer(hub, third, channel="sms", at=june, nps=8, csat=2, survey_id=sid)
    survey_answer(hub, other, channel="sms", at=june, nps=9, csat=4, survey_id=sid)
    survey_answer(hub, third, channel="sms", at=NOW - timedelta(days=400), nps=0, survey_id=sid)  # out of the period
    with hub.session() as s, s.begin():
        recompute_scores(s, options=Options(), now=NOW)
    with hub.session(read_only=True) as s:
        data = processes.satisfaction(s, since=NOW - timedelta(days=90), until=NOW)
        vip = processes.satisfaction(s, since=NOW - timedelta(days=90), until=NOW, contact_ids=contact_ids_query(
            {"type": "and", "conditions": [{"type": "tag", "op": "has", "tag": "vip"}]}, now=NOW).order_by(None))
    # May: 10 (promoter), 3 (detractor) → NPS 0; CSAT one answer of 5 → 100 %.
    # June: 8 (passive), 9 (promoter) → NPS 50; CSAT 2 and 4 → 50 %.
    months = {x.key[0]: (x.answers, x.nps, x.csat) for x in data.by_month}
    assert months == {MAY: (2, 0.0, 100.0), JUN: (2, 50.0, 50.0)}
    channels = {x.key[0]: (x.answers, x.nps, x.csat) for x in data.by_channel}
    assert channels == {"email": (2, 0.0, 100.0), "sms": (2, 50.0, 50.0)}
    cells = {x.key[0]: x.answers for x in data.by_cell}
    assert cells == {"": 3, "lost": 1}  # the only customer is alone in the ranking: every score 1
    assert (data.total.answers, data.total.nps, data.total.csat) == (4, 25.0, 66.7)
    assert (vip.total.answers, vip.total.nps) == (1, 100.0)
