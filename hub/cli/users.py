"""`hub users …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="users", no_args_is_help=True)

apikeys_app = typer.Typer(help="apikeys", no_args_is_help=True)
