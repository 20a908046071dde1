"""The benchmarks' PostgreSQL databases: each run starts from an empty one, migrated as `hub migrate` does."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def fresh_database(url: str) -> None:
    """Drop and create the database named by `url`, then migrate it to the head revision (the hub's
    processes refuse a schema that is behind, and a migrated schema is what installations run)."""
    from hub.migrate import upgrade
    from hub.settings import load_settings

    url = load_settings(database_url=url).sqlalchemy_url  # postgresql:// → the psycopg driver
    base, name = url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
