"""`hub contacts …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="contacts", no_args_is_help=True)
