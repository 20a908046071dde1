"""The benchmarks' PostgreSQL databases: each run starts from an empty one, migrated as `hub migrate` does."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def fresh_database(url: str) -> None:
    """Drop and create the database named by `url`, then migrate it to the head revision (the hub's
    processes refuse a schema that is behind, and a migrated schema is what installations run)."""
    from hub.migrate import upgrade

    url = _admin(url, 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', 'CREATE DATABASE "{name}"')
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()


def drop_database(url: str) -> None:
    """Drop the database named by `url` (a bench's scratch database)."""
    _admin(url, 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(url: str, *statements: str) -> str:
    """Run `statements` ("{name}" is the database's name) on the server's postgres database; the
    psycopg URL of `url`."""
    from hub.settings import load_settings

    url = load_settings(database_url=url).sqlalchemy_url  # postgresql:// → the psycopg driver
    base, name = url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement.format(name=name)))
    admin.dispose()
    return url
