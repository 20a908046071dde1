"""The `hub` command run in-process (typer's CliRunner), with settings from the given environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from typer.testing import CliRunner

from hub.cli import app as cli
from hub.settings import get_settings


@contextmanager
def cli_invoker(env: dict[str, str | None]) -> Iterator[Callable[..., Any]]:
    """invoke(*args) -> Result; each call reads its settings afresh, none leak to other tests."""
    runner = CliRunner()
    env = {"HUB_LIVE_BACKEND": "memory", "HUB_EMBEDDED_WORKER": "false", **env}

    def invoke(*args: str) -> Any:
        get_settings.cache_clear()
        try:
            return runner.invoke(cli, list(args), env=env)
        finally:
            get_settings.cache_clear()

    try:
        yield invoke
    finally:
        get_settings.cache_clear()
