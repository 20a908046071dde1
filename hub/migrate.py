"""Schema migrations (Alembic) and the start-up check that refuses a schema that is behind.

The core's revisions live in `migrations/versions`. A plug-in that owns tables ships its own
revisions in a folder of its package and names that package under the entry-point group
`hub.migrations` (`inbox = "inbox.migrations"`): its chain is a branch of its own
(`branch_labels = ("inbox",)`, `down_revision = None`, `depends_on` = the core revision its tables
need), so installing the plug-in adds a head and `hub migrate` creates its tables, and the core's
chain never has to know it. Revisions are therefore compared as sets of heads.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from hub.db import MIGRATIONS_DIR

ENTRY_POINT_GROUP = "hub.migrations"


class SchemaBehind(RuntimeError):
    """The database is not at the code's migration heads."""


def plugin_locations() -> dict[str, Path]:
    """Each installed plug-in's folder of revisions, by entry-point name."""
    found: dict[str, Path] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        found[ep.name] = Path(module.__file__).resolve().parent
    return found


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [MIGRATIONS_DIR / "versions", *sorted(plugin_locations().values())]
    # Alembic splits this option on the separator it is told; os.pathsep keeps Windows paths whole.
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    return config


def _joined(revisions: object) -> str | None:
    names = sorted(str(r) for r in (revisions or ()))
    return ",".join(names) or None


def head_revision() -> str | None:
    """The code's heads, sorted and comma-joined (one per installed plug-in with tables, plus the core's)."""
    script = ScriptDirectory.from_config(_config())
    heads = script.get_heads()
    # A plug-in's branch that `depends_on` a core revision makes it an ancestor: Alembic then keeps
    # only the plug-in's head in alembic_version, so a head another head depends on is not counted.
    below = {rev.revision for head in heads
             for rev in script.revision_map.iterate_revisions(head, "base", select_for_downgrade=True)
             if rev.revision != head}
    return _joined([head for head in heads if head not in below])


def current_revision(engine: Engine) -> str | None:
    """The database's heads, in the same form as `head_revision()`."""
    with engine.connect() as conn:
        return _joined(MigrationContext.configure(conn).get_current_heads())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema up to `revision`, by default every head (both SQLite and PostgreSQL)."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to `revision` (`telegram@base` drops a plug-in's tables before it is removed)."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def check_current(engine: Engine) -> None:
    """Raise SchemaBehind, saying what to run, when the database is not at the heads."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        where = "an empty database" if current is None else f"revision {current}"
        raise SchemaBehind(
            f"The database is at {where} but this version of the hub needs {head}. "
            "Run `hub migrate` (it applies the pending migrations), then start again."
        )
