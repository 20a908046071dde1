"""Steps a plug-in's revisions use to take over tables that an older core revision created.

Until 2026-12-07 the core's chain created the tables of forms, meetings, campaigns, surveys and key
accounts (revisions 0002 and 0004–0006). Each of those plug-ins now owns its tables in a branch of
its own (hub.migrate), whose revisions create a table only when it is absent and add only the
columns it lacks: a new database gets the tables from the plug-in, one the old chain built keeps
them and gains what it missed, and both end at the same schema (tests/test_migrations.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def has_table(name: str) -> bool:
    """Whether the database being migrated has the table `name`."""
    return sa.inspect(op.get_bind()).has_table(name)


def add_missing_columns(table: str, *columns: sa.Column) -> None:
    """Add those of `columns` that `table` lacks (all of them on a new database)."""
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}
    missing = [column for column in columns if column.name not in present]
    if missing:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in missing:
                batch_op.add_column(column)


def drop_tables(*names: str) -> None:
    """Drop the tables (children first), with their indexes: a plug-in's branch taken to its base."""
    for name in names:
        if has_table(name):
            op.drop_table(name)
