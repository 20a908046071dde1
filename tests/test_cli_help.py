"""`--help` of every command: a flag takes no value, so its help shows no type after it."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from hub.cli import app


def _paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _paths(sub, (*path, name))
    return found


def test_no_flag_shows_a_type_in_any_commands_help():
    runner = CliRunner()
    paths = _paths(typer.main.get_command(app))
    assert ("serve",) in paths and any(p[:1] == ("campaigns",) for p in paths)
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        assert "--help" in result.output
    serve = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "120"}).output
    assert "<int>" in serve  # options that take a value still say what kind
