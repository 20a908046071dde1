"""Schema migrations (Alembic) and the start-up check that refuses a schema that is behind."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from hub.db import MIGRATIONS_DIR


class SchemaBehind(RuntimeError):
    """The database is not at the code's migration head."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (both SQLite and PostgreSQL)."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def check_current(engine: Engine) -> None:
    """Raise SchemaBehind, saying what to run, when the database is not at head."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        where = "an empty database" if current is None else f"revision {current}"
        raise SchemaBehind(
            f"The database is at {where} but this version of the hub needs {head}. "
            "Run `hub migrate` (it applies the pending migrations), then start again."
        )
