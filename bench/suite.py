"""The test suite's cost in CPU seconds, next to a calibration loop timed in the same run.

Issue 18's goal is wall minutes on a 2-core machine, but the VMs this project runs on differ by ~2× per
operation (docs/benchmarks.md, "Test suite"): the same code took 9m20s on one and 13m42s on another,
while the suite's own changes moved it by ±5%. What a change to the suite controls is the CPU it
spends — in pytest's processes and everything they start (Chromium, uvicorn, aiosmtpd, worker
subprocesses), and in PostgreSQL's backends, which are the postmaster's children, not pytest's.
This wraps any command (by default the README's `make test`), measures

- wall time;
- CPU of the command's process tree (user + sys of every reaped descendant: `RUSAGE_CHILDREN`), the
  processes it leaves behind included (this process adopts them: `Orphans`);
- CPU of PostgreSQL's processes (the postmaster's own and its reaped children's, sampled each second;
  a restart mid-run — the fault test does one — is followed to the new postmaster);
- a fixed pure-Python loop before and after (the best of three each): the machine's speed today,

and prints the suite's CPU in units of that loop, which compares across machines of this kind where
minutes do not, and the wall time two fully busy cores would need for that CPU (the floor any
scheduling of the tests could reach).

    python -m bench.suite                      # make test, here
    python -m bench.suite -- bash .ci/run      # what CI runs (from a fresh clone's folder)
    python -m bench.suite --timeline /tmp/tl -- bash .ci/run   # and when each test ran, per worker

With --timeline, each pytest process notes when each of its tests began and ended and the CPU it took
(tests/conftest.py Timeline) and the run ends with where the workers waited: start-up before their
first test, the tail of the parallel phase with workers out of tests, the gap before the serial phase,
the longest tests; then the 25 test modules that took the most CPU. Every run ends with how the
machine's cores spent it (/proc/stat: user, system, idle, iowait, steal), to tell idle cores from
CPU the command's tree does not count.
"""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import sys
import json
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
TICKS = os.sysconf("SC_CLK_TCK")
LOOP_ROUNDS = 3_000_000


def calibration_seconds() -> float:
    """CPU seconds of a fixed pure-Python loop (integer arithmetic, a dict, a list), the best of three:
    the work the test suite's own Python does, at this machine's speed today."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        table: dict[int, int] = {}
        acc = 0
        for i in range(LOOP_ROUNDS):
            acc = (acc * 31 + i) % 1_000_003
            table[i & 1023] = acc
        [table[k] for k in range(1024)].sort()
        best = min(best, time.process_time() - started)
    return best


def _postmaster_pid() -> int | None:
    """The oldest process named `postgres` (the postmaster); None when PostgreSQL does not run here."""
    found = subprocess.run(["pgrep", "-o", "-x", "postgres"], capture_output=True, text=True, check=False)
    return int(found.stdout.split()[0]) if found.stdout.strip() else None


def _tree_cpu(pid: int) -> float | None:
    """A process's CPU seconds with its reaped children's (utime, stime, cutime, cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(value) for value in fields[11:15]) / TICKS


