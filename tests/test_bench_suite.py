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
