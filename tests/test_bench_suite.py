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
