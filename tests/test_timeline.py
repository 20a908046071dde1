"""The one read path's cost promises: a page loads no ORM objects, and a caller's number is parsed once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from hub.auth import SYSTEM
from hub.contacts import IdentityIn, create_contact
from hub.identities import normalize_phone
from hub.ingest import InboundEvent, ingest
from hub.models import Contact, TimelineEvent
from hub.timeline import _PAGE, lookup_caller, timeline_page

START = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)


def test_a_page_reads_rows_with_the_events_fields_and_loads_nothing_into_the_session(hub):
    with hub.session() as s, s.begin():
        contact = create_contact(s, actor=SYSTEM, region="RU", display_name="Анна",
                                 identities=[IdentityIn(kind="phone", value="+79161234567")]).id
    posted = [ingest(hub, InboundEvent(channel="sms", kind="message", direction="in", contact_id=contact,
                                       external_id=f"p{n}", occurred_at=START + timedelta(minutes=n),
                                       text=f"сообщение {n}", data={"n": n})).event.id for n in range(3)]
    orm_statements: list[bool] = []
    with hub.session(read_only=True) as s:
        event.listen(s, "do_orm_execute", lambda state: orm_statements.append(state.is_orm_statement))
        caller = lookup_caller(s, phone="8 (916) 123-45-67", region="RU")
        assert caller is not None and caller.id == contact
        # Only what a pop needs of the caller, not the contact's 13 columns (two of them JSON).
        assert tuple(caller._fields) == ("id", "display_name", "merged_into")
        page = timeline_page(s, contact_id=contact, limit=2)
        # The page's events are plain rows, and so is the caller's contact.
        assert not [o for o in s.identity_map.values() if isinstance(o, TimelineEvent)]
        assert not list(s.identity_map.values())
        # Plain Core statements: Session.execute skips the ORM's compile and loading steps for them (on
        # PostgreSQL they do not go through Session.execute at all: see the test below).
        assert True not in orm_statements
        assert orm_statements == ([] if s.get_bind().dialect.name == "postgresql" else [False, False])
        assert [e.id for e in page.items] == posted[::-1][:2]
        newest = page.items[0]
        assert (newest.text, newest.data, newest.channel, newest.direction) == ("сообщение 2", {"n": 2}, "sms", "in")
        assert newest.occurred_at == START + timedelta(minutes=2)
        rest = timeline_page(s, contact_id=contact, limit=2, cursor=page.next_cursor)
        assert [e.id for e in rest.items] == [posted[0]] and rest.next_cursor is None


def test_phone_normalisation_is_cached_per_process_and_bounded():
    normalize_phone.cache_clear()
    assert normalize_phone("8 (916) 765-43-21", "RU") == "+79167654321"
    assert normalize_phone("8 (916) 765-43-21", "RU") == "+79167654321"
    assert normalize_phone("+7 916 765-43-21", "RU") == "+79167654321"  # the text as written is the key
    assert normalize_phone("+7 916 765-43-21", "GB") == "+79167654321"  # and so is the region
    info = normalize_phone.cache_info()
    assert (info.hits, info.misses) == (1, 3) and info.maxsize == 8192


def test_a_merged_callers_lookup_gives_the_surviving_contact(hub):
    with hub.session() as s, s.begin():
        kept = create_contact(s, actor=SYSTEM, region="RU", display_name="Анна").id
        gone = create_contact(s, actor=SYSTEM, region="RU", display_name="Анна (дубль)",
                              identities=[IdentityIn(kind="phone", value="+79161112233")]).id
        s.get(Contact, gone).merged_into = kept
    with hub.session(read_only=True) as s:
        caller = lookup_caller(s, phone="+7 916 111-22-33", region="RU")
        assert caller is not None and (caller.id, caller.display_name, caller.merged_into) == (kept, "Анна", None)
        assert lookup_caller(s, phone="+7 916 000-00-00", region="RU") is None


def test_on_postgresql_the_pops_reads_run_on_the_drivers_cursor_with_the_same_rows(hub):
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("the driver-cursor path is PostgreSQL's; SQLite runs the statements through SQLAlchemy")
    with hub.session() as s, s.begin():
        contact = create_contact(s, actor=SYSTEM, region="RU", display_name="Анна",
                                 identities=[IdentityIn(kind="phone", value="+79161234567")]).id
    for n in range(3):
        ingest(hub, InboundEvent(channel="sms", kind="message", direction="in", contact_id=contact, external_id=f"d{n}",
                                 occurred_at=START + timedelta(minutes=n), text=f"сообщение {n}", data={"n": [n]}))
    executed: list[str] = []  # through SQLAlchemy's execution (compile cache, execution context, result)
    on_cursor: list[str] = []  # every statement sent, whichever way
    def through_sqlalchemy(_conn, clause, *_args):  # type: ignore[no-untyped-def]
        executed.append(str(clause))

    def sent(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        on_cursor.append(statement)

    with hub.session(read_only=True) as s:
        connection = s.connection()
        event.listen(connection, "before_execute", through_sqlalchemy)
        event.listen(hub.db.engine, "after_cursor_execute", sent)
        try:
            caller = lookup_caller(s, phone="8 (916) 123-45-67", region="RU")
            page = timeline_page(s, contact_id=contact, limit=2)
            rest = timeline_page(s, contact_id=contact, limit=2, cursor=page.next_cursor)  # by keyset
        finally:
            event.remove(hub.db.engine, "after_cursor_execute", sent)
            event.remove(connection, "before_execute", through_sqlalchemy)
        assert executed == [] and len(on_cursor) == 3  # the engine's cursor listeners still hear all three
        assert caller is not None and caller.id == contact and caller.display_name == "Анна"
        # The same values SQLAlchemy's own execution gives, the types' result processors applied.
        expected = s.execute(_PAGE, {"contact_id": contact, "limit": 3}).all()
        assert [tuple(e) for e in page.items] == [tuple(e) for e in expected[:2]]
        assert page.items[0].occurred_at.utcoffset() == timedelta(0) and page.items[0].data == {"n": [2]}
        assert [tuple(e) for e in rest.items] == [tuple(expected[2])] and rest.next_cursor is None
        # A driver error is SQLAlchemy's error, as from Session.execute.
        with pytest.raises(DBAPIError):
            timeline_page(s, contact_id="not a number", limit=2)  # type: ignore[arg-type]
