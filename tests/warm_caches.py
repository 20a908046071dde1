"""Fill the caches a fresh clone lacks before the parallel phase's workers start (scripts/run-tests.sh).

pytest rewrites the asserts of every test module and conftest it imports and keeps the result in
`__pycache__/*-pytest-<version>.pyc`; Python keeps the hub's bytecode beside it. A fresh clone has
neither, so each of the parallel phase's workers rewrote all ~200 test modules and compiled the hub
itself, at the same moment: four times ~17 s of CPU before the first test ran, while the cores had
nothing else to do. This plugin does that work once, in a share of its own
(`--warm-share 0/2` and `1/2` in two processes, one a core), and imports nothing it compiles: the
test modules' imports (the hub, SQLAlchemy, Playwright) are what a worker pays for anyway.

    pytest --noconftest -p tests.warm_caches --warm-share 0/2

The rewritten code is pytest's own (`_rewrite_test` with this run's configuration, written where and
how the import hook reads it); on a pytest whose internals moved, the plugin says so and warms only
the bytecode: the workers then rewrite as they did before.
"""

from __future__ import annotations

import compileall
import fnmatch
import sys
from pathlib import Path

import pytest

WARMED = ("tests", "hub")  # folders under the root: the test modules and what they import


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--warm-share", default="0/1", metavar="I/N",
                     help="warm the I-th of N shares of the files (N processes, one a core)")


def is_test_module(config: pytest.Config, path: Path) -> bool:
    """Whether pytest collects this file as a test module (and rewrites its asserts, as a conftest's)."""
    return path.suffix == ".py" and any(
        fnmatch.fnmatch(path.name, pattern) for pattern in config.getini("python_files"))


def files_to_warm(root: Path, share: int, shares: int) -> list[Path]:
    """This share of the Python files under WARMED: every shares-th of them, biggest first, so
    each share has as much source to compile as the others."""
    paths = sorted((path for folder in WARMED for path in (root / folder).rglob("*.py")),
                   key=lambda path: (-path.stat().st_size, str(path)))
    return paths[share::shares]


def _assert_rewriter(config: pytest.Config):  # type: ignore[no-untyped-def]
    """warm(path): rewrite a test module's asserts into pytest's cache unless a valid one is there;
    None when this pytest's internals are not the ones this was written for."""
    try:
        from _pytest.assertion import assertstate_key
        from _pytest.assertion.rewrite import PYC_TAIL, _read_pyc, _rewrite_test, _write_pyc, get_cache_dir

        state = config.stash[assertstate_key]
    except (ImportError, KeyError):
        return None

    def warm(path: Path) -> None:
        pyc = get_cache_dir(path) / (path.name[:-3] + PYC_TAIL)
        if _read_pyc(path, pyc, state.trace) is None:
            pyc.parent.mkdir(parents=True, exist_ok=True)
            source_hash, code = _rewrite_test(path, config)
            _write_pyc(state, code, source_hash, pyc)

    return warm


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int:
    """Warm this process's share and end the run: nothing is collected, nothing is run."""
    share, shares = (int(part) for part in config.getoption("--warm-share").split("/"))
    rewrite = _assert_rewriter(config)
    if rewrite is None:
        print("[warm_caches] this pytest's assertion rewriting is not the one known here: "
              "bytecode only", file=sys.stderr)
    for path in files_to_warm(config.rootpath, share, shares):
        if rewrite is not None and (path.name == "conftest.py" or is_test_module(config, path)):
            rewrite(path)
        else:
            compileall.compile_file(str(path), quiet=2)
    return 0
