"""The hub installs as an ordinary wheel: every file a package reads at run time (templates,
catalogs, static files, the core's migrations) is package data under pyproject.toml's rules, so a
template or a script added where the rules do not look fails here, not on a server."""

from __future__ import annotations

import glob
import os
import tomllib
from pathlib import Path

import pytest

from hub.settings import HUB_MIGRATIONS, HUB_TEMPLATES, PROJECT_ROOT

pytestmark = pytest.mark.any_store

SETUPTOOLS = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
LEFT_OUT = {".py", ".pyc", ".md"}  # code is shipped as code; READMEs are for readers of the checkout


def _packages() -> list[Path]:
    roots = {p.split("*")[0] for p in SETUPTOOLS["packages"]["find"]["include"]}
    return sorted(path.parent for root in roots for path in (PROJECT_ROOT / root).glob("**/__init__.py")
                  if "__pycache__" not in path.parts)


def _shipped(package: Path) -> set[Path]:
    """The files setuptools takes as package data of `package` (its own rules and the "*" ones)."""
    name = ".".join(package.relative_to(PROJECT_ROOT).parts)
    patterns = [*SETUPTOOLS["package-data"].get("*", []), *SETUPTOOLS["package-data"].get(name, [])]
    return {(package / found).resolve() for pattern in patterns
            for found in glob.glob(pattern, root_dir=package, recursive=True)}


def _files(package: Path) -> list[Path]:
    """The package's own files (not its subpackages'), through links (hub/templates is one)."""
    found = []
    for folder, subfolders, names in os.walk(package, followlinks=True):
        here = Path(folder)
        subfolders[:] = [d for d in subfolders if d != "__pycache__" and not (here / d / "__init__.py").exists()]
        found += [here / n for n in names if Path(n).suffix not in LEFT_OUT]
    return found


def test_every_file_a_package_reads_is_package_data():
    packages = _packages()
    assert PROJECT_ROOT / "hub" in packages and PROJECT_ROOT / "channels" / "email" in packages
    missing = [str(path.relative_to(PROJECT_ROOT)) for package in packages
               for shipped in [_shipped(package)] for path in _files(package) if path.resolve() not in shipped]
    assert not missing, "not package data (add a rule in pyproject.toml [tool.setuptools.package-data]):\n" + "\n".join(missing)


def test_the_core_reads_its_templates_and_migrations_inside_the_package():
    hub = PROJECT_ROOT / "hub"
    assert HUB_TEMPLATES.parent == hub and HUB_MIGRATIONS.parent == hub
    assert (HUB_TEMPLATES / "ui" / "base.html").is_file() and (HUB_MIGRATIONS / "env.py").is_file()
    shipped = _shipped(hub)
    assert (HUB_TEMPLATES / "ui" / "base.html").resolve() in shipped
    assert {p.resolve() for p in (HUB_MIGRATIONS / "versions").glob("*.py")} <= shipped
