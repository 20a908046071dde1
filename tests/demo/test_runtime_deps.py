"""What the README tells a newcomer to run works with the runtime dependencies alone (`make run`
installs `pip install -e .`, without the test extra)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

from packaging.requirements import Requirement

from hub.settings import PROJECT_ROOT


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure() -> set[str]:
    """Every distribution pyproject.toml's [project] dependencies pull in, transitively."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(line) for line in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        key = _key(req.name) + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            below = requires(req.name) or []
        except PackageNotFoundError:
            continue
        for line in below:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": extra}) for extra in req.extras or {""}):
                todo.append(sub)
    return {key.partition("[")[0] for key in seen}


def test_the_runtime_dependencies_bring_httpx_and_aiosmtpd() -> None:
    closure = runtime_closure()
    assert {"httpx", "aiosmtpd"} <= closure


# Runs in a fresh interpreter: any import of a module that only test-extra distributions provide fails
# the way it fails after `make run` (ModuleNotFoundError).
_GUARD = textwrap.dedent("""
    import importlib.abc, json, runpy, sys
    allowed = set(json.loads(sys.argv[1]))
    owners = json.loads(sys.argv[2])
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            dists = owners.get(top)
            if dists and not any(d in allowed for d in dists):
                raise ModuleNotFoundError(f"No module named {name!r} (only a test dependency)")
            return None
    sys.meta_path.insert(0, Blocker())
    sys.argv = ["standins.twilio_local"] + sys.argv[3:]
    runpy.run_module("standins.twilio_local", run_name="__main__")
""")


def _run_with_runtime_deps(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    owners = {top: sorted(_key(d) for d in dists) for top, dists in packages_distributions().items()}
    allowed = sorted(runtime_closure() | {"hub"})
    return subprocess.run([sys.executable, "-c", _GUARD, json.dumps(allowed), json.dumps(owners), *args],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_readme_twilio_local_commands_import_with_runtime_dependencies_only() -> None:
    for command in ("serve", "sms", "call"):
        done = _run_with_runtime_deps(command, "--help")
        assert done.returncode == 0, done.stderr
        assert "ModuleNotFoundError" not in done.stderr


def test_the_guard_does_refuse_a_test_only_module() -> None:
    """The check above would catch a test dependency (playwright is one)."""
    done = subprocess.run([sys.executable, "-c", _GUARD.replace('runpy.run_module("standins.twilio_local", '
                                                                 'run_name="__main__")', "import playwright"),
                           json.dumps(sorted(runtime_closure())),
                           json.dumps({t: sorted(_key(d) for d in ds) for t, ds in packages_distributions().items()})],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "only a test dependency" in done.stderr
