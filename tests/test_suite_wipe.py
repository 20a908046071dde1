"""The wipe after every store test (tests/conftest.py `_wipe`): on both stores, every table empty and
every sequence back at 1; on PostgreSQL, a table left crowded is truncated, not only deleted from."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from hub.auth import SCOPES, create_api_key
from hub.models import ApiKey
from tests.conftest import _wipe


def _new_key_id(hub) -> int:  # type: ignore[no-untyped-def]
    with hub.session() as session, session.begin():
        key, _ = create_api_key(session, name="wipe", scopes=list(SCOPES))
        session.flush()
        return key.id


def test_a_wipe_empties_every_table_and_starts_every_sequence_at_1_again(hub):
    for _ in range(3):
        first = _new_key_id(hub)
    assert first == 3
    _wipe(hub.db)
    with hub.db.engine.connect() as conn:
        left = {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in SQLModel.metadata.sorted_tables}
    assert not any(left.values()), {name: n for name, n in left.items() if n}
    assert _new_key_id(hub) == 1


def test_a_crowded_table_is_truncated_on_postgresql(hub):
    if hub.db.engine.dialect.name != "postgresql":
        return  # SQLite has no files per table to renew: deleting is all there is
    now = datetime.now(timezone.utc)
    rows = [{"name": "k", "prefix": f"p{i}", "key_hash": f"h{i}", "scopes": [], "created_at": now} for i in range(2_001)]
    file_of = "SELECT pg_relation_filenode(:name)"
    with hub.db.engine.begin() as conn:
        conn.execute(ApiKey.__table__.insert(), rows)
        before = conn.execute(text(file_of), {"name": "api_key"}).scalar_one()
        other_before = conn.execute(text(file_of), {"name": "contact"}).scalar_one()
    _wipe(hub.db)
    with hub.db.engine.connect() as conn:
        assert conn.execute(text(file_of), {"name": "api_key"}).scalar_one() != before  # truncated: new files
        assert conn.execute(text(file_of), {"name": "contact"}).scalar_one() == other_before  # only deleted from
        assert conn.execute(select(func.count()).select_from(ApiKey.__table__)).scalar_one() == 0