class PostgresCPU:
    """Samples the postmaster's CPU with its reaped backends' each second while a command runs;
    `seconds` is what PostgreSQL spent meanwhile, across restarts."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._spent = 0.0
        self._pid = _postmaster_pid()
        self._start = _tree_cpu(self._pid) if self._pid else None
        self._last = self._start
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PostgresCPU:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        pid = _postmaster_pid()
        if pid is None:
            return
        if pid != self._pid:  # restarted: bank what the old one had spent since the start
            if self._last is not None and self._start is not None:
                self._spent += self._last - self._start
            self._pid, self._start = pid, 0.0  # the new postmaster's whole life is in the run
        self._last = _tree_cpu(pid)

    def _watch(self) -> None:
        while not self._done.wait(1.0):
            self._sample()

    @property
    def seconds(self) -> float:
        running = (self._last - self._start) if self._last is not None and self._start is not None else 0.0
        return self._spent + running


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


class Orphans:
    """Adopts and reaps the processes the command leaves behind, so their CPU counts.

    A process whose parent exits is handed to init, and its CPU to nobody's RUSAGE_CHILDREN: the full
    Chromium's per-page processes (about half of its CPU), daemons such as each worker's Dovecot. As a
    child subreaper (prctl) this process becomes their parent instead; a thread reaps those that exit
    (never the command itself, which its Popen waits for), and at the end the last ones get `grace`
    seconds to exit. `reaped` counts them; `left` those still running then (their CPU is not counted)."""

    def __init__(self, grace: float = 10.0) -> None:
        self.adopting = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        self.reaped = self.left = 0
        self._grace = grace
        self._command = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def run(self, command: list[str], env: dict[str, str] | None) -> int:
        process = subprocess.Popen(command, env=env)
        self._command = process.pid
        self._thread.start()
        status = process.wait()
        self._done.set()
        self._thread.join()
        deadline = time.monotonic() + self._grace
        while self._reap() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.left = len(_children(os.getpid()))
        return status

    def _reap(self) -> bool:
        """Reap what has exited but the command; False when nothing else is left to wait for."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return False
            if info is None or info.si_pid == self._command:
                return True
            os.waitpid(info.si_pid, 0)
            self.reaped += 1

    def _watch(self) -> None:
        while not self._done.wait(1.0):
            self._reap()


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def timeline_summary(folder: Path, started: float) -> list[str]:
    """Where a run's workers waited, from the notes tests/conftest.py's Timeline left in `folder`
    (`started`: the epoch second the command began)."""
    notes = [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]
    lines = []
    ended_before = started
    for phase in ("parallel", "serial", "all"):
        mine = [note for note in notes if note["phase"] == phase]
        tests = [note for note in mine if note["event"] == "test"]
        if not tests:
            continue
        workers = sorted({note["worker"] for note in tests})
        began = min(note["at"] for note in mine if note["event"] == "started")
        first, last = min(t["began"] for t in tests), max(t["ended"] for t in tests)
        busy = sum(t["ended"] - t["began"] for t in tests)
        out_of_tests = min(max(t["ended"] for t in tests if t["worker"] == w) for w in workers)
        lines.append(f"{phase}: process started +{began - started:.0f} s ({began - ended_before:.0f} s after "
                     f"the previous phase), first test +{first - started:.0f} s, last test ended "
                     f"+{last - started:.0f} s; {len(tests)} tests on {len(workers)} worker(s), busy "
                     f"{busy:.0f} s of {len(workers)} x {last - first:.0f} s ({busy / len(workers) / max(last - first, 1e-9):.0%})")
        for worker in workers:
            own = [t for t in tests if t["worker"] == worker]
            collected = [n["at"] for n in mine if n["worker"] == worker and n["event"] == "collected"]
            lines.append(f"  {worker}: first test +{min(t['began'] for t in own) - started:.0f} s"
                         + (f" (collected +{collected[0] - started:.0f} s)" if collected else "")
                         + f", {len(own)} tests, busy {sum(t['ended'] - t['began'] for t in own):.0f} s, "
                         f"last ended +{max(t['ended'] for t in own) - started:.0f} s")
        if len(workers) > 1:
            tail = [t for t in tests if t["ended"] > out_of_tests]
            lines.append(f"  tail: {last - out_of_tests:.0f} s from the first worker out of tests to the last "
                         "test's end; running then: " + ", ".join(
                             f"{t['test']} ({t['ended'] - t['began']:.0f} s)"
                             for t in sorted(tail, key=lambda t: t["began"] - t["ended"])[:5]))
        for t in sorted(tests, key=lambda t: t["began"] - t["ended"])[:5]:
            lines.append(f"  long: {t['ended'] - t['began']:6.1f} s {t['test']} ({t['worker']})")
        ended_before = last
    return lines + module_ranking([note for note in notes if note["event"] == "test"])


