"""Test set-up: every store test runs on SQLite and on PostgreSQL (a database of its own per run).

PostgreSQL is required when CI=true; elsewhere its tests skip, saying why."""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import argon2
import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from hub import auth, clock, plugin
from hub.db import Database
from hub.registry import ChannelRegistry
from hub.runtime import Hub
from hub.settings import Settings, load_settings
from hub.triggers import TriggerRegistry
from tests import app_builds
from tests.fakes.channel import FakeChannel
from tests.warm_caches import is_test_module

# Every table of every installed adapter, before any fixture creates the schema.
from hub.schema import metadata as _all_tables

_all_tables()

PG_ADMIN_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Passwords are hashed with argon2's cheapest parameters in the suite: the shipped ones
# (hub.auth.PASSWORD_PARAMETERS, 64 MiB and 3 passes by design) cost 0.1-0.3 s a hash, and every
# signed-in test hashes twice. Hashes made here still verify anywhere (argon2 keeps its parameters
# in the hash); tests/test_auth_params.py checks what ships.
auth._hasher = PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
# ~750 tests build an app: each dependency is analysed once per process, not once per app.
app_builds.install()

# Every Hub a test builds looks up its channels, extensions and triggers by entry point: each lookup
# reads the metadata of every installed distribution (~11 ms; ~2,500 tests a run). Nothing is
# installed while the suite runs, so a lookup is remembered for as long as sys.path is the same (a
# test that puts a distribution of its own on sys.path gets a fresh lookup).
_scanned: dict[tuple[object, ...], object] = {}
_plain_entry_points = plugin.entry_points


def _remembered_entry_points(**params: object):  # type: ignore[no-untyped-def]
    key = (tuple(sorted(params.items())), tuple(sys.path))
    if key not in _scanned:
        _scanned[key] = _plain_entry_points(**params)
    return _scanned[key]


plugin.entry_points = _remembered_entry_points  # type: ignore[assignment]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--phase", choices=("all", "parallel", "serial"), default="all",
        help="parallel: every test but those marked serial (run with -n); serial: only those. "
             "`make test` runs both, one after the other.",
    )


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests of this phase; run tests the store plays no part in on SQLite only; keep each
    browser module on one parallel worker, so Chromium starts once per module, not once per worker."""
    phase = config.getoption("--phase")
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        serial = item.get_closest_marker("serial") is not None
        in_phase = phase == "all" or serial == (phase == "serial")
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
        store_free = item.get_closest_marker("any_store") is not None and backend == "postgres"
        (keep if in_phase and not store_free else dropped).append(item)
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module else "browser"))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In the serial phase, leave out the test modules whose text never says `serial`: none of their
    tests can be in that phase, and importing and collecting all of them took the serial phase ~10 s
    on one core while the other waited (4 tests of 2,800 run there)."""
    if config.getoption("--phase") != "serial" or not is_test_module(config, collection_path):
        return None
    return b"serial" not in collection_path.read_bytes() or None


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({type(exc).__name__}: {exc})"


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    reason = _pg_reachable()
    if reason:
        if IN_CI:
            pytest.fail(reason + "; CI requires PostgreSQL (.ci/run starts it)")
        pytest.skip(reason + "; set HUB_TEST_PG_URL or start PostgreSQL to run these")
    name = f"hub_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    # Pinged before use: a fault test restarts PostgreSQL mid-run (tests/faults/test_postgres_restart.py).
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'hub.db'}"
    return "postgres", request.getfixturevalue("pg_database_url")


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    return load_settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret-key-" + "x" * 32,
        embedded_worker=False,
        live_backend="memory",
        **overrides,
    )


