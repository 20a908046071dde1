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
    return _joined(ScriptDirectory.from_config(_config()).get_heads())


def current_revision(engine: Engine) -> str | None:
    """The database's heads, in the same form as `head_revision()`."""
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    if not heads:
        return None
    script = ScriptDirectory.from_config(_config())
    try:
        # Alembic's version table keeps a plug-in's revision in place of the core one it
        # `depends_on` (0005 disappears once w001 is applied): count the code's heads the
        # database has reached through its own, plus any head the code does not know.
        reached = {rev.revision for rev in script.iterate_revisions(heads, "base")}
    except Exception:  # a revision this code does not have: report the heads as they are
        return _joined(heads)
    code_heads = set(script.get_heads())
    return _joined({h for h in code_heads if h in reached} | {h for h in heads if h not in code_heads})


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
