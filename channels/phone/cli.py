"""`hub calls …`: bring calls from a PBX onto the timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

app = typer.Typer(help="Calls: import call detail records from a PBX.", no_args_is_help=True)
SHOWN_REJECTS = 50


@app.command("import-cdr")
def import_cdr_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="Asterisk's Master.csv (cdr_csv), or a copy of it.")],
    source: Annotated[str, typer.Option(help="A name for this PBX; keeps two PBXs' call ids apart.")] = "asterisk",
    timezone: Annotated[str | None, typer.Option(help="The PBX's time zone (default: the phone channel's, "
                                                      "else the hub's default_timezone).")] = None,
    rejects: Annotated[Path | None, typer.Option(dir_okay=False, help="Write rejected rows here as CSV.")] = None,
) -> None:
    """Add the calls in a PBX's CDR file to the timeline (again is safe: known calls are skipped).

    Unknown numbers become contacts. Rows that cannot be imported are listed with their line and
    reason; the others are imported all the same."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from channels.phone.cdr import import_cdr, write_rejects
    from hub.cli import err, fail, runtime

    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise fail(f"{timezone!r} is not an IANA time zone (e.g. Europe/Moscow)") from None
    hub = runtime()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err) as bar:
            task = bar.add_task(f"Importing {file.name}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                report = import_cdr(hub, file, source=source, time_zone=timezone, progress=progress)
            except ValueError as exc:
                raise fail(str(exc)) from None
    finally:
        hub.close()

    err.print(f"[green]{report.imported} calls imported[/], {report.already} already on the timeline, "
              f"{len(report.rejected)} rows rejected (of {report.rows}).")
    if report.rejected:
        table = Table("line", "reason", title=f"Rejected rows in {file.name}")
        table.columns[1].overflow = "fold"
        for rejected in report.rejected[:SHOWN_REJECTS]:
            table.add_row(str(rejected.line), rejected.reason)
        Console(stderr=True).print(table)
        if len(report.rejected) > SHOWN_REJECTS:
            err.print(f"… and {len(report.rejected) - SHOWN_REJECTS} more.")
        if rejects is not None:
            write_rejects(report, rejects)
            err.print(f"All rejected rows are in {rejects}.")
