"""An account's timeline merges its contacts' timelines newest first, in keyset pages with the same
filters as a contact's (on PostgreSQL each contact's page is read on its own and the pages merged)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.accounts import account_timeline, create_account
from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.ingest import InboundEvent, ingest
from hub.timeline import InvalidCursor, TimelineFilter

START = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)


def test_pages_walk_every_members_events_newest_first_with_filters(hub):
    with hub.session() as s, s.begin():
        account = create_account(s, actor=SYSTEM, name="Ромашка").id
        members = [create_contact(s, actor=SYSTEM, region="RU", display_name=f"Член {i}", account_id=account).id
                   for i in range(3)]
        outsider = create_contact(s, actor=SYSTEM, region="RU", display_name="Чужой").id
    expected = []
    for n in range(12):  # interleaved across the members; two share each timestamp (ties break on id)
        contact = members[n % 3]
        channel = "email" if n % 2 else "sms"
        posted = ingest(hub, InboundEvent(channel=channel, kind="message", direction="in", contact_id=contact,
                                          external_id=f"a{n}", occurred_at=START + timedelta(hours=n // 2),
                                          text=f"n{n}"))
        expected.append((START + timedelta(hours=n // 2), posted.event.id, channel))
    ingest(hub, InboundEvent(channel="email", kind="message", direction="in", contact_id=outsider,
                             external_id="x", occurred_at=START + timedelta(days=1)))
    newest_first = sorted(expected, reverse=True)

    def walk(filters: TimelineFilter = TimelineFilter()) -> list[int]:
        seen, cursor = [], None
        with hub.session(read_only=True) as s:
            while True:
                page = account_timeline(s, account_id=account, limit=5, cursor=cursor, filters=filters)
                assert len(page.items) <= 5
                seen += [e.id for e in page.items]
                if page.next_cursor is None:
                    return seen
                cursor = page.next_cursor

    assert walk() == [eid for _at, eid, _ch in newest_first]
    assert walk(TimelineFilter(channels=frozenset({"email"}))) == [eid for _at, eid, ch in newest_first if ch == "email"]
    until = START + timedelta(hours=3)
    assert walk(TimelineFilter(until=until)) == [eid for at, eid, _ch in newest_first if at < until]
    with hub.session(read_only=True) as s, pytest.raises(InvalidCursor):
        account_timeline(s, account_id=account, cursor="not-a-cursor")