@pytest.fixture(scope="session")
def database(backend: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One engine per backend for the whole run, with the schema created from the models."""
    settings = make_settings(backend[1], tmp_path_factory.mktemp("data"))
    db = Database(settings)
    SQLModel.metadata.create_all(db.engine)
    yield db
    db.dispose()


# DELETE, children first, rather than one TRUNCATE of every table: a test leaves a few rows, and
# TRUNCATE gives each of ~65 tables new files (~0.25 s per test, minutes a run). A table left with
# many dead rows is truncated too, so later tests do not scan them. Then every sequence starts at 1
# again (what RESTART IDENTITY did). On PostgreSQL all of it is one block the server runs: one round
# trip instead of one per table (a wipe's client CPU 10-14 -> 1.3-1.6 ms, wall 28-77 -> 11-22 ms on
# a loaded machine). tests/test_suite_wipe.py checks it on both stores.
_PG_WIPE = """DO $wipe$
DECLARE
    name text;
    deleted bigint;
    crowded text[] := '{}';
BEGIN
    FOREACH name IN ARRAY {tables} LOOP
        EXECUTE format('DELETE FROM %%I', name);
        GET DIAGNOSTICS deleted = ROW_COUNT;
        IF deleted > 2000 THEN
            crowded := crowded || name;
        END IF;
    END LOOP;
    IF cardinality(crowded) > 0 THEN
        EXECUTE 'TRUNCATE ' || (SELECT string_agg(format('%%I', c), ', ') FROM unnest(crowded) c) || ' CASCADE';
    END IF;
    PERFORM setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND n.nspname = current_schema();
END
$wipe$"""


def _wipe(db: Database) -> None:
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            names = "ARRAY[" + ", ".join("'" + table.name.replace("'", "''") + "'" for table in tables) + "]::text[]"
            conn.exec_driver_sql(_PG_WIPE.replace("{tables}", names))  # psycopg reads %% as %
        else:
            for table in tables:
                conn.execute(table.delete())
    db.memo.forget()  # the webhook endpoints it kept are gone (hub.memo)


class XdistGroupsNamed:
    """Put each xdist_group's name into its tests' node ids, where --dist loadgroup looks for it.

    pytest-xdist (3.8) does it by setting `item._nodeid`; pytest 9.2 keeps the id in `item._id`
    and ignores `_nodeid`, so no test was grouped: a browser module's tests ran on every worker,
    each starting its own Chromium, and the API fuzz test's stores on two workers, each drawing
    the same cases. tests/test_suite_housekeeping.py checks a group stays on one worker."""

    @pytest.hookimpl(trylast=True)  # after xdist's own attempt, on the worker
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not getattr(config.option, "loadgroup", False):  # set on xdist's workers under --dist loadgroup
            return
        try:
            from _pytest.nodeid import NodeId
        except ImportError:  # pytest < 9.2: xdist's own suffix works
            return

        for item in items:
            names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                            for mark in item.iter_markers("xdist_group")})
            if names and "@" not in item.nodeid:
                item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]


class LongTestsFirst:
    """Order the parallel phase for two cores: the long tests first, the browser modules spread out.

    xdist hands tests out in collection order (scripts/run-tests.sh passes --no-loadscope-reorder),
    so a minute-long test begins while the short ones fill the other workers instead of running
    alone at the end. A browser module runs whole on one worker (its xdist_group: Chromium starts
    once per module); xdist's own order (biggest groups first) put every browser module before the
    long tests and the four workers ran browser modules together at the start. So the long tests go
    first and the modules, biggest first, are spread over the first three quarters of the rest.
    Measured on one VM, fresh clones: parallel phase 736 s with xdist's order, 747 s with this one:
    no difference that one run each can show; kept because it is the order this class promises.
    """

    SPREAD_OVER = 0.75

    @pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by store
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable sort
        modules: dict[str, list[pytest.Item]] = {}
        rest: list[pytest.Item] = []
        for item in items:
            if "browser" in getattr(item, "fixturenames", ()):
                modules.setdefault(item.nodeid.split("::")[0], []).append(item)
            else:
                rest.append(item)
        if not modules:
            return
        slow = sum(1 for item in rest if item.get_closest_marker("slow") is not None)  # they stay first
        ordered = sorted(modules.values(), key=len, reverse=True)
        step = (len(rest) - slow) * self.SPREAD_OVER / len(ordered)
        spread: list[pytest.Item] = []
        taken = 0
        for index, module in enumerate(ordered):
            until = slow + round(index * step)
            spread += rest[taken:until] + module
            taken = until
        items[:] = spread + rest[taken:]


class LongLivedObjectsFrozen:
    """Keep the garbage collector's full passes to what the current test made.

    A worker holds ~400,000 long-lived objects (modules, the suite's test functions, remembered
    route analyses); every full collection walked them all, ~0.3 s each, and an HTTP test's app
    (~100,000 objects with cycles) set one off every two or three tests: a quarter of the CPU of
    tests/api went to the collector. So what is alive when collection ends, and again after each
    test (once pytest has dropped the test's fixtures and a collection has freed its cycles), is
    moved out of the collector's reach (gc.freeze). Objects a test makes are collected as before.
    """

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        gc.collect()
        gc.freeze()

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        yield  # after the teardown and after pytest let go of the test's fixture values
        gc.collect()
        gc.freeze()


class Timeline:
    """Note when each test of this process began and ended and the CPU it took (HUB_TEST_TIMELINE=folder;
    bench.suite --timeline sets it and draws the cores' busy time and each module's CPU from the
    notes): one JSON line a test, a file a process, so the workers of the parallel phase and the serial
    phase write side by side.

    `cpu` is this process's user+sys over the test (set-up, call, teardown: a module-scoped fixture
    counts in the test that set it up or tore it down); `children` is the CPU of the child processes
    reaped meanwhile (a server's or Chromium's counts when it is reaped, usually at the module's end;
    the fork server's children and PostgreSQL's backends are not this process's and never count)."""

    def __init__(self, folder: Path, config: pytest.Config) -> None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        phase = config.getoption("--phase")
        folder.mkdir(parents=True, exist_ok=True)
        self._notes = (folder / f"{phase}-{worker}-{os.getpid()}.jsonl").open("a", buffering=1)
        self._process = {"phase": phase, "worker": worker}
        self._note(event="started", at=_process_started())

    def _note(self, **fields: object) -> None:
        self._notes.write(json.dumps({**self._process, **fields}) + "\n")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._note(event="collected", at=time.time(), items=len(session.items))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        began, own, reaped = time.time(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        yield
        self._note(event="test", test=item.nodeid, began=began, ended=time.time(),
                   cpu=round(_cpu(resource.RUSAGE_SELF) - own, 4),
                   children=round(_cpu(resource.RUSAGE_CHILDREN) - reaped, 4))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._note(event="finished", at=time.time())
        self._notes.close()


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _process_started() -> float:
    """When this process began (the epoch second), from /proc: a worker's start-up before its
    conftest was imported counts too."""
    try:
        since_boot = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        booted = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                      if line.startswith("btime "))
        return booted + since_boot
    except (OSError, StopIteration, IndexError, ValueError):
        return time.time()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("HUB_TEST_TIMELINE"):
        config.pluginmanager.register(Timeline(Path(os.environ["HUB_TEST_TIMELINE"]), config), "hub-timeline")
    config.pluginmanager.register(LongTestsFirst(), "hub-long-tests-first")
    config.pluginmanager.register(XdistGroupsNamed(), "hub-xdist-groups-named")
    config.pluginmanager.register(LongLivedObjectsFrozen(), "hub-long-lived-objects-frozen")


def test_registry() -> ChannelRegistry:
    """The installed adapters plus the fake one."""
    registry = ChannelRegistry().load_entry_points()
    registry.register(FakeChannel)
    return registry


test_registry.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    fake = clock.FrozenClock()
    clock.set_clock(fake)
    yield fake
    clock.set_clock(None)


@pytest.fixture
def hub(database: Database, tmp_path: Path) -> Iterator[Hub]:
    """A runtime on a clean store of the current backend."""
    settings = make_settings(str(database.settings.database_url), tmp_path)
    runtime = Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=database)
    FakeChannel.reset()
    yield runtime
    _wipe(database)
    runtime.broker.stop()


@pytest.fixture
def app(hub: Hub):  # type: ignore[no-untyped-def]
    from hub.app import create_app

    return create_app(hub, check_schema=False, start_worker=False)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def api_key(hub: Hub):  # type: ignore[no-untyped-def]
    """make(scopes) -> headers carrying a fresh API key with those scopes (default: admin)."""
    from hub.auth import create_api_key

    def make(*scopes: str) -> dict[str, str]:
        with hub.session() as session, session.begin():
            _, plain = create_api_key(session, name="test key", scopes=list(scopes or ("admin",)))
        return {"Authorization": f"Bearer {plain}"}

    return make
