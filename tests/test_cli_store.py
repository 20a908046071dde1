"""`hub store copy --to postgresql://…`: a demo SQLite store copied into a fresh PostgreSQL database that
the test creates and drops; counts and rows compared, sequences past the ids, a non-empty target refused."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.migrate import check_current
from hub.schema import metadata
from tests.cli import cli_invoker
from tests.conftest import IN_CI, PG_ADMIN_URL, _pg_reachable


@pytest.fixture
def target() -> Iterator[str]:
    """A new, empty PostgreSQL database (postgresql://…), dropped afterwards."""
    reason = _pg_reachable()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"hub_copy_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _on_sqlite_in(folder: Path):  # type: ignore[no-untyped-def]
    """The CLI on the SQLite store (and secret key) in folder."""
    return cli_invoker({"HUB_DATABASE_URL": None, "HUB_DATA_DIR": str(folder), "HUB_SECRET_KEY": None,
                        "HUB_LIVE_BACKEND": "memory", "HUB_EMBEDDED_WORKER": "false"})


@pytest.fixture
def run(tmp_path: Path) -> Iterator:  # type: ignore[no-untyped-def]
    """run(*args) -> Result, with the CLI on a SQLite store of its own in tmp_path."""
    with _on_sqlite_in(tmp_path) as invoke:
        yield invoke


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a migrated store and the demo loaded by the CLI, made once for this
    module: a load with the packages' demos is ~5 s of CPU, and the copy's tests only read it."""
    folder = tmp_path_factory.mktemp("demo-store")
    with _on_sqlite_in(folder) as invoke:
        assert invoke("migrate").exit_code == 0
        loaded = invoke("demo", "load", "--contacts", "12", "--long-history", "40")
        assert loaded.exit_code == 0, loaded.output
    return folder


@pytest.fixture
def demo_store(demo_folder: Path, tmp_path: Path) -> Path:
    """This test's own copy of the demo's data directory, in tmp_path (where `run` works)."""
    shutil.copytree(demo_folder, tmp_path, dirs_exist_ok=True)
    return tmp_path / "hub.db"


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in metadata().sorted_tables}


def test_a_demo_store_moves_to_postgresql_whole(run, target: str, demo_store: Path) -> None:  # type: ignore[no-untyped-def]
    source = sa.create_engine(f"sqlite:///{demo_store}")
    tables = {t.name: t for t in metadata().sorted_tables}
    contact, event, user = tables["contact"], tables["timeline_event"], tables["user_account"]
    with source.begin() as conn:
        # A contact merged into one with a higher id: its own table's row must exist first.
        top = conn.scalar(sa.select(sa.func.max(contact.c.id)))
        conn.execute(contact.update().where(contact.c.id == 1).values(merged_into=top))
    before = counts(source)
    # 12 asked for, plus the few the packages' demos bring (key accounts: three of their own).
    assert before["contact"] >= 12 and before["timeline_event"] > 40 and before["form"] == 1

    copied = run("store", "copy", "--to", target, "--batch-size", "7")
    assert copied.exit_code == 0, copied.output
    said = " ".join(copied.output.split())
    assert "the target was migrated first" in said and "keep HUB_DATA_DIR" in said and "secret.key" in said

    written = sa.create_engine(target.replace("postgresql://", "postgresql+psycopg://"))
    try:
        check_current(written)  # the copy is a hub store at head: `hub serve` would accept it
        assert counts(written) == before
        with source.connect() as a, written.connect() as b:
            for table, key in ((contact, contact.c.id), (event, event.c.id), (user, user.c.id),
                               (tables["form"], tables["form"].c.id), (tables["consent_record"], tables["consent_record"].c.id)):
                assert a.execute(sa.select(table).order_by(key)).all() == b.execute(sa.select(table).order_by(key)).all()
            assert b.scalar(sa.select(contact.c.merged_into).where(contact.c.id == 1)) == top
            # The next id PostgreSQL hands out is past every copied one.
            for name in ("contact", "timeline_event", "audit_entry"):
                largest = b.scalar(sa.text(f"SELECT max(id) FROM {name}"))
                assert b.scalar(sa.text(f"SELECT nextval(pg_get_serial_sequence('{name}', 'id'))")) > largest

        again = run("store", "copy", "--to", target)
        assert again.exit_code == 2
        message = " ".join(again.output.split())
        assert "not empty" in message and "Nothing was copied" in message and "createdb" in message
        assert counts(written) == before
    finally:
        written.dispose()
        source.dispose()


def test_refusals_and_help(run, target: str) -> None:  # type: ignore[no-untyped-def]
    assert run("migrate").exit_code == 0
    wrong = run("store", "copy", "--to", "mysql://root@localhost/hub")
    assert wrong.exit_code == 2 and "PostgreSQL URL" in wrong.output
    engine = sa.create_engine(target.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE other_app (id int)"))
    foreign = run("store", "copy", "--to", target)
    assert foreign.exit_code == 2 and "not the hub's" in foreign.output
    engine.dispose()
    unreachable = run("store", "copy", "--to", "postgresql://nobody@127.0.0.1:1/none")
    assert unreachable.exit_code == 2 and "cannot reach" in unreachable.output

    usage = run("store", "copy", "--help")
    assert usage.exit_code == 0
    text = " ".join(usage.output.split())
    assert "--to" in text and "empty PostgreSQL database" in text and "--batch-size" in text
    assert "HUB_DATA_DIR" in text


def test_a_row_postgresql_refuses_leaves_the_target_empty(run, target: str, demo_store: Path) -> None:  # type: ignore[no-untyped-def]
    source = sa.create_engine(f"sqlite:///{demo_store}")
    users = metadata().tables["user_account"]
    with source.begin() as conn:
        conn.execute(users.update().values(display_name="Ы" * 500))  # SQLite keeps what VARCHAR(200) refuses
    failed = run("store", "copy", "--to", target)
    said = " ".join(failed.output.split())
    assert failed.exit_code == 1 and "refused a row of user_account" in said and "Nothing was kept" in said
    written = sa.create_engine(target.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert set(counts(written).values()) == {0}  # migrated, and empty: the copy can simply be run again
    finally:
        written.dispose()
        source.dispose()
