"""`hub plugins`: what is installed, and taking a plug-in's tables away before it is uninstalled.

A plug-in with tables ships its migrations as a branch of its own (hub/migrate.py); `remove`
downgrades that branch to its base, dropping its tables, so that `pip uninstall` leaves a database
the hub without the plug-in accepts. Installing the plug-in again and running `hub migrate` brings
its tables back (empty).
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from typing import Annotated

import typer
from rich.console import Console

from hub.cli import fail, runtime

app = typer.Typer(help="Installed plug-ins: list them, remove one's tables before uninstalling it.",
                  no_args_is_help=True)
out = Console()

# The entry-point groups a plug-in registers under; `list` shows which each one uses.
GROUPS = ("hub.channels", "hub.extensions", "hub.migrations", "hub.demo", "hub.stand_ins", "hub.commands",
          "hub.triggers")


def distributions() -> dict[str, dict[str, list[str]]]:
    """Each installed distribution that registers entry points of the hub: group → names."""
    found: dict[str, dict[str, list[str]]] = {}
    for group in GROUPS:
        for ep in entry_points(group=group):
            dist = ep.dist.name if ep.dist is not None else "?"
            found.setdefault(dist, {}).setdefault(group, []).append(ep.name)
    return found


def owner(name: str) -> str | None:
    """The distribution whose `hub.migrations` (or `hub.channels`) entry point is called `name`."""
    for group in ("hub.migrations", "hub.channels", "hub.extensions"):
        for ep in entry_points(group=group, name=name):
            return ep.dist.name if ep.dist is not None else None
    return None


@app.command("list")
def list_plugins() -> None:
    """The distributions that plug into the hub, and what each registers."""
    for dist, groups in sorted(distributions().items()):
        out.print(f"[bold]{dist}[/]")
        for group, names in sorted(groups.items()):
            out.print(f"  {group}: {', '.join(sorted(names))}")


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The plug-in's name, as in its hub.migrations entry point (telegram).")],
    uninstall: Annotated[bool, typer.Option("--uninstall", help="Also run pip uninstall -y on its distribution.")] = False,
) -> None:
    """Drop a plug-in's tables (downgrade its migration branch to base), then uninstall it.

    Its data is gone afterwards: back the database up first (`hub store copy`) if it may be needed.
    """
    from hub.migrate import downgrade, plugin_locations

    if name not in plugin_locations():
        raise fail(f"no installed plug-in has migrations named {name!r}; installed: "
                   f"{', '.join(sorted(plugin_locations())) or 'none'}")
    dist = owner(name)
    hub = runtime()
    try:
        downgrade(hub.db.engine, f"{name}@base")
    finally:
        hub.close()
    out.print(f"Dropped the tables of {name!r} (its migration branch is at base).")
    if dist is None:
        return
    if not uninstall:
        typer.echo(f"Now uninstall it: {sys.executable} -m pip uninstall -y {dist}")
        return
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", dist], check=True)
    out.print(f"Uninstalled {dist}.")
