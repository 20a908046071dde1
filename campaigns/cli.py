"""`hub campaigns …`: run and watch campaigns from the command line."""

from __future__ import annotations

import typer

app = typer.Typer(help="Campaigns: list them, start one, and watch a run's progress.", no_args_is_help=True)
