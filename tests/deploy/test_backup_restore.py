"""The production set-up in config/deploy/: backup and restore round-trip on real PostgreSQL databases,
and the systemd units are well-formed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hub.settings import PROJECT_ROOT
from tests.conftest import IN_CI, PG_ADMIN_URL, _pg_reachable

DEPLOY = PROJECT_ROOT / "config" / "deploy"
HUB_BIN = str(Path(sys.executable).with_name("hub"))


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    reason = _pg_reachable()
    if reason:
        if IN_CI:
            pytest.fail(reason + "; CI requires PostgreSQL")
        pytest.skip(reason)
    names = [f"hub_deploy_{kind}_{uuid.uuid4().hex[:6]}" for kind in ("src", "dst")]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://")
    yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _env_file(folder: Path, database_url: str, data_dir: Path) -> Path:
    path = folder / f"hub-{uuid.uuid4().hex[:4]}.env"
    path.write_text(f"HUB_DATABASE_URL={database_url}\nHUB_DATA_DIR={data_dir}\nHUB_SECRET_KEY={'k' * 48}\n")
    return path


def _run(script: str, arg: Path, env_file: Path) -> str:
    env = {**os.environ, "HUB_ENV_FILE": str(env_file), "HUB_BIN": HUB_BIN}
    # In a folder of its own: a `hub migrate` that missed the env file's settings would make ./data there.
    done = subprocess.run(["sh", str(DEPLOY / script), str(arg)], env=env, capture_output=True, text=True, timeout=180,
                          cwd=env_file.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.postgres
def test_backup_then_restore_into_an_empty_database_brings_everything_back(two_databases, tmp_path):
    source_url, target_url = two_databases
    source_data, target_data = tmp_path / "src-data", tmp_path / "dst-data"
    (source_data / "attachments").mkdir(parents=True)
    (source_data / "attachments" / "a.bin").write_bytes(b"attachment bytes")
    env = {**os.environ, "HUB_DATABASE_URL": source_url, "HUB_DATA_DIR": str(source_data)}
    subprocess.run([HUB_BIN, "migrate"], env=env, check=True, capture_output=True, timeout=180)
    engine = create_engine(source_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO contact (display_name, search_name, attributes, tags, lifecycle_stage, created_at,"
                          " updated_at) VALUES ('Мария', 'мария', '{}', '[]', 'lead', now(), now())"))
    engine.dispose()

    backups = tmp_path / "backups"
    out = _run("backup.sh", backups, _env_file(tmp_path, source_url, source_data))
    [folder] = list(backups.iterdir())
    assert "backup written" in out and (folder / "hub.dump").stat().st_size > 0

    _run("restore.sh", folder, _env_file(tmp_path, target_url, target_data))
    restored = create_engine(target_url.replace("postgresql://", "postgresql+psycopg://"))
    with restored.connect() as conn:
        assert conn.execute(text("SELECT display_name FROM contact")).scalars().all() == ["Мария"]
    # one version row per migration branch (the core's and each plug-in's), at the code's heads
    from hub.migrate import current_revision, head_revision

    assert current_revision(restored) == head_revision()
    restored.dispose()
    assert (target_data / "attachments" / "a.bin").read_bytes() == b"attachment bytes"
    assert not (tmp_path / "data").exists()  # the scripts' `hub migrate` used the env file, not its defaults


def test_backup_refuses_to_run_without_a_destination(tmp_path):
    done = subprocess.run(["sh", str(DEPLOY / "backup.sh")], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "usage" in done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_are_well_formed(tmp_path):
    # Point the units at this checkout's hub so verify can resolve ExecStart.
    for unit in DEPLOY.glob("*.service"):
        body = unit.read_text().replace("/opt/hub/.venv/bin/hub", HUB_BIN)
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(body)
    (tmp_path / "hub.target").write_text((DEPLOY / "hub.target").read_text())
    done = subprocess.run(["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.glob("*.service"))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "hub-" not in done.stderr, done.stderr  # no warning about any of our units
