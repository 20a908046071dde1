"""Alembic migrations build the schema the models describe, on SQLite and PostgreSQL,
and the app refuses to start on a schema that is behind."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from hub.db import Database
from hub.schema import metadata
from hub.migrate import SchemaBehind, check_current, current_revision, head_revision, upgrade
from tests.conftest import make_settings


@pytest.fixture
def empty_db(backend, tmp_path):
    kind, url = backend
    if kind == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'fresh.db'}"
        yield db_url
        return
    name = f"hub_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_matches_models_and_is_repeatable(empty_db, tmp_path):
    db = Database(make_settings(empty_db, tmp_path))
    with pytest.raises(SchemaBehind, match="hub migrate"):
        check_current(db.engine)
    upgrade(db.engine)
    upgrade(db.engine)  # a second run changes nothing
    assert current_revision(db.engine) == head_revision()
    check_current(db.engine)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata())
    assert diff == [], f"models and migrations differ; generate a migration: {diff}"
    db.dispose()


def test_app_refuses_to_start_on_a_schema_behind(empty_db, tmp_path):
    from fastapi.testclient import TestClient

    from hub.app import create_app
    from hub.runtime import Hub
    from hub.triggers import TriggerRegistry
    from tests.conftest import test_registry

    runtime = Hub(make_settings(empty_db, tmp_path), registry=test_registry(), triggers=TriggerRegistry())
    app = create_app(runtime, start_worker=False)
    with pytest.raises(SchemaBehind, match="Run `hub migrate`"):
        with TestClient(app):
            pass
    runtime.close()


def test_the_migrated_schema_refuses_overlapping_meetings(empty_db, tmp_path):
    # DDL autogenerate cannot compare: the meetings channel's no-overlap guarantee must be migrated too.
    db = Database(make_settings(empty_db, tmp_path))
    upgrade(db.engine)
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            found = conn.execute(text("SELECT conname FROM pg_constraint WHERE conname = 'ex_meeting_host_no_overlap'"))
            assert found.scalar() == "ex_meeting_host_no_overlap"
        else:
            names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
            assert {"tr_meeting_no_overlap_insert", "tr_meeting_no_overlap_update"} <= names
    db.dispose()


# The forms, meetings, campaigns, surveys and key-accounts tables moved from the core's chain into
# each plug-in's branch (hub.migration_steps). A database the old chain built has the tables but not
# the branches' revisions: the branches must find the tables, add what the database lacks, and end at
# the schema the models describe.
PLUGIN_BRANCHES = ("forms_0001", "meetings_0001", "campaigns_0001", "surveys_0001", "ka_0003")


def _differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata())


def test_plugin_branches_take_over_tables_an_older_core_chain_made(empty_db, tmp_path):
    db = Database(make_settings(empty_db, tmp_path))
    upgrade(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO segment (name, definition, created_at, updated_at) "
                          "VALUES ('kept', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    # What the old chain left a database at core revision 0004 with: the plug-ins' tables, without
    # form.locale (0005) and the A/B columns and table (0006), and none of the branches' revisions.
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE campaign_variant"))
    from alembic.operations import Operations

    with db.engine.begin() as conn:
        ops = Operations(MigrationContext.configure(conn))
        with ops.batch_alter_table("form") as batch:
            batch.drop_column("locale")
        with ops.batch_alter_table("campaign_recipient") as batch:
            batch.drop_column("variant")
        placeholders = ", ".join(f"'{r}'" for r in PLUGIN_BRANCHES)
        conn.execute(text(f"DELETE FROM alembic_version WHERE version_num IN ({placeholders})"))
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('ka_0002')"))
    assert current_revision(db.engine) != head_revision()
    differences = _differences(db.engine)
    assert differences, "the simulated old database should lack columns the models have"

    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision()
    assert _differences(db.engine) == []
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM segment")).scalars().all() == ["kept"]
    db.dispose()


def test_a_plugins_tables_come_and_go_with_its_branch(empty_db, tmp_path):
    from sqlalchemy import inspect

    from hub.migrate import downgrade

    db = Database(make_settings(empty_db, tmp_path))
    upgrade(db.engine)
    downgrade(db.engine, "forms@base")
    tables = set(inspect(db.engine).get_table_names())
    assert not {"form", "form_hit", "form_submission"} & tables
    assert {"campaign", "meeting", "survey", "contact", "account_temperature"} <= tables
    with pytest.raises(SchemaBehind):
        check_current(db.engine)
    upgrade(db.engine)
    check_current(db.engine)
    assert _differences(db.engine) == []
    db.dispose()
