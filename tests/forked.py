"""Worker OS processes for the kill -9 tests, forked ready-imported instead of started from scratch.

A crash test starts a real worker process several times (killed with SIGKILL mid-run, then
restarted); as `python -m …` each one paid Python's start-up and the hub's imports again (~1.5 s of
CPU, more than half of such a test's time on two busy cores). Here the processes come from
multiprocessing's fork server (standard library): one process per test process (per xdist worker)
that imports the hub once (PRELOAD), then forks a child for each start. A child is an ordinary OS
process of its own (its own pid, killed by a signal like any other, its exit status reported); it
builds its own Hub from the test's arguments, as the `python -m` form did, and says when it is ready.

`start("tests.webhooks.worker_main:main", url, settings_json)` calls `main([url, settings_json],
ready=…)` in the child: `ready` is what the child calls once it can work (the `python -m` form prints
"ready" instead). The child's standard input and output are /dev/null (the fork server's are the
test process's own, which pytest captures), its standard error too unless a log file is given.

`start(..., talk=True)` also hands the child `talk=`, its end of a two-way line to the test (a
multiprocessing Connection): the tests that start several processes and let them race send "go"
on it (`Forked.go`) and read what each did (`Forked.answer`), where the `python -m` form read a
line on standard input and printed its answer.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import subprocess
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

START_TIMEOUT = 60.0
# What the fork server imports once (tests/worker_imports.py: the hub, its plug-ins, the worker) and
# the targets themselves. What is missing here each child imports, as before.
PRELOAD = ["tests.worker_imports", "tests.campaigns.campaign_proc", "tests.webhooks.worker_main", "tests.worker_proc",
           "tests.campaigns.surveys.reminder_proc", "tests.channels.email.poll_proc"]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


def _child(target: str, args: tuple[str, ...], ready: Connection, log: str | None, talk: bool) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if log else null
    for fd, to in ((0, null), (1, null), (2, err)):
        os.dup2(to, fd)
    module, name = target.split(":")
    function: Callable[..., None] = getattr(importlib.import_module(module), name)
    function(list(args), ready=lambda: ready.send("ready"), **({"talk": ready} if talk else {}))


class Forked:
    """The part of subprocess.Popen the crash tests use: pid, send_signal, kill, wait; go and answer
    for a child started with talk=True."""

    def __init__(self, process: Any, talk: Connection | None = None, log: Path | None = None) -> None:
        self.process = process
        self.pid: int = process.pid
        self.talk = talk
        self.log = log

    def go(self) -> None:
        """Tell a child waiting on its line to act."""
        assert self.talk is not None, "started without talk=True"
        self.talk.send("go")

    def answer(self, timeout: float) -> Any:
        """What the child sent on its line next."""
        assert self.talk is not None, "started without talk=True"
        if not self.talk.poll(timeout):
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
        try:
            return self.talk.recv()
        except EOFError:  # it died: say how, with what it wrote to its log
            self.process.join(10)
            said = self.log.read_text(errors="replace") if self.log and self.log.exists() else ""
            raise AssertionError(f"pid {self.pid} exited without an answer (exit status "
                                 f"{self.process.exitcode}) {said}") from None

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        self.process.kill()

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
        return self.process.exitcode


def start(target: str, *args: str, log: Path | None = None, talk: bool = False) -> Forked:
    """A child forked from the fork server running `module:function`, returned once it said ready."""
    ours, theirs = _context.Pipe(duplex=talk)
    process = _context.Process(target=_child, args=(target, args, theirs, str(log) if log else None, talk),
                               name=target, daemon=True)
    process.start()
    theirs.close()
    forked = Forked(process, ours if talk else None, log)
    try:
        said = ours.recv() if ours.poll(START_TIMEOUT) else None
    except EOFError:  # the child exited before it was ready
        said = None
    finally:
        if not talk or said != "ready":
            ours.close()
    if said != "ready":
        process.kill()
        process.join(10)
        raise AssertionError(f"{target} did not start (exit status {process.exitcode})")
    return forked
