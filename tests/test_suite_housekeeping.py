"""The suite's housekeeping in tests/conftest.py: the collector's frozen heap, remembered entry points,
xdist groups."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

pytestmark = pytest.mark.any_store


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_test_starts_with_what_lived_before_it_frozen_and_its_own_cycles_collectable():
    assert gc.get_freeze_count() > 0
    kept = _Cycle()
    ref = weakref.ref(kept)
    del kept
    gc.collect()
    assert ref() is None


def test_a_remembered_entry_point_lookup_is_the_lookup_and_sees_a_new_sys_path(tmp_path, monkeypatch):
    from importlib.metadata import entry_points

    from hub import plugin

    assert plugin.entry_points is not entry_points  # the suite's remembered lookup
    assert list(plugin.entry_points(group="hub.channels")) == list(entry_points(group="hub.channels"))
    dist = tmp_path / "extra_channel-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-channel\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hub.channels]\nextra = tests.fakes.channel:FakeChannel\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "extra" in {ep.name for ep in plugin.entry_points(group="hub.channels")}


@pytest.mark.xdist_group("housekeeping")
def test_a_grouped_test_carries_its_group_in_its_node_id_where_loadgroup_looks(request):
    """pytest-xdist's --dist loadgroup sends tests to workers by the `@group` ending of their ids
    (tests/conftest.py XdistGroupsNamed puts it there with pytest 9.2)."""
    if getattr(request.config.option, "loadgroup", False):  # an xdist worker of the parallel phase
        assert request.node.nodeid.endswith("@housekeeping"), request.node.nodeid
    else:
        assert "@" not in request.node.nodeid


def sleeper(argv: list[str], ready) -> None:  # type: ignore[no-untyped-def]
    """A target for tests/forked.py: notes its pid and whether the hub was imported before it, waits."""
    import os
    import sys
    import time
    from pathlib import Path

    Path(argv[0]).write_text(f"{os.getpid()} {os.getppid()} {'hub.worker' in sys.modules}")
    ready()
    time.sleep(600)


def broken(argv: list[str], ready) -> None:  # type: ignore[no-untyped-def]
    raise RuntimeError("fails before it is ready")


def test_a_forked_worker_is_a_process_of_its_own_ready_imported_and_killed_by_sigkill(tmp_path):
    import os
    import signal

    from tests import forked

    proc = forked.start("tests.test_suite_housekeeping:sleeper", str(tmp_path / "noted"))
    pid, parent, imported = (tmp_path / "noted").read_text().split()
    assert int(pid) == proc.pid and proc.pid != os.getpid() and int(parent) != os.getpid()  # the fork server's
    assert imported == "True"  # the fork server imported the hub once; the child did not have to
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    with pytest.raises(AssertionError, match="did not start"):
        forked.start("tests.test_suite_housekeeping:broken")


# The browser tests that run on PostgreSQL too: the open page watches the store change under it, or
# drives code with a PostgreSQL branch of its own (docs/benchmarks.md, "Session 14 notes"). Every other
# browser test is marked `any_store`: it runs on SQLite only.
STORE_BROWSER_TESTS = {
    "tests/web/test_browser_agent.py::test_search_by_a_phone_written_another_way_from_the_keyboard",
    "tests/web/test_browser_agent.py::test_timeline_scrolls_through_several_pages",
    "tests/web/test_browser_agent.py::test_live_events_reach_every_open_page_of_the_contact",
    "tests/web/test_browser_agent.py::test_incoming_call_pops_the_callers_card",
    "tests/web/test_browser_agent.py::test_note_task_merge_and_undo",
    "tests/web/test_browser_agent.py::test_delivery_status_moves_on_while_the_page_is_open",
    "tests/web/test_campaigns_browser.py::test_a_marketer_sends_watches_pauses_resumes_duplicates_and_cancels_in_the_browser",
    "tests/web/test_segments_browser.py::test_build_a_segment_watch_the_count_and_save_it",
    "tests/web/test_surveys_browser.py::test_a_customer_answers_on_a_phone_in_russian_and_edits_the_answer",
}


def test_a_browser_test_runs_on_postgresql_only_where_the_store_plays_a_part(request):
    """A new browser test is marked `any_store` or named above, so Chromium does not run it twice unasked."""
    on_postgres = {item.nodeid.split("[")[0] for item in request.session.items
                   if "browser" in getattr(item, "fixturenames", ())
                   and getattr(getattr(item, "callspec", None), "params", {}).get("backend") == "postgres"}
    if not on_postgres:
        return  # the run collected no browser test on PostgreSQL (a part of the suite, or no Chromium)
    assert on_postgres <= STORE_BROWSER_TESTS, sorted(on_postgres - STORE_BROWSER_TESTS)


def test_warmed_caches_are_the_ones_pytest_and_python_then_read(tmp_path):
    """scripts/run-tests.sh warms the rewritten test modules and the bytecode before the workers start
    (tests/warm_caches.py): pytest must find its rewrite there and not make its own."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "helper.py").write_text("LIMIT = 2\n")
    (tmp_path / "tests" / "test_one.py").write_text(
        "import sys\nsys.path.insert(0, __file__.rsplit('/', 1)[0])\nfrom helper import LIMIT\n\n\n"
        "def test_one():\n    x = 1\n    assert x == LIMIT\n")
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": ""}
    run = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]

    for share in ("0/2", "1/2"):  # two processes, each its own half, as run-tests.sh runs them
        warmed = subprocess.run([*run, "--noconftest", "-p", "tests.warm_caches", "--warm-share", share],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert warmed.returncode == 0, warmed.stdout + warmed.stderr
    cache = tmp_path / "tests" / "__pycache__"
    rewritten = next(cache.glob("test_one.*-pytest-*.pyc"))
    assert next(cache.glob("helper.cpython-*.pyc"))
    made = rewritten.stat().st_mtime_ns

    tested = subprocess.run([*run, "tests/test_one.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert tested.returncode == 1 and "assert 1 == 2" in tested.stdout, tested.stdout  # the rewritten assert
    assert rewritten.stat().st_mtime_ns == made  # read, not rewritten again


def test_the_serial_phase_reads_only_the_test_modules_that_say_serial(tmp_path, request):
    """tests/conftest.py pytest_ignore_collect: the serial phase imports no module that cannot hold one of
    its tests; the other phases import every module."""
    from tests.conftest import pytest_ignore_collect

    marked = tmp_path / "test_marked.py"
    marked.write_text("import pytest\n\npytestmark = pytest.mark.serial\n")
    plain = tmp_path / "test_plain.py"
    plain.write_text("def test_plain():\n    pass\n")
    helper = tmp_path / "helper.py"
    helper.write_text("")

    class Phase:
        def __init__(self, phase: str) -> None:
            self.phase = phase

        def getoption(self, name: str) -> str:
            return self.phase

        def getini(self, name: str):  # type: ignore[no-untyped-def]
            return request.config.getini(name)

    assert pytest_ignore_collect(plain, Phase("serial")) is True
    assert pytest_ignore_collect(marked, Phase("serial")) is None
    assert pytest_ignore_collect(helper, Phase("serial")) is None
    for phase in ("parallel", "all"):
        assert pytest_ignore_collect(plain, Phase(phase)) is None


def test_the_timeline_notes_when_this_process_began_and_each_test_ran(tmp_path, request):
    """HUB_TEST_TIMELINE's notes (tests/conftest.py Timeline), which bench.suite --timeline reads."""
    import json
    import time

    from tests.conftest import Timeline

    timeline = Timeline(tmp_path / "notes", request.config)
    wrapper = timeline.pytest_runtest_protocol(request.node, None)
    next(wrapper)
    with pytest.raises(StopIteration):
        next(wrapper)
    timeline.pytest_unconfigure(request.config)
    (path,) = (tmp_path / "notes").iterdir()
    notes = [json.loads(line) for line in path.read_text().splitlines()]
    assert [note["event"] for note in notes] == ["started", "test", "finished"]
    assert notes[0]["at"] <= notes[1]["began"] <= notes[1]["ended"] <= notes[2]["at"] <= time.time()
    assert time.time() - notes[0]["at"] < 3600  # this process's own start, from /proc
    assert notes[1]["test"] == request.node.nodeid
    assert notes[1]["cpu"] >= 0 and notes[1]["children"] >= 0


def test_the_timeline_counts_a_tests_cpu_and_its_reaped_childrens(tmp_path, request):
    import json
    import subprocess
    import sys

    from tests.conftest import Timeline

    timeline = Timeline(tmp_path / "notes", request.config)
    wrapper = timeline.pytest_runtest_protocol(request.node, None)
    next(wrapper)
    started = time.process_time()
    while time.process_time() - started < 0.3:
        pass
    subprocess.run([sys.executable, "-c", "import time; t = time.process_time()\n"
                    "while time.process_time() - t < 0.3: pass"], check=True)
    with pytest.raises(StopIteration):
        next(wrapper)
    timeline.pytest_unconfigure(request.config)
    (path,) = (tmp_path / "notes").iterdir()
    test = next(json.loads(line) for line in path.read_text().splitlines() if '"test"' in line)
    assert 0.3 <= test["cpu"] < 3 and 0.3 <= test["children"] < 3


def test_the_browser_tests_drive_the_headless_shell_when_it_is_installed(tmp_path, monkeypatch):
    """Debian's chromium-headless-shell (a third of the full browser's CPU a page); HUB_TEST_CHROMIUM wins."""
    from tests.web import conftest as web

    shell, full = tmp_path / "chromium-headless-shell", tmp_path / "chromium"
    monkeypatch.setattr(web, "CHROMIUM_BUILDS", (str(shell), str(full)))
    monkeypatch.delenv("HUB_TEST_CHROMIUM", raising=False)
    assert web.chromium() == str(full)  # neither installed: the full browser's path, for the skip's message
    full.touch()
    assert web.chromium() == str(full)
    shell.touch()
    assert web.chromium() == str(shell)
    monkeypatch.setenv("HUB_TEST_CHROMIUM", "/opt/other/chrome")
    assert web.chromium() == "/opt/other/chrome"
