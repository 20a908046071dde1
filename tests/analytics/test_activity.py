"""Channel volumes, team activity and reply times against hand-computed figures, on both stores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from analytics import activity
from analytics.compute import Options, recompute_scores
from hub.auth import create_user
from hub.ingest import InboundEvent, ingest
from hub.models import Role
from tests.analytics.factories import customer

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
MAY, JUN = 2026 * 12 + 4, 2026 * 12 + 5


def event(hub, cid, n, at, channel, direction, actor=None):
    ingest(hub, InboundEvent(channel=channel, kind="message", direction=direction, contact_id=cid,
                             external_id=f"act:{n}", occurred_at=at, actor_user_id=actor))


def test_volumes_team_and_reply_times(hub):
    with hub.session() as s, s.begin():
        anna = create_user(s, email="anna@example.com", password="x" * 12, role=Role.AGENT, display_name="Anna").id
    a, b = customer(hub, "A"), customer(hub, "B")
    may = datetime(2026, 5, 4, 9, 0, tzinfo=timezone.utc)
    # A writes twice by email, Anna answers 2 h after the second; then an SMS answered after 30 min.
    event(hub, a, 1, may, "email", "in")
    event(hub, a, 2, may + timedelta(hours=1), "email", "in")
    event(hub, a, 3, may + timedelta(hours=3), "email", "out", anna)
    event(hub, a, 4, may + timedelta(hours=4), "sms", "in")
    event(hub, a, 5, may + timedelta(hours=4, minutes=30), "sms", "out", anna)
    # B in June: an email answered by an automatic message (no agent) is not a reply; one unanswered.
    event(hub, b, 6, NOW - timedelta(days=3), "email", "in")
    event(hub, b, 7, NOW - timedelta(days=3, hours=-1), "email", "out")
    event(hub, b, 8, NOW - timedelta(days=1), "email", "in")
    with hub.session() as s, s.begin():
        recompute_scores(s, options=Options(), now=NOW)
    with hub.session(read_only=True) as s:
        span, rows = activity.channels(s, now=NOW, months=2)
        _, team = activity.team(s, now=NOW, months=2)
        _, replies = activity.responses(s, now=NOW, months=2)
    assert span == [MAY, JUN]
    volume = {r.channel: (r.incoming, r.outgoing) for r in rows}
    assert volume == {"email": ({MAY: 2, JUN: 2}, {MAY: 1, JUN: 1}), "sms": ({MAY: 1}, {MAY: 1})}
    assert [(t.name, t.by_month) for t in team] == [("Anna", {MAY: 2})]
    assert replies == {"email": {MAY: (1, 2.0)}, "sms": {MAY: (1, 0.5)}}