def module_ranking(tests: list[dict], top: int = 25) -> list[str]:
    """The test modules that took the most CPU (the worker's own and its reaped children's, from the
    Timeline's notes of every phase), with their item counts and CPU per item."""
    if not any("cpu" in t for t in tests):
        return []  # notes from before the Timeline noted CPU
    modules: dict[str, list[float]] = {}
    for t in tests:
        own, children = t.get("cpu", 0.0), t.get("children", 0.0)
        spent = modules.setdefault(t["test"].split("::")[0], [0, 0.0, 0.0])
        spent[0] += 1
        spent[1] += own
        spent[2] += children
    total = sum(own + children for _, own, children in modules.values())
    lines = [f"modules by CPU (worker + reaped children), top {min(top, len(modules))} of {len(modules)}; "
             f"all tests {total:.1f} s CPU in {len(tests)} items"]
    ranked = sorted(modules.items(), key=lambda kv: -(kv[1][1] + kv[1][2]))[:top]
    for module, (items, own, children) in ranked:
        spent = own + children
        lines.append(f"  {spent:7.1f} s {spent / max(total, 1e-9):4.0%} {items:4d} items {spent / items:6.2f} s/item "
                     f"(worker {own:.1f} + children {children:.1f}) {module}")
    return lines


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def proc_stat() -> dict[str, int]:
    """The machine's CPU time since boot by kind (/proc/stat's `cpu` line, in ticks); {} without /proc."""
    try:
        line = next(l for l in Path("/proc/stat").read_text().splitlines() if l.startswith("cpu "))
    except (OSError, StopIteration):
        return {}
    return dict(zip(CPU_FIELDS, (int(value) for value in line.split()[1:])))


def cores_picture(before: dict[str, int], after: dict[str, int], cores: int) -> str:
    """How the machine's cores spent the run, whoever ran: what the command's own CPU cannot tell apart
    (idle cores, iowait, steal by the host, other processes' user time)."""
    spent = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in CPU_FIELDS}
    total = sum(spent.values())
    if not before or total <= 0:
        return "cores: /proc/stat unreadable"
    share = {kind: ticks / total for kind, ticks in spent.items()}
    busy = 1 - share["idle"] - share["iowait"] - share["steal"]
    return (f"cores (/proc/stat, the whole machine, {cores} cores x {total / TICKS / cores:.0f} s): "
            f"user {share['user'] + share['nice']:.0%}, system {share['system'] + share['irq'] + share['softirq']:.0%}, "
            f"idle {share['idle']:.0%}, iowait {share['iowait']:.0%}, steal {share['steal']:.0%}; "
            f"busy {busy * cores:.2f} of {cores} cores on average")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def main(
    ctx: typer.Context,
    cores: Annotated[int, typer.Option(min=1, help="Cores the floor is computed for.")] = os.cpu_count() or 2,
    timeline: Annotated[Path | None, typer.Option(
        help="A folder for each test's start and end (HUB_TEST_TIMELINE): where the workers waited.")] = None,
) -> None:
    """Run a command (default: make test) and print its CPU — the command's process tree and
    PostgreSQL's — in seconds and in units of a calibration loop timed before and after it.

    Pass the command after `--`, e.g. `python -m bench.suite -- bash .ci/run` from a fresh clone.
    Run it on a quiet machine: PostgreSQL's CPU is the whole server's, whoever else uses it."""
    command = ctx.args or ["make", "test"]
    before = calibration_seconds()
    print(f"[bench.suite] calibration loop: {before:.3f} s CPU; running: {' '.join(command)}", flush=True)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, started_at = time.monotonic(), time.time()
    env = {**os.environ, "HUB_TEST_TIMELINE": str(timeline.resolve())} if timeline else None
    machine_before = proc_stat()
    orphans = Orphans()
    with PostgresCPU() as postgres:
        status = orphans.run(command, env)
    machine_after = proc_stat()
    wall = time.monotonic() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
    after = calibration_seconds()
    loop = min(before, after)
    total = tree + postgres.seconds
    print(f"\n[bench.suite] exit {status}; wall {wall / 60:.1f} min ({wall:.0f} s)")
    print(f"[bench.suite] CPU: command's processes {tree:.1f} s + PostgreSQL {postgres.seconds:.1f} s "
          f"= {total:.1f} s ({total / 60:.1f} min)")
    print(f"[bench.suite] processes left behind by the command: {orphans.reaped} adopted and counted, "
          f"{orphans.left} still running at the end (not counted)" if orphans.adopting else
          "[bench.suite] could not adopt what the command leaves behind (prctl): its CPU is not counted")
    print(f"[bench.suite] calibration loop {before:.3f} s before, {after:.3f} s after: the suite's CPU is "
          f"{total / loop:,.0f} loops")
    print(f"[bench.suite] floor on {cores} fully busy cores: {total / cores / 60:.1f} min; "
          f"wall / floor = {wall / (total / cores):.2f}")
    print(f"[bench.suite] {cores_picture(machine_before, machine_after, os.cpu_count() or cores)}")
    if timeline:
        for line in timeline_summary(timeline, started_at):
            print(f"[bench.suite] {line}")
    sys.exit(status)


if __name__ == "__main__":
    app()
