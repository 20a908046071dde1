"""Alembic environment: the hub's models, its settings' URL, batch mode for SQLite's ALTERs."""

from __future__ import annotations

from alembic import context
from hub.db import make_engine
from hub.schema import metadata
from hub.settings import get_settings

config = context.config
target_metadata = metadata()


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(get_settings())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
