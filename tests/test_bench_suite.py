"""bench.suite: a command's CPU, its process tree's and PostgreSQL's, in units of a calibration loop."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import suite


def test_a_process_trees_cpu_counts_its_reaped_children():
    before = suite._tree_cpu(os.getpid())
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    after = suite._tree_cpu(os.getpid())
    assert before is not None and after is not None and after - before > 0.05
    assert suite._tree_cpu(2 ** 22 + 7) is None  # no such process


def test_the_wrapper_reports_the_commands_cpu_and_exit_status():
    burn = "import time; t = time.process_time()\nwhile time.process_time() - t < 0.5: pass\nraise SystemExit(3)"
    done = subprocess.run([sys.executable, "-m", "bench.suite", "--", sys.executable, "-c", burn],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    line = next(l for l in done.stdout.splitlines() if "CPU: command's processes" in l)
    tree = float(line.split("command's processes ")[1].split(" s")[0])
    assert 0.4 < tree < 5
    assert "loops" in done.stdout and "floor on" in done.stdout


def test_the_timeline_shows_start_up_tail_and_the_gap_before_the_serial_phase(tmp_path):
    import json

    def notes(name, *events):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))

    def test(phase, worker, name, began, ended):
        return {"phase": phase, "worker": worker, "event": "test", "test": name, "began": began, "ended": ended}

    notes("parallel-main", {"phase": "parallel", "worker": "main", "event": "started", "at": 1010})
    notes("parallel-gw0", {"phase": "parallel", "worker": "gw0", "event": "started", "at": 1012},
          {"phase": "parallel", "worker": "gw0", "event": "collected", "at": 1030},
          test("parallel", "gw0", "t_fuzz", 1030, 1130))
    notes("parallel-gw1", {"phase": "parallel", "worker": "gw1", "event": "started", "at": 1012},
          test("parallel", "gw1", "t_a", 1040, 1050), test("parallel", "gw1", "t_b", 1050, 1070))
    notes("serial-main", {"phase": "serial", "worker": "main", "event": "started", "at": 1140},
          test("serial", "main", "t_restart", 1150, 1180))
    lines = suite.timeline_summary(tmp_path, started=1000)
    text = "\n".join(lines)
    assert lines[0].startswith("parallel: process started +10 s (10 s after the previous phase), first test +30 s, "
                               "last test ended +130 s; 3 tests on 2 worker(s), busy 130 s of 2 x 100 s (65%)")
    assert "gw0: first test +30 s (collected +30 s), 1 tests, busy 100 s, last ended +130 s" in text
    assert "tail: 60 s from the first worker out of tests to the last test's end; running then: t_fuzz (100 s)" in text
    assert "serial: process started +140 s (10 s after the previous phase), first test +150 s" in text


def test_the_timeline_ranks_modules_by_cpu_with_items_and_cpu_per_item(tmp_path):
    import json

    def test(name, cpu, children=0.0):
        return {"phase": "parallel", "worker": "gw0", "event": "test", "test": name, "began": 1, "ended": 2,
                "cpu": cpu, "children": children}

    notes = [{"phase": "parallel", "worker": "gw0", "event": "started", "at": 0},
             test("tests/web/test_x_browser.py::test_a[sqlite]@tests.web.test_x_browser", 1.0, 9.0),
             test("tests/web/test_x_browser.py::test_b[sqlite]@tests.web.test_x_browser", 2.0),
             test("tests/test_plain.py::test_c[sqlite]", 0.5),
             test("tests/test_plain.py::test_c[postgres]", 0.5),
             test("tests/test_plain.py::test_d", 1.0)]
    notes += [test(f"tests/m{i:02d}.py::t", 0.02 * i) for i in range(30)]
    (tmp_path / "parallel-gw0.jsonl").write_text("".join(json.dumps(note) + "\n" for note in notes))
    lines = suite.timeline_summary(tmp_path, started=0)
    at = next(i for i, line in enumerate(lines) if line.startswith("modules by CPU"))
    assert lines[at] == ("modules by CPU (worker + reaped children), top 25 of 32; "
                         "all tests 22.7 s CPU in 35 items")  # 14 + 0.02 x (0 + ... + 29)
    ranked = lines[at + 1:]
    assert len(ranked) == 25
    assert ranked[0].split() == ["12.0", "s", "53%", "2", "items", "6.00", "s/item", "(worker", "3.0", "+",
                                 "children", "9.0)", "tests/web/test_x_browser.py"]
    assert ranked[1].endswith("3 items   0.67 s/item (worker 2.0 + children 0.0) tests/test_plain.py")
    assert ranked[2].endswith("tests/m29.py") and ranked[-1].endswith("tests/m07.py")


def test_old_notes_without_cpu_rank_nothing():
    assert suite.module_ranking([{"test": "tests/a.py::t", "began": 0, "ended": 1}]) == []


def test_the_cores_picture_is_the_share_of_each_kind_of_time_over_the_run():
    before = dict(zip(suite.CPU_FIELDS, (100, 0, 50, 1000, 10, 0, 0, 0)))
    # 400 ticks pass: user 200 (nice 20 of it), system 60 (softirq 10), idle 100, iowait 20, steal 20
    after = dict(zip(suite.CPU_FIELDS, (280, 20, 100, 1100, 30, 0, 10, 20)))
    line = suite.cores_picture(before, after, 2)
    assert f"2 cores x {400 / suite.TICKS / 2:.0f} s" in line
    assert "user 50%, system 15%, idle 25%, iowait 5%, steal 5%; busy 1.30 of 2 cores" in line
    assert suite.cores_picture({}, after, 2) == "cores: /proc/stat unreadable"
    assert set(suite.proc_stat()) == set(suite.CPU_FIELDS)


def test_the_cpu_of_a_process_the_command_leaves_behind_counts():
    burn = "import time; t = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    # sh starts the burner in a subshell that exits at once: the burner's parent is gone before it ends
    orphaning = f"({sys.executable} -c '{burn}' &) ; exit 0"
    done = subprocess.run([sys.executable, "-m", "bench.suite", "--", "sh", "-c", orphaning],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(l for l in done.stdout.splitlines() if "CPU: command's processes" in l)
    assert float(line.split("command's processes ")[1].split(" s")[0]) > 0.4
    assert "processes left behind by the command: 1 adopted and counted, 0 still running" in done.stdout
